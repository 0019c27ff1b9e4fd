//! Request-target normalisation for routing.
//!
//! hyper hands the request path over raw: no decoding, no dot-segment
//! removal, backslashes kept (attacks.md 0.1). Every differential between
//! how the proxy reads a path and how the upstream reads it is a way around
//! the route allow-list (attacks.md B.11–B.19), so the path is normalised
//! once by [`normalize_path`] and that one string is what routes match, what
//! the audit records and what is forwarded. Anything that different servers
//! read differently is refused, not resolved.

use std::borrow::Cow;

/// Why a request path is refused (400). Variants carry no input text: paths
/// can hold payload data (an SSN as a resource id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not origin-form: empty, `*` (asterisk-form), absolute-form, authority-form.
    #[error("request target is not an absolute path")]
    NotOriginForm,
    /// A `.` or `..` segment (also encoded), or any segment of only dots and spaces.
    #[error("dot segment in path")]
    Traversal,
    /// `%2F`: a slash inside a segment.
    #[error("encoded slash in path")]
    EncodedSlash,
    /// A raw `\` or `%5C`.
    #[error("backslash in path")]
    Backslash,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding in path")]
    BadEscape,
    /// `%25` followed by two hex digits: a second decoding would change it.
    #[error("double percent-encoding in path")]
    DoubleEncoding,
    /// A control character (U+0000–U+001F, U+007F), raw or encoded.
    #[error("control character in path")]
    ControlChar,
    /// `;` raw or encoded (path parameters, `/..;/`).
    #[error("path parameter in path")]
    PathParameter,
    /// `%3F` or `%23`: a query or fragment delimiter hidden in the path.
    #[error("encoded query or fragment delimiter in path")]
    EncodedDelimiter,
    /// A raw byte outside ASCII.
    #[error("raw non-ASCII byte in path")]
    NonAscii,
    /// Percent-encoded bytes that are not UTF-8 (overlong forms, surrogates,
    /// truncated sequences).
    #[error("percent-encoded bytes are not UTF-8")]
    InvalidUtf8,
    /// An encoded character that compatibility normalisation (NFKC) turns
    /// into a path delimiter (`／`, `．`, `＼`, `﹔`, …).
    #[error("confusable delimiter in path")]
    Confusable,
    /// A raw character RFC 3986 does not allow in a path (space, `"`, `<`,
    /// `>`, `?`, `#`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`).
    #[error("invalid character in path")]
    InvalidChar,
}

