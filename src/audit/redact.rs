//! What the crossing log, the signals and the service log may say about a
//! payload's keys and a request's URL (SPEC §4): object keys, path segments
//! and query names are payload data too. Every such string goes through here
//! where records and events are built:
//!
//! - a key, segment or query name in which any built-in detector finds
//!   something is written as a placeholder naming it (`<email>`, `<us_ssn>`);
//! - a key that does not look like a field name (`^[A-Za-z_$@][A-Za-z0-9_.$@-]{0,63}$`)
//!   is written `<key>`; a query name likewise `<name>` (brackets allowed);
//!   a path segment longer than 64 bytes or with characters a path does not
//!   hold is written `<segment>`;
//! - each recorded string is capped ([`MAX_FIELD`], [`MAX_URL`],
//!   [`MAX_REASON`] bytes, cut with `…`), and a list of field paths at
//!   [`MAX_FIELDS_TOTAL`] bytes, so a record stays small whatever a payload
//!   holds (three 200 KB keys once made a 600 KB record).

use crate::policy::detect::{Detector, Redactor};
use crate::proxy::uri;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Cap of one recorded field path (bytes).
pub const MAX_FIELD: usize = 256;
/// Cap of a recorded request path with its query names (bytes).
pub const MAX_URL: usize = 1024;
/// Cap of a refusal reason (bytes).
pub const MAX_REASON: usize = 512;
/// Cap of one direction's list of field paths, all together (bytes).
pub const MAX_FIELDS_TOTAL: usize = 4096;
/// Longest key, segment or query name recorded as it is (bytes).
const MAX_NAME: usize = 64;

/// Every built-in detector; `None` if it could not be built, in which case
/// every key is a placeholder (fail closed).
static DETECTORS: LazyLock<Option<Redactor>> =
    LazyLock::new(|| Redactor::new(&Detector::ALL, &[]).ok());

/// The placeholder of a detector match in `s` (`<email>`), if any.
fn detected(s: &str) -> Option<Cow<'static, str>> {
    let Some(redactor) = DETECTORS.as_ref() else {
        return Some(Cow::Borrowed("<key>"));
    };
    let found = redactor.redact(s)?;
    let label = found
        .text
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("pii", |(label, _)| label);
    Some(Cow::Owned(format!("<{}>", label.to_ascii_lowercase())))
}

/// A payload object key as it may be recorded.
pub fn key(name: &str) -> Cow<'_, str> {
    if let Some(placeholder) = detected(name) {
        return placeholder;
    }
    if looks_like_field(name, |b| b == b'.' || b == b'-') {
        Cow::Borrowed(name)
    } else {
        Cow::Borrowed("<key>")
    }
}

/// `^[A-Za-z_$@][A-Za-z0-9_$@<more>]{0,63}$`.
fn looks_like_field(name: &str, more: impl Fn(u8) -> bool) -> bool {
    let bytes = name.as_bytes();
    let word = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'_' | b'$' | b'@');
    match bytes.split_first() {
        Some((&first, rest)) => {
            bytes.len() <= MAX_NAME
                && word(first)
                && rest
                    .iter()
                    .all(|&b| word(b) || b.is_ascii_digit() || more(b))
        }
        None => false,
    }
}

/// A wildcarded field path (`$['users'][*]['name']`, RFC 9535 normalized
/// form) with each key made safe by [`key`], capped at [`MAX_FIELD`]. A path
/// that is not of that form is recorded as `$<path>`.
pub fn field_path(path: &str) -> String {
    let mut out = String::from("$");
    let Some(mut rest) = path.strip_prefix('$') else {
        return "$<path>".into();
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let Some((name, tail)) = quoted(after) else {
                return "$<path>".into();
            };
            out.push_str("['");
            out.push_str(&key(&name));
            out.push_str("']");
            rest = tail;
        } else if let Some((index, tail)) = rest.strip_prefix('[').and_then(|r| r.split_once(']'))
            && (index == "*" || index.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push('[');
            out.push_str(index);
            out.push(']');
            rest = tail;
        } else {
            return "$<path>".into();
        }
        if out.len() > MAX_FIELD {
            break;
        }
    }
    cap(out, MAX_FIELD)
}

/// A name written by `policy::path` (`\'`, `\\` and control escapes) up to
/// its closing `']`; the name unescaped and the text after it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return s[i + 1..].strip_prefix(']').map(|tail| (name, tail)),
            '\\' => {
                let (_, escaped) = chars.next()?;
                // The exact control character does not matter: it makes the
                // key a placeholder either way.
                name.push(if matches!(escaped, '\'' | '\\') {
                    escaped
                } else {
                    '\u{1}'
                });
            }
            c => name.push(c),
        }
    }
    None
}

/// Field paths for one direction of a record: each made safe, the list
/// deduplicated and capped at [`MAX_FIELDS_TOTAL`] bytes.
pub fn field_paths<'a>(paths: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    for path in paths {
        let safe = field_path(path);
        if out.contains(&safe) {
            continue;
        }
        total += safe.len();
        if total > MAX_FIELDS_TOTAL {
            break;
        }
        out.push(safe);
    }
    out
}

