//! The injected upstream credential never reaches a caller (SPEC §6.3).
//!
//! customs knows the exact value it injected, so it looks for that value's
//! secret part (the value after its scheme: `Bearer abc` → `abc`; the whole
//! value when there is no scheme) in everything an upstream answers:
//!
//! - a response header whose name or value carries it is dropped;
//! - a governed JSON body (re-serialised by its policy, enforce or monitor)
//!   has it replaced by `[CREDENTIAL]` inside every string and key;
//! - any other body (`pass`, `other_content: pass`, compressed: decoded to be
//!   scanned) is refused with 502 `response_refused`, since it cannot be
//!   rewritten safely.
//!
//! Each byte view is searched as received and once more with JSON string
//! escapes (`\/`, `\u0061`, surrogate pairs) and `%XX` decoded, so an echo
//! spelled with escapes is found too. The search is a `memmem` over the bytes
//! (only on integrations that inject a credential). A streamed `pass` body
//! (not compressed: a compressed one is read whole) is scanned chunk by
//! chunk by a [`Holdback`], and a match ends the stream as broken.

use super::decode;
use super::error::{Kind, Refusal};
use bytes::Bytes;
use http::header::CONTENT_ENCODING;
use http::{HeaderMap, HeaderName, HeaderValue};
use memchr::memmem::Finder;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Rule id under which a crossing's record counts echoes it removed.
pub const CREDENTIAL_ECHO: &str = "credential-echo";
/// What replaces the credential inside a governed JSON string or key.
pub const PLACEHOLDER: &str = "[CREDENTIAL]";
/// The refusal detail of a body that carried the credential.
const REFUSED: &str = "response carried the injected upstream credential";

/// The secret part of one injected credential, ready to be searched for.
pub struct Echo {
    token: String,
    finder: Finder<'static>,
    /// The token lower-cased, for header names (always lower case).
    lower: Finder<'static>,
}

/// What the scan of one answer did.
#[derive(Debug, Default)]
pub struct Scrubbed {
    /// Headers dropped and body strings or keys rewritten.
    pub echoes: u64,
    /// Set when the body carried the credential and could not be rewritten.
    pub refusal: Option<Refusal>,
}

impl Echo {
    /// The echo guard of an injected value; `None` for an empty value.
    pub fn new(value: &HeaderValue) -> Option<Echo> {
        // Bytes, not `to_str`: a value with non-ASCII bytes is guarded too.
        let bytes = value.as_bytes().trim_ascii();
        let token = match bytes.iter().position(|b| matches!(b, b' ' | b'\t')) {
            Some(space) => bytes[space..].trim_ascii(),
            None => bytes,
        };
        if token.is_empty() {
            return None;
        }
        Some(Echo {
            token: String::from_utf8_lossy(token).into_owned(),
            finder: Finder::new(token).into_owned(),
            lower: Finder::new(&token.to_ascii_lowercase()).into_owned(),
        })
    }

    /// Whether `data` carries the token, as is or behind escapes.
    pub fn found_in(&self, data: &[u8]) -> bool {
        if self.finder.find(data).is_some() {
            return true;
        }
        memchr::memchr2(b'\\', b'%', data).is_some() && self.finder.find(&unescape(data)).is_some()
    }

    /// Checks a whole answer: drops headers that carry the token, rewrites a
    /// `governed` (policy re-serialised JSON) body, or refuses any other body
    /// that carries it. `limit` bounds decoding a compressed body.
    pub fn scrub(
        &self,
        headers: &mut HeaderMap,
        body: &mut Bytes,
        governed: bool,
        limit: usize,
    ) -> Scrubbed {
        let mut out = Scrubbed {
            echoes: self.drop_headers(headers),
            refusal: None,
        };
        if body.is_empty() {
            return out;
        }
        if governed {
            if !self.found_in(body) {
                return out;
            }
            if let Some((rewritten, n)) = self.rewrite(body).filter(|(b, _)| !self.found_in(b)) {
                *body = Bytes::from(rewritten);
                out.echoes += n;
                return out;
            }
        } else {
            match self.plain_body(headers, body, limit) {
                Ok(false) => return out,
                Ok(true) => {}
                Err(why) => {
                    out.refusal = Some(Refusal::new(Kind::ResponseRefused, why));
                    return out;
                }
            }
        }
        out.echoes += 1;
        out.refusal = Some(Refusal::new(Kind::ResponseRefused, REFUSED));
        out
    }