/// Normalises a request path once; the result is what routes match AND what
/// is forwarded. Rules, all failing closed:
///
/// - the path must start with `/`: `*` (`OPTIONS *`), absolute-form and
///   authority-form targets are [`UriError::NotOriginForm`];
/// - percent-encoded unreserved characters (ALPHA DIGIT `-` `.` `_` `~`) are
///   decoded (`/%7Euser` → `/~user`, `/%61dmin` → `/admin`: RFC 3986 §6.2.2.2
///   makes them equivalent, so routing sees what any upstream sees); every
///   other escape stays encoded, with uppercase hex (`%2a` → `%2A`);
/// - refused: `%2F` (encoded slash), raw `\` and `%5C`, control characters
///   raw or encoded (`%00`, `%0A`), `%25` followed by two hex digits in the
///   normalised path (double encoding such as `%252e`, also spelt
///   `%25%32%65`: one more decoding by the upstream would change the path, so
///   it is refused rather than guessed at), `%3F` and `%23`,
///   malformed escapes, raw non-ASCII, encoded bytes that are not UTF-8
///   (overlong `%C0%AF`), encoded fullwidth/small-form characters that NFKC
///   folds to ASCII (`%EF%BC%8F` = `／`), and raw characters that are not
///   allowed in a path;
/// - dot segments: a `.` or `..` segment (also as `%2e`) is refused, not
///   resolved — a proxy that resolves them differently from the upstream is a
///   traversal vector. So is any segment made only of dots and spaces
///   (`...`, `..%20`): Windows servers trim trailing dots and spaces;
/// - empty segments are collapsed (`//a//b` → `/a/b`), as most upstreams do;
///   the collapsed path is what is forwarded, so the upstream cannot see an
///   empty segment the routes did not. A trailing `/` is kept (`/a/` and `/a`
///   are different resources to many upstreams);
/// - `;` in any segment (raw or `%3B`) is refused: Tomcat and Spring strip
///   path parameters (`/..;/admin`, `;jsessionid=`) after the proxy matched;
/// - case is preserved: routes match case-sensitively and the upstream sees
///   exactly what was routed on.
pub fn normalize_path(raw: &str) -> Result<String, UriError> {
    let rest = raw.strip_prefix('/').ok_or(UriError::NotOriginForm)?;
    let mut out = String::with_capacity(raw.len());
    let mut trailing_slash = false;
    for segment in rest.split('/') {
        trailing_slash = segment.is_empty();
        if !segment.is_empty() {
            out.push('/');
            push_segment(segment, &mut out)?;
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// Splits a raw query (no leading `?`) into `(name, raw value)` pairs. Names
/// are read as frameworks read them, for matching (see [`rule_name`]);
/// values are returned as sent. Pieces are
/// separated by `&` and also by `;`, which some servers still treat as a
/// separator (parameter cloaking: `a=1;debug=1`). Empty pieces are skipped.
pub fn query_pairs(raw: &str) -> Vec<(String, &str)> {
    pieces(raw)
        .map(|(_, piece)| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (rule_name(name), value)
        })
        .collect()
}

/// The query as the audit log records it: parameter names kept (as `name`
/// writes them), values removed (`x=1&y=2` → `x=&y=`). A piece without `=`
/// is all value as far as we know (`?jane@example.com`), so it becomes `*`.
/// Splits like [`query_pairs`], so a `;`-cloaked value is elided too.
pub fn elide_query(raw: &str, name: &dyn Fn(&str) -> Cow<'_, str>) -> String {
    let mut out = String::with_capacity(raw.len());
    for (separator, piece) in pieces(raw) {
        if !out.is_empty() {
            out.push(separator);
        }
        match piece.split_once('=') {
            Some((raw_name, _)) => {
                out.push_str(&name(raw_name));
                out.push('=');
            }
            None => out.push('*'),
        }
    }
    out
}

/// Keeps the query pairs whose decoded name `keep` accepts and rebuilds the
/// query from them, preserving the original bytes of every kept piece and
/// the separator before it. Returns the new query (no leading `?`; empty when
/// nothing is kept) and the number of pairs dropped. Splitting follows
/// [`query_pairs`]: because `;` separates too, `a=1;debug=1` loses `debug`
/// even for an upstream that would have read `1;debug=1` as the value of `a`
/// — dropping too much, never too little. Empty pieces are removed, not
/// counted.
pub fn filter_query(raw: &str, keep: &dyn Fn(&str) -> bool) -> (String, usize) {
    let mut out = String::with_capacity(raw.len());
    let mut dropped = 0;
    for (separator, piece) in pieces(raw) {
        let name = piece.split_once('=').map_or(piece, |(name, _)| name);
        if !keep(&rule_name(name)) {
            dropped += 1;
            continue;
        }
        if !out.is_empty() {
            out.push(separator);
        }
        out.push_str(piece);
    }
    (out, dropped)
}

/// Non-empty query pieces with the separator that preceded each (`&` for the
/// first).
fn pieces(raw: &str) -> impl Iterator<Item = (char, &str)> {
    let mut separator = '&';
    raw.split_inclusive(['&', ';']).filter_map(move |chunk| {
        let before = separator;
        let piece = match chunk.strip_suffix(['&', ';']) {
            Some(piece) => {
                separator = chunk.chars().last().unwrap_or('&');
                piece
            }
            None => chunk,
        };
        (!piece.is_empty()).then_some((before, piece))
    })
}

/// A parameter name as PHP, Rack and Express read it, for query rules:
/// percent-decoded (`+` is a space; undecodable bytes become U+FFFD, so they
/// match no rule), surrounding spaces trimmed, and everything from the first
/// `[` cut off (`ssn[]`, `ssn%5B%5D`, `ssn[0]`, `ssn[a][b]` are `ssn`).
pub fn rule_name(raw: &str) -> String {
    let decoded = decode_query_name(raw);
    let base = decoded.split('[').next().unwrap_or_default();
    base.trim_matches(|c: char| c.is_whitespace()).to_string()
}

/// `application/x-www-form-urlencoded` name decoding: `+` is a space, `%XX`
/// a byte; a malformed escape is kept literally, as browsers do.
pub fn decode_query_name(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', '+']) {
        return Cow::Borrowed(name);
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, hex_byte(bytes.get(i + 1..i + 3))) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The byte two ASCII hex digits spell, if they are that.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let [hi, lo] = digits? else {
        return None;
    };
    let hi = char::from(*hi).to_digit(16)?;
    let lo = char::from(*lo).to_digit(16)?;
    u8::try_from(hi << 4 | lo).ok()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Normalises one non-empty segment onto `out`.
fn push_segment(segment: &str, out: &mut String) -> Result<(), UriError> {
    let start = out.len();
    let mut shape = SegmentShape::default();
    let mut encoded_text = Vec::new();
    let bytes = segment.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            check_raw(b)?;
            flush_encoded_text(&mut encoded_text)?;
            shape.see(b);
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let decoded = hex_byte(bytes.get(i + 1..i + 3)).ok_or(UriError::BadEscape)?;
        i += 3;
        if decoded >= 0x80 {
            // Part of an encoded UTF-8 sequence: validated when it ends.
            encoded_text.push(decoded);
            shape.see(decoded);
            push_escape(decoded, out);
            continue;
        }
        check_encoded(decoded)?;
        flush_encoded_text(&mut encoded_text)?;
        shape.see(decoded);
        if is_unreserved(decoded) {
            out.push(char::from(decoded));
        } else {
            push_escape(decoded, out);
        }
    }
    flush_encoded_text(&mut encoded_text)?;
    // On the output, not the input: `%25%34%31` forwards as `%2541`.
    if is_double_encoded(&out.as_bytes()[start..]) {
        return Err(UriError::DoubleEncoding);
    }
    if shape.is_dots() {
        return Err(UriError::Traversal);
    }
    Ok(())
}

/// A raw (unencoded) path byte must be a pchar (RFC 3986 §3.3) other than `;`.
fn check_raw(b: u8) -> Result<(), UriError> {
    match b {
        b'\\' => Err(UriError::Backslash),
        b';' => Err(UriError::PathParameter),
        _ if is_control(b) => Err(UriError::ControlChar),
        0x80.. => Err(UriError::NonAscii),
        _ if is_unreserved(b) => Ok(()),
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@' => {
            Ok(())
        }
        _ => Err(UriError::InvalidChar),
    }
}

