//! Parse errors of policy paths turned into what is wrong and how to fix it.

use jsonpath_rust::parser::errors::JsonPathError;

const QUOTE_HINT: &str = "quote names with special characters: $['a-b']";

/// Turns a jsonpath-rust parse error into what is wrong and how to fix it.
pub(super) fn explain(src: &str, err: &JsonPathError) -> String {
    if let JsonPathError::MaxNestingDepthExceeded(max) = err {
        return format!("brackets and parentheses nest deeper than {max} levels");
    }
    if src.trim().is_empty() {
        return "the path is empty; use $ for the whole document, or e.g. $.incidents[*].id".into();
    }
    if src.trim() != src {
        return "remove the spaces around the path; JSONPath allows no leading or trailing spaces"
            .into();
    }
    if !src.starts_with('$') {
        return not_rooted(src);
    }
    if let Some(reason) = unbalanced(src) {
        return reason;
    }
    let Some(col) = error_column(err) else {
        return format!("not a valid RFC 9535 JSONPath; {QUOTE_HINT}");
    };
    let at = src
        .char_indices()
        .nth(col - 1)
        .map_or(src.len(), |(i, _)| i);
    explain_at(src, at, col)
}

fn not_rooted(src: &str) -> String {
    if src.starts_with('@') {
        return "'@' (the current node) only has a meaning inside a filter such as \
                [?@.status == 'open']; a path starts at the document root: $"
            .into();
    }
    let suggestion = if src.starts_with(['.', '[']) {
        format!("${src}")
    } else {
        format!("$.{src}")
    };
    format!("a path must start with '$', the document root: {suggestion}")
}

/// Finds quotes, brackets or parentheses that are left open or closed twice.
fn unbalanced(src: &str) -> Option<String> {
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in src.chars().enumerate() {
        let col = i + 1;
        if let Some(q) = quote {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match ch {
            '\'' | '"' => quote = Some(ch),
            '[' | '(' => open.push((ch, col)),
            ']' | ')' => match open.pop() {
                Some((o, _)) if o == opener(ch) => {}
                Some((o, at)) => {
                    return Some(format!(
                        "'{o}' at column {at} is closed by '{ch}' at column {col}; close it with '{}'",
                        closer(o)
                    ));
                }
                None => {
                    return Some(format!(
                        "unexpected '{ch}' at column {col} with no matching '{}'",
                        opener(ch)
                    ));
                }
            },
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!(
            "a quoted name is not closed; end it with {q}, e.g. $['a-b']"
        ));
    }
    open.pop()
        .map(|(o, at)| format!("'{o}' at column {at} is never closed; add '{}'", closer(o)))
}

fn opener(close: char) -> char {
    if close == ']' { '[' } else { '(' }
}

fn closer(open: char) -> char {
    if open == '[' { ']' } else { ')' }
}

/// The 1-based column of a pest error, read from its rendering (` --> 1:7`).
fn error_column(err: &JsonPathError) -> Option<usize> {
    let text = err.to_string();
    let pos = &text[text.find("--> ")? + 4..];
    let col: String = pos
        .split(':')
        .nth(1)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    col.parse().ok().filter(|c| *c > 0)
}

/// Explains an error pest reported at byte `at` (column `col`).
fn explain_at(src: &str, at: usize, col: usize) -> String {
    let (before, rest) = src.split_at(at);
    if in_open_filter(before) {
        return format!(
            "invalid filter expression near column {col}; filters look like \
             [?@.status == 'open'], compare with ==, !=, <, <=, > or >=, combine with &&, || \
             and !, and may call length, count, match, search or value"
        );
    }
    let dots = if rest.starts_with("..") || before.ends_with("..") {
        Some(rest.trim_start_matches('.'))
    } else {
        None
    };
    if let Some(after) = dots {
        return match after.chars().next() {
            None => "the path ends with '..'; write a name, '*' or a bracket after it, \
                     e.g. $..ssn"
                .into(),
            Some(_) => format!("expected a name, '*' or a bracket after '..'; {QUOTE_HINT}"),
        };
    }
    if let Some(after) = rest.strip_prefix('.') {
        return after_dot(after);
    }
    if before.ends_with('.') {
        return after_dot(rest);
    }
    let Some(ch) = rest.chars().next() else {
        return format!("the path ends too early; {QUOTE_HINT}");
    };
    if ch == '[' || inside_bracket(before) {
        return format!(
            "invalid bracket near column {col}; a bracket holds quoted names ('a'), indices (0, \
             -1), slices (1:5:2), * or filters (?@.x == 1), separated by commas"
        );
    }
    if ch.is_whitespace() {
        return format!("unexpected space at column {col}; {QUOTE_HINT}");
    }
    if let Some(dot) = before.rfind('.') {
        let name = shorthand_token(&src[dot + 1..]);
        return format!(
            "'{ch}' cannot appear in a name after '.' (column {col}); quote the name: ['{name}']"
        );
    }
    format!("unexpected '{ch}' at column {col}; {QUOTE_HINT}")
}

fn after_dot(after: &str) -> String {
    match after.chars().next() {
        None => format!("the path ends with '.'; expected a name or '*' after it; {QUOTE_HINT}"),
        Some(c) if c.is_ascii_digit() => {
            let token = shorthand_token(after);
            if token.bytes().all(|b| b.is_ascii_digit()) {
                format!(
                    "a name after '.' cannot start with a digit; write [{token}] for an array \
                     index or ['{token}'] for a member name"
                )
            } else {
                format!("a name after '.' cannot start with a digit; quote it: ['{token}']")
            }
        }
        Some(_) => {
            let token = shorthand_token(after);
            format!("expected a name or '*' after '.'; quote the name: ['{token}']")
        }
    }
}

/// The text of a would-be shorthand name, up to the next segment.
fn shorthand_token(s: &str) -> &str {
    let end = s.find(['.', '[']).unwrap_or(s.len());
    &s[..end]
}

/// Is the end of `before` inside a `[?` that has not been closed?
fn in_open_filter(before: &str) -> bool {
    before
        .rfind("[?")
        .is_some_and(|i| !before[i..].contains(']'))
}

fn inside_bracket(before: &str) -> bool {
    before
        .rfind('[')
        .is_some_and(|i| !before[i..].contains(']'))
}