    /// Removes every header whose name or value carries the token.
    fn drop_headers(&self, headers: &mut HeaderMap) -> u64 {
        let doomed: Vec<HeaderName> = headers
            .iter()
            .filter(|(name, value)| {
                self.lower.find(name.as_str().as_bytes()).is_some()
                    || self.found_in(value.as_bytes())
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut n = 0;
        for name in &doomed {
            n += headers.get_all(name).iter().count() as u64;
            headers.remove(name);
        }
        n
    }

    /// Whether a body that is not rewritten carries the token, decoded as
    /// its `Content-Encoding` says; one that cannot be decoded cannot be
    /// checked, and is refused.
    fn plain_body(&self, headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<bool, String> {
        let mut codings = headers.get_all(CONTENT_ENCODING).iter();
        let coding = codings.next().map(|v| v.to_str().unwrap_or("\u{0}"));
        if codings.next().is_some() {
            return Err("several Content-Encoding headers; the credential scan cannot run".into());
        }
        if self.found_in(body) {
            return Ok(true);
        }
        if coding.is_none() {
            return Ok(false);
        }
        let decoded = decode::decode(coding, body.clone(), limit)
            .map_err(|e| format!("the credential scan cannot decode the body: {e}"))?;
        Ok(self.found_in(&decoded))
    }

    /// Replaces the token in every string and key of a policy's output (JSON
    /// or NDJSON); `None` when it does not parse.
    fn rewrite(&self, body: &[u8]) -> Option<(Vec<u8>, u64)> {
        let mut docs: Vec<Value> = Vec::new();
        for line in body.split(|b| *b == b'\n') {
            if !line.trim_ascii().is_empty() {
                docs.push(serde_json::from_slice(line).ok()?);
            }
        }
        let mut n = 0;
        for doc in &mut docs {
            n += self.replace_in(doc);
        }
        let mut out = crate::json::to_ndjson(&docs);
        if body.last() != Some(&b'\n') {
            out.pop();
        }
        Some((out, n))
    }

    /// Replaces the token in the strings and keys of `value`; returns how
    /// many were changed. Recursion is bounded by the policy's depth limit,
    /// which the document already passed.
    fn replace_in(&self, value: &mut Value) -> u64 {
        match value {
            Value::String(s) => u64::from(self.replace_text(s)),
            Value::Array(items) => items.iter_mut().map(|v| self.replace_in(v)).sum(),
            Value::Object(map) => {
                let mut n: u64 = map.values_mut().map(|v| self.replace_in(v)).sum();
                if map.keys().any(|k| self.found_in(k.as_bytes())) {
                    n += self.replace_keys(map);
                }
                n
            }
            _ => 0,
        }
    }

    fn replace_keys(&self, map: &mut Map<String, Value>) -> u64 {
        let old = std::mem::take(map);
        // Keys stay unique within their object, clean ones included.
        let clean: HashSet<String> = old
            .keys()
            .filter(|k| !self.found_in(k.as_bytes()))
            .cloned()
            .collect();
        let mut n = 0;
        for (mut key, value) in old {
            if self.replace_text(&mut key) {
                n += 1;
                let base = key.clone();
                let mut i = 1;
                while clean.contains(&key) || map.contains_key(&key) {
                    i += 1;
                    key = format!("{base}{i}");
                }
            }
            map.insert(key, value);
        }
        n
    }

    /// Replaces each occurrence of the token in `s`; a string where it only
    /// shows behind escapes is replaced whole.
    fn replace_text(&self, s: &mut String) -> bool {
        if !self.found_in(s.as_bytes()) {
            return false;
        }
        let replaced = s.replace(&self.token, PLACEHOLDER);
        *s = if self.found_in(replaced.as_bytes()) {
            PLACEHOLDER.to_string()
        } else {
            replaced
        };
        true
    }
}

/// The echo scan of a streamed body: each chunk is searched together with
/// the bytes held back from the chunks before it, and the last bytes of
/// every window are held back until the next, so that a credential split
/// across chunks is found before any of it is sent.
pub struct Holdback {
    echo: Echo,
    /// The longest spelling of the token: `\u00XX` for each of its bytes.
    keep: usize,
    held: Vec<u8>,
}

/// The streamed body carried the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echoed;

impl Holdback {
    /// A scan for `echo`'s token.
    pub fn new(echo: Echo) -> Self {
        let keep = echo.token.len().saturating_mul(6);
        Holdback {
            echo,
            keep,
            held: Vec::new(),
        }
    }

    /// Takes the next chunk; returns the bytes now safe to send (the window
    /// but its last `keep` bytes), or [`Echoed`] when the window carries the
    /// token, as is or behind escapes.
    pub fn pass(&mut self, chunk: &[u8]) -> Result<Bytes, Echoed> {
        self.held.extend_from_slice(chunk);
        if self.echo.found_in(&self.held) {
            return Err(Echoed);
        }
        let release = self.held.len().saturating_sub(self.keep);
        let out = Bytes::copy_from_slice(&self.held[..release]);
        self.held.drain(..release);
        Ok(out)
    }

    /// The bytes still held at the end of the body (already scanned).
    pub fn rest(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.held))
    }

    /// Drops the headers that carry the token; returns how many.
    pub fn drop_headers(&self, headers: &mut HeaderMap) -> u64 {
        self.echo.drop_headers(headers)
    }
}

/// `data` with JSON string escapes and `%XX` escapes decoded, in one pass.
/// Malformed escapes are kept as they are. Text between escapes is copied
/// in runs, so a body with few escapes costs about a copy.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(found) = memchr::memchr2(b'\\', b'%', &data[i..]) {
        out.extend_from_slice(&data[i..i + found]);
        i += found;
        let rest = &data[i..];
        let used = match rest[0] {
            b'\\' => json_escape(rest, &mut out),
            _ => percent_escape(rest, &mut out),
        };
        if used == 0 {
            out.push(rest[0]);
            i += 1;
        } else {
            i += used;
        }
    }
    out.extend_from_slice(&data[i..]);
    out
}