/// An encoded ASCII byte.
fn check_encoded(b: u8) -> Result<(), UriError> {
    match b {
        b'/' => Err(UriError::EncodedSlash),
        b'\\' => Err(UriError::Backslash),
        b';' => Err(UriError::PathParameter),
        b'?' | b'#' => Err(UriError::EncodedDelimiter),
        _ if is_control(b) => Err(UriError::ControlChar),
        _ => Ok(()),
    }
}

/// Whether a normalised segment holds `%25` followed by two hex digits: one
/// more decoding by the upstream would turn it into another character.
fn is_double_encoded(segment: &[u8]) -> bool {
    segment
        .windows(5)
        .any(|w| w.starts_with(b"%25") && hex_byte(w.get(3..5)).is_some())
}

fn push_escape(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Checks a finished run of percent-encoded non-ASCII bytes and clears it.
/// A UTF-8 sequence is made only of bytes ≥ 0x80, so each maximal run must be
/// valid UTF-8 on its own.
fn flush_encoded_text(run: &mut Vec<u8>) -> Result<(), UriError> {
    if run.is_empty() {
        return Ok(());
    }
    let text = std::str::from_utf8(run).map_err(|_| UriError::InvalidUtf8)?;
    if text.chars().any(is_confusable) {
        return Err(UriError::Confusable);
    }
    run.clear();
    Ok(())
}

/// Characters whose NFKC form is or contains ASCII punctuation that matters
/// in a path, for upstreams that normalise Unicode after the proxy routed.
fn is_confusable(c: char) -> bool {
    matches!(c,
        '\u{FF01}'..='\u{FF5E}' // fullwidth ASCII forms
        | '\u{FE50}'..='\u{FE6B}' // small form variants (﹒ ﹔ ﹖ ﹟ ﹨ ﹪)
        | '\u{2024}'..='\u{2026}' // one/two dot leader, ellipsis
        | '\u{2100}' | '\u{2101}' | '\u{2105}' | '\u{2106}' // ℀ ℁ ℅ ℆ contain '/'
    )
}

/// Tracks whether a segment is only dots and spaces, with at least one dot.
#[derive(Default)]
struct SegmentShape {
    dot: bool,
    other: bool,
}

impl SegmentShape {
    fn see(&mut self, decoded: u8) {
        match decoded {
            b'.' => self.dot = true,
            b' ' => {}
            _ => self.other = true,
        }
    }

    fn is_dots(&self) -> bool {
        self.dot && !self.other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UriError::*;

    #[test]
    fn attack_paths_from_the_catalogue() {
        let table: &[(&str, Result<&str, UriError>)] = &[
            ("/a/../b", Err(Traversal)),
            ("/a/..", Err(Traversal)),
            ("/..", Err(Traversal)),
            ("/a/%2e%2e/b", Err(Traversal)),
            ("/a/%2E%2e/b", Err(Traversal)),
            ("/a/.%2E/b", Err(Traversal)),
            ("/a/./b", Err(Traversal)),
            ("/a/%2e/b", Err(Traversal)),
            ("/a/.../b", Err(Traversal)),
            ("/a/..%20/b", Err(Traversal)),
            ("/a/. ./b", Err(InvalidChar)),
            ("/a%2fb", Err(EncodedSlash)),
            ("/a%2Fb", Err(EncodedSlash)),
            ("/a%5cb", Err(Backslash)),
            ("/a%5Cb", Err(Backslash)),
            ("/a\\b", Err(Backslash)),
            ("/a\\..\\admin", Err(Backslash)),
            ("//a", Ok("/a")),
            ("/crm//v1///admin/x", Ok("/crm/v1/admin/x")),
            ("/a;jsessionid=1/b", Err(PathParameter)),
            ("/a/..;/admin", Err(PathParameter)),
            ("/a%3bx=1/b", Err(PathParameter)),
            ("/a%00b", Err(ControlChar)),
            ("/a%0ab", Err(ControlChar)),
            ("/a%0D%0Ab", Err(ControlChar)),
            ("/a%7fb", Err(ControlChar)),
            ("/a\u{1}b", Err(ControlChar)),
            ("/a%252e%252e/b", Err(DoubleEncoding)),
            ("/a%252fb", Err(DoubleEncoding)),
            ("/a%2500", Err(DoubleEncoding)),
            ("/admin%23a", Err(EncodedDelimiter)),
            ("/admin%3Fa", Err(EncodedDelimiter)),
            ("/a%", Err(BadEscape)),
            ("/a%2", Err(BadEscape)),
            ("/a%zz", Err(BadEscape)),
            ("/a%%32%65", Err(BadEscape)),
            ("/caf\u{e9}", Err(NonAscii)),
            ("/\u{ff41}dmin/x", Err(NonAscii)),
            ("/%c0%afadmin", Err(InvalidUtf8)),
            ("/%C3", Err(InvalidUtf8)),
            ("/%C3a", Err(InvalidUtf8)),
            ("/%ED%A0%80", Err(InvalidUtf8)),
            ("/a/%EF%BC%8F..%EF%BC%8Fadmin", Err(Confusable)),
            ("/%EF%BC%8E%EF%BC%8E/admin", Err(Confusable)),
            ("/%EF%BD%81dmin", Err(Confusable)),
            ("/a b", Err(InvalidChar)),
            ("/a?b", Err(InvalidChar)),
            ("/a#b", Err(InvalidChar)),
            ("/a{b}", Err(InvalidChar)),
            ("/a|b", Err(InvalidChar)),
            ("*", Err(NotOriginForm)),
            ("", Err(NotOriginForm)),
            ("a/b", Err(NotOriginForm)),
            ("http://evil.example/admin", Err(NotOriginForm)),
            ("internal:22", Err(NotOriginForm)),
        ];
        for (raw, expected) in table {
            assert_eq!(
                normalize_path(raw).as_deref(),
                expected.as_ref().map(|s| *s),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn accepted_paths_normalise_once() {
        let table = [
            ("/", "/"),
            ("//", "/"),
            ("/%7Euser", "/~user"),
            ("/%7euser", "/~user"),
            ("/%61dmin/x", "/admin/x"),
            ("/a%20b", "/a%20b"),
            ("/a%2ab", "/a%2Ab"),
            ("/a%25b", "/a%25b"),
            ("/a%25zz", "/a%25zz"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/%E2%82%AC/%F0%9F%98%80", "/%E2%82%AC/%F0%9F%98%80"),
            ("/api/Incidents/", "/api/Incidents/"),
            ("/a//", "/a/"),
            ("/a.json", "/a.json"),
            ("/a./b..c/.d", "/a./b..c/.d"),
            ("/a%2Eb", "/a.b"),
            ("/x/!$&'()*+,=:@-._~", "/x/!$&'()*+,=:@-._~"),
            (
                "/crm/v1/customers/078-05-1120",
                "/crm/v1/customers/078-05-1120",
            ),
        ];
        for (raw, expected) in table {
            let normal = normalize_path(raw).unwrap_or_else(|e| panic!("{raw:?}: {e:?}"));
            assert_eq!(normal, expected, "{raw:?}");
            assert_eq!(
                normalize_path(&normal).as_deref(),
                Ok(expected),
                "idempotent for {raw:?}"
            );
        }
    }

    #[test]
    fn errors_do_not_echo_the_path() {
        let err = normalize_path("/customers/078-05-1120/../admin").expect_err("refused");
        assert!(!err.to_string().contains("078"));
    }

    fn keep_all_but_debug(name: &str) -> bool {
        name != "debug"
    }

    #[test]
    fn filter_query_drops_by_decoded_name_and_keeps_bytes() {
        let keep: &dyn Fn(&str) -> bool = &keep_all_but_debug;
        assert_eq!(
            filter_query("a=1&debug=1&b=%7Ex+y", keep),
            ("a=1&b=%7Ex+y".into(), 1)
        );
        assert_eq!(filter_query("%64ebug=1&a=2", keep), ("a=2".into(), 1));
        assert_eq!(filter_query("debug&a", keep), ("a".into(), 1));
        assert_eq!(filter_query("debug=1&debug=2", keep), (String::new(), 2));
        assert_eq!(filter_query("", keep), (String::new(), 0));
        assert_eq!(filter_query("&&a=1&&", keep), ("a=1".into(), 0));
        assert_eq!(filter_query("a==b&c=", keep), ("a==b&c=".into(), 0));
        // `;` separates too (parameter cloaking); kept separators are preserved.
        assert_eq!(filter_query("a=1;debug=1;b=2", keep), ("a=1;b=2".into(), 1));
        assert_eq!(filter_query("debug=1;b=2&c=3", keep), ("b=2&c=3".into(), 1));
    }

    #[test]
    fn filter_query_decodes_plus_and_bad_escapes_in_names() {
        let keep_spaced: &dyn Fn(&str) -> bool = &|name| name != "the key";
        assert_eq!(
            filter_query("the+key=1&the%20key=2&x=3", keep_spaced),
            ("x=3".into(), 2)
        );
        let allow_a: &dyn Fn(&str) -> bool = &|name| name == "a";
        assert_eq!(
            filter_query("a%=1&a%zz=2&a=3&%ff=4", allow_a),
            ("a=3".into(), 3)
        );
    }

    #[test]
    fn rule_names_are_read_as_frameworks_read_them() {
        for raw in [
            "ssn",
            "ssn[]",
            "ssn%5B%5D",
            "+ssn",
            "%20ssn",
            "ssn[0]",
            "ssn[a][b]",
            "ssn%5b0%5d",
            "ssn+",
        ] {
            assert_eq!(rule_name(raw), "ssn", "{raw}");
        }
        let keep: &dyn Fn(&str) -> bool = &keep_all_but_debug;
        assert_eq!(
            filter_query("debug[]=1&+debug=2&debug%5B%5D=3&a[debug]=4", keep),
            ("a[debug]=4".into(), 3)
        );
    }

    #[test]
    fn query_pairs_decode_names_only() {
        assert_eq!(
            query_pairs("a%62=x%20y&flag;c+d=1=2"),
            vec![
                ("ab".to_string(), "x%20y"),
                ("flag".to_string(), ""),
                ("c d".to_string(), "1=2")
            ]
        );
        assert!(query_pairs("&;").is_empty());
    }
}