/// A request path (forwarded, normalised or as rejected) and its query, as
/// recorded: each segment and query name made safe, query values elided
/// (`/a?x=1&y=2` → `/a?x=&y=`), capped at [`MAX_URL`].
pub fn url(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out = String::with_capacity(path.len().min(MAX_URL) + 8);
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&segment(seg));
        if out.len() > MAX_URL {
            return cap(out, MAX_URL);
        }
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&uri::elide_query(q, &query_name));
    }
    cap(out, MAX_URL)
}

/// One path segment as recorded.
fn segment(seg: &str) -> Cow<'_, str> {
    if let Some(placeholder) = detected(seg) {
        return placeholder;
    }
    let pchar = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@%".contains(&b);
    if seg.len() <= MAX_NAME && seg.bytes().all(pchar) {
        Cow::Borrowed(seg)
    } else {
        Cow::Borrowed("<segment>")
    }
}

/// One query parameter name as recorded (checked decoded, written as sent).
fn query_name(raw: &str) -> Cow<'_, str> {
    let decoded = uri::decode_query_name(raw);
    if let Some(placeholder) = detected(&decoded) {
        return placeholder;
    }
    let ok = decoded == raw && looks_like_field(raw, |b| b"-.[]".contains(&b));
    if ok {
        Cow::Borrowed(raw)
    } else {
        Cow::Borrowed("<name>")
    }
}

/// Free text for a record or a log line (a refusal reason): every detected
/// span replaced by `[LABEL]`, capped at [`MAX_REASON`].
pub fn reason(text: &str) -> String {
    let text = match DETECTORS.as_ref().map(|r| r.redact(text)) {
        Some(Some(found)) => found.text,
        Some(None) => text.to_string(),
        None => "<reason>".to_string(),
    };
    cap(text, MAX_REASON)
}

/// `s` cut to at most `max` bytes on a character boundary, marked with `…`.
fn cap(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_data_become_placeholders() {
        assert_eq!(key("customer_id"), "customer_id");
        assert_eq!(key("jane.doe@example.com"), "<email>");
        assert_eq!(key("078-05-1120"), "<us_ssn>");
        assert_eq!(key("4111 1111 1111 1111"), "<credit_card>");
        assert_eq!(key("u123 x"), "<key>");
        assert_eq!(key("12345"), "<key>");
        assert_eq!(key(&"k".repeat(65)), "<key>");
        assert_eq!(key(""), "<key>");
    }

    #[test]
    fn field_paths_keep_their_shape() {
        assert_eq!(
            field_path("$['users']['jane@example.com'][*]['name']"),
            "$['users']['<email>'][*]['name']"
        );
        assert_eq!(field_path("$['a'][3]['it\\'s']"), "$['a'][3]['<key>']");
        assert_eq!(field_path("$"), "$");
        assert_eq!(field_path("nonsense"), "$<path>");
        assert_eq!(field_path("$['unterminated"), "$<path>");
        let deep = format!("$['{}']", "a']['".repeat(500));
        assert!(field_path(&deep).len() <= MAX_FIELD);
    }

    #[test]
    fn a_list_of_paths_is_bounded() {
        let huge = format!("$['{}']", "x".repeat(200_000));
        let many: Vec<String> = (0..1000).map(|i| format!("$['f{i}']")).collect();
        let safe = field_paths([&huge, &huge, &huge]);
        assert_eq!(safe, vec!["$['<key>']".to_string()]);
        let total: usize = field_paths(&many).iter().map(String::len).sum();
        assert!(total <= MAX_FIELDS_TOTAL);
    }

    #[test]
    fn urls_lose_their_data() {
        assert_eq!(url("/a?x=1&y=secret"), "/a?x=&y=");
        assert_eq!(url("/a"), "/a");
        assert_eq!(url("/a?jane@example.com"), "/a?*");
        assert_eq!(url("/a?x=1;ssn=078-05-1120"), "/a?x=;ssn=");
        assert_eq!(
            url("/crm/customers/078-05-1120/notes"),
            "/crm/customers/<us_ssn>/notes"
        );
        assert_eq!(url("/u/jane%40example.com"), "/u/<email>");
        assert_eq!(
            url("/q?jane%40example.com=1&a%20b=2"),
            "/q?<email>=&<name>="
        );
        assert_eq!(url("/q?filter[status]=1"), "/q?filter[status]=");
        assert_eq!(url("/a/../b\\c"), "/a/../<segment>");
        assert!(url(&format!("/{}", "a/".repeat(5000))).len() <= MAX_URL);
    }

    #[test]
    fn reasons_are_redacted_and_capped() {
        assert_eq!(
            reason("content type 'jane@example.com' is not governed"),
            "content type '[EMAIL]' is not governed"
        );
        assert!(reason(&"x".repeat(10_000)).len() <= MAX_REASON);
    }
}