/// `%XX` at the start of `s`: pushes the byte, returns 3 (0 if malformed).
fn percent_escape(s: &[u8], out: &mut Vec<u8>) -> usize {
    match hex(s.get(1..3)).and_then(|h| u8::try_from(h).ok()) {
        Some(byte) => {
            out.push(byte);
            3
        }
        None => 0,
    }
}

/// One JSON escape at the start of `s` (which starts with `\`): pushes its
/// UTF-8 bytes and returns its length (0 when it is not a valid escape).
fn json_escape(s: &[u8], out: &mut Vec<u8>) -> usize {
    let simple = match s.get(1) {
        Some(b'"') => b'"',
        Some(b'\\') => b'\\',
        Some(b'/') => b'/',
        Some(b'b') => 0x08,
        Some(b'f') => 0x0c,
        Some(b'n') => b'\n',
        Some(b'r') => b'\r',
        Some(b't') => b'\t',
        Some(b'u') => return unicode_escape(s, out),
        _ => return 0,
    };
    out.push(simple);
    2
}

/// `\uXXXX`, or a `\uD8xx\uDCxx` surrogate pair.
fn unicode_escape(s: &[u8], out: &mut Vec<u8>) -> usize {
    let Some(first) = hex(s.get(2..6)) else {
        return 0;
    };
    let (code, used) = if (0xD800..0xDC00).contains(&first) {
        match (s.get(6..8), hex(s.get(8..12))) {
            (Some(b"\\u"), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                (0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00), 12)
            }
            _ => return 0,
        }
    } else {
        (first, 6)
    };
    match char::from_u32(code) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            used
        }
        None => 0,
    }
}

