//! The stream engine's tokens, read exactly as strictly as `json::parse_bounded` reads them
//! (serde_json's grammar plus the range check on numbers). Structure, depth, element budget and
//! duplicate keys are the walk's part ([`super::engine`]).
//!
//! The input is known to be UTF-8 before any token is read (`str::from_utf8` on the whole
//! body: serde_json refuses invalid UTF-8 inside strings, and outside them any byte above 0x7F
//! is a syntax error anyway), so a string without escapes is its own text. A string with
//! escapes is decoded by serde_json itself, which decides which escapes and surrogate pairs are
//! valid.

use std::borrow::Cow;

/// The input is not strict JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Invalid;

/// The position of the first byte at or after `i` that is not JSON whitespace.
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if !crate::json::is_json_ws(*c) {
            break;
        }
        i += 1;
    }
    i
}

/// A string token at `start` (its opening quote) up to `end` (past its closing quote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    /// It holds a backslash: its text is not its value.
    pub(super) escaped: bool,
}

impl Span {
    /// The string's value: borrowed from `text` unless it has escapes.
    pub(super) fn decode<'t>(&self, text: &'t str) -> Result<Cow<'t, str>, Invalid> {
        let quoted = text.get(self.start..self.end).ok_or(Invalid)?;
        if !self.escaped {
            return quoted
                .get(1..quoted.len() - 1)
                .map(Cow::Borrowed)
                .ok_or(Invalid);
        }
        serde_json::from_str::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| Invalid)
    }

    /// The token as it appears in the input, quotes included.
    pub(super) fn raw<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.start..self.end).unwrap_or("\"\"")
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `v` that is zero (exact for the lowest such byte).
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// The index of the first byte in `chunk` that ends or escapes a string or is a control
/// character (`"`, `\`, below 0x20), if any.
fn special_in(chunk: [u8; 8]) -> Option<usize> {
    let v = u64::from_le_bytes(chunk);
    let control = v.wrapping_sub(ONES * 0x20) & !v & HIGHS;
    let found = control | zero_bytes(v ^ (ONES * u64::from(b'"'))) | zero_bytes(v ^ (ONES * 0x5c));
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// Reads the string token whose opening quote is at `start`.
pub(super) fn string(b: &[u8], start: usize) -> Result<Span, Invalid> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time up to the next special byte.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            match special_in(word) {
                Some(k) => {
                    i += k;
                    break;
                }
                None => i += 8,
            }
        }
        match b.get(i) {
            None => return Err(Invalid),
            Some(b'"') => {
                return Ok(Span {
                    start,
                    end: i + 1,
                    escaped,
                });
            }
            Some(b'\\') => {
                // Which escapes are valid is decided by the decoder; the byte after the
                // backslash only must not end the string here.
                escaped = true;
                i += 2;
            }
            Some(c) if *c < 0x20 => return Err(Invalid),
            Some(_) => i += 1,
        }
    }
}

/// A number token: `start..end`, and whether serde_json writes it as it is in the input.
#[derive(Debug, Clone, Copy)]
pub(super) struct Number {
    pub(super) start: usize,
    pub(super) end: usize,
    /// An exponent written `E`, or without a sign: serde_json keeps `e+`.
    pub(super) respelled: bool,
}

impl Number {
    /// The text serde_json keeps for this number (`arbitrary_precision`): the input's, with
    /// the exponent written `e`, signed.
    pub(super) fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let raw = text.get(self.start..self.end).unwrap_or("0");
        if !self.respelled {
            return Cow::Borrowed(raw);
        }
        let Some(e) = raw.find(['e', 'E']) else {
            return Cow::Borrowed(raw);
        };
        let (mantissa, exp) = raw.split_at(e);
        let digits = &exp[1..];
        let sign = if digits.starts_with(['+', '-']) {
            ""
        } else {
            "+"
        };
        Cow::Owned(format!("{mantissa}e{sign}{digits}"))
    }
}

/// Reads the number token at `start`: RFC 8259's grammar, and refused when it overflows a
/// double (as `json::parse_bounded` refuses it).
pub(super) fn number(b: &[u8], start: usize) -> Result<Number, Invalid> {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let digits_from = |mut i: usize| {
        while digit(i) {
            i += 1;
        }
        i
    };
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if digit(i) {
                return Err(Invalid);
            }
        }
        Some(b'1'..=b'9') => i = digits_from(i + 1),
        _ => return Err(Invalid),
    }
    if b.get(i) == Some(&b'.') {
        if !digit(i + 1) {
            return Err(Invalid);
        }
        i = digits_from(i + 1);
    }
    let mut respelled = false;
    let mut exponent = false;
    if let Some(e @ (b'e' | b'E')) = b.get(i) {
        exponent = true;
        respelled = *e == b'E';
        i += 1;
        match b.get(i) {
            Some(b'+' | b'-') => i += 1,
            _ => respelled = true,
        }
        if !digit(i) {
            return Err(Invalid);
        }
        i = digits_from(i);
    }
    let token = Number {
        start,
        end: i,
        respelled,
    };
    // Only numbers with an exponent or over 308 digits can overflow (as in json.rs).
    if exponent || i - start > 308 {
        let text = std::str::from_utf8(&b[start..i]).map_err(|_| Invalid)?;
        if crate::json::overflows_f64(text) {
            return Err(Invalid);
        }
    }
    Ok(token)
}

/// `true`, `false` or `null` at `start`: the position after it.
pub(super) fn literal(b: &[u8], start: usize) -> Result<usize, Invalid> {
    let rest = b.get(start..).unwrap_or_default();
    for word in [&b"true"[..], b"false", b"null"] {
        if rest.starts_with(word) {
            return Ok(start + word.len());
        }
    }
    Err(Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_found_at_their_first_position() {
        assert_eq!(special_in(*b"abcdefgh"), None);
        assert_eq!(special_in(*b"ab\"defgh"), Some(2));
        assert_eq!(special_in(*b"abcdefg\\"), Some(7));
        assert_eq!(special_in(*b"\x1fbcdefgh"), Some(0));
        assert_eq!(special_in(*b"\xc3\xa9\x7f !#[]"), None);
        assert_eq!(special_in(*b"a\x00\"\\\x01xyz"), Some(1));
    }

    #[test]
    fn strings_end_at_the_first_unescaped_quote() {
        let b = br#""a\"b\\" x"#;
        let s = string(b, 0).expect("string");
        assert_eq!(s.end, 8);
        assert!(s.escaped);
        assert_eq!(string(b"\"abc", 0), Err(Invalid));
        assert_eq!(string(b"\"a\tb\"", 0), Err(Invalid));
        assert_eq!(string(b"\"abcdefghijklmnop\\", 0), Err(Invalid));
    }

    #[test]
    fn numbers_follow_the_grammar_and_keep_serde_json_spelling() {
        let text = "-12.5E3,";
        let n = number(text.as_bytes(), 0).expect("number");
        assert_eq!(n.end, 7);
        assert_eq!(n.text(text), "-12.5e+3");
        for bad in ["01", "-", "1.", "1e", "1e+", ".5", "+1", "-a", "1e400"] {
            assert_eq!(
                number(bad.as_bytes(), 0).map(|n| n.end),
                Err(Invalid),
                "{bad}"
            );
        }
        assert_eq!(number(b"0.5e-2]", 0).map(|n| n.end), Ok(6));
    }
}