/// The number some ASCII hex digits spell.
fn hex(digits: Option<&[u8]>) -> Option<u32> {
    let digits = std::str::from_utf8(digits?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Echo {
        Echo::new(&HeaderValue::from_static("Bearer s3cr/t+tok")).expect("a token")
    }

    #[test]
    fn finds_the_token_behind_escapes() {
        let e = echo();
        for hit in [
            &b"x s3cr/t+tok y"[..],
            br#""s3cr\/t+tok""#,
            br#""\u0073\u0033cr\u002ft+tok""#,
            b"s3cr%2Ft%2Btok",
        ] {
            assert!(e.found_in(hit), "{}", String::from_utf8_lossy(hit));
        }
        assert!(!e.found_in(b"s3cr/t tok"));
        assert!(!e.found_in(br#"s3cr\/t\u00"#));
    }

    #[test]
    fn governed_json_is_rewritten_in_strings_and_keys() {
        let e = echo();
        let mut body = Bytes::from_static(
            br#"{"auth":"Bearer s3cr/t+tok","s3cr/t+tok":1,"[CREDENTIAL]":2,"n":"x"}"#,
        );
        let scrub = e.scrub(&mut HeaderMap::new(), &mut body, true, 1 << 20);
        assert!(scrub.refusal.is_none());
        assert_eq!(scrub.echoes, 2);
        assert_eq!(
            &body[..],
            br#"{"auth":"Bearer [CREDENTIAL]","[CREDENTIAL]2":1,"[CREDENTIAL]":2,"n":"x"}"#
        );
    }

    #[test]
    fn other_bodies_are_refused_and_headers_dropped() {
        let e = echo();
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", HeaderValue::from_static("tok s3cr/t+tok"));
        headers.insert("x-fine", HeaderValue::from_static("1"));
        let mut body = Bytes::from_static(b"<p>s3cr/t+tok</p>");
        let scrub = e.scrub(&mut headers, &mut body, false, 1 << 20);
        assert!(scrub.refusal.is_some());
        assert_eq!(headers.len(), 1);
        let mut clean = Bytes::from_static(b"nothing here");
        assert!(
            e.scrub(&mut headers, &mut clean, false, 1 << 20)
                .refusal
                .is_none()
        );
    }

    #[test]
    fn a_token_split_across_chunks_is_found_before_any_of_it_is_sent() {
        let spelled = br#"x\u0073\u0033cr\/t+tok y"#;
        // Every cut that leaves at least the last byte of the token behind.
        for cut in 1..spelled.len() - 2 {
            let mut scan = Holdback::new(echo());
            let mut sent = Vec::new();
            let first = scan.pass(&spelled[..cut]).expect("no token yet");
            sent.extend_from_slice(&first);
            assert_eq!(scan.pass(&spelled[cut..]), Err(Echoed), "cut at {cut}");
            assert!(!echo().found_in(&sent) && sent.len() <= 1, "cut at {cut}");
        }
        let mut clean = Holdback::new(echo());
        let mut sent = clean.pass(b"nothing here, ").expect("clean").to_vec();
        sent.extend_from_slice(&clean.pass(b"nor here").expect("clean"));
        sent.extend_from_slice(&clean.rest());
        assert_eq!(sent, b"nothing here, nor here");
    }

    #[test]
    fn a_value_without_scheme_is_the_token() {
        let e = Echo::new(&HeaderValue::from_static("k-123")).expect("a token");
        assert!(e.found_in(b"key k-123"));
        assert!(Echo::new(&HeaderValue::from_static("  ")).is_none());
    }
}
