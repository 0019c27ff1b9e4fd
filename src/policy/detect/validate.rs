//! Validators of the candidates, one per detector. All work on the normalised view, where digits
//! are ASCII.

use super::detector::Detector;
use regex::Regex;
use regex_automata::util::look::LookMatcher;
use std::ops::Range;
use std::sync::LazyLock;

/// Validates a candidate; returns the span to redact (possibly trimmed).
pub(super) fn validate(d: Detector, t: &str, r: Range<usize>) -> Option<Range<usize>> {
    let b = t.as_bytes();
    match d {
        Detector::Email => email(t, r),
        Detector::Iban => iban(b, r),
        Detector::UsSsn => ssn(b, r),
        Detector::Phone => phone(b, r),
        Detector::Ipv4 => ipv4(b, r),
        Detector::AwsAccessKey => aws_key(b, r),
        Detector::PrivateKey => private_key(t, r),
        Detector::Jwt => Some(r),
        Detector::CreditCard => None,
    }
}

pub(super) fn byte_at(b: &[u8], i: Option<usize>) -> u8 {
    i.and_then(|i| b.get(i)).copied().unwrap_or(0)
}

/// Whether `r` stands alone: no digit right before or after it, and no `sep`
/// chaining it to more digits (`1-078-05-1120`, `1.2.3.4.5`).
fn isolated(b: &[u8], r: &Range<usize>, sep: u8) -> bool {
    let before = byte_at(b, r.start.checked_sub(1));
    let before2 = byte_at(b, r.start.checked_sub(2));
    let after = byte_at(b, Some(r.end));
    let after2 = byte_at(b, Some(r.end + 1));
    let touches = |c: u8, c2: u8| c.is_ascii_digit() || (c == sep && c2.is_ascii_digit());
    !touches(before, before2) && !touches(after, after2)
}

/// The email candidate `[\w.%+'\-]+@[\w\-]+(?:\.[\w\-]+)+` (Unicode `\w`)
/// finds inside `r`, a match of the automaton's email pattern (which takes
/// every non-ASCII character for a word character): the local-part
/// characters right before the `@`, and the longest run of dotted labels
/// after it.
pub(super) fn exact_email(t: &str, r: Range<usize>) -> Option<Range<usize>> {
    let b = t.as_bytes();
    let at = r.start + t.get(r.clone())?.find('@')?;
    let mut start = at;
    while let Some(c) = t.get(r.start..start).and_then(|s| s.chars().next_back()) {
        let local = matches!(c, '.' | '%' | '+' | '\'' | '-') || is_word(t, start - c.len_utf8());
        if !local {
            break;
        }
        start -= c.len_utf8();
    }
    let label = |mut i: usize| {
        while let Some(c) = t.get(i..r.end).and_then(|s| s.chars().next()) {
            if c != '-' && !is_word(t, i) {
                break;
            }
            i += c.len_utf8();
        }
        i
    };
    let mut end = label(at + 1);
    let first = end;
    while end > at + 1 && byte_at(b, Some(end)) == b'.' && end < r.end {
        let next = label(end + 1);
        if next == end + 1 {
            break;
        }
        end = next;
    }
    (start < at && end > first).then_some(start..end)
}

/// Whether the character at `i` is a Unicode word character (`\w`).
fn is_word(t: &str, i: usize) -> bool {
    match t.as_bytes().get(i) {
        None => false,
        Some(&c) if c.is_ascii() => c.is_ascii_alphanumeric() || c == b'_',
        Some(_) => LookMatcher::new()
            .is_word_end_half_unicode(t.as_bytes(), i)
            .is_ok_and(|not_word| !not_word),
    }
}

pub(super) fn email(t: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = t.get(r.clone())?;
    let at = s.find('@')?;
    // A local part cannot start with '.'; a leading quote is most likely quoting.
    let local = s[..at].trim_start_matches(['.', '\'']);
    let domain = s[at + 1..].trim_end_matches('-');
    if local.is_empty() {
        return None;
    }
    let tld = domain.rsplit('.').next()?;
    let named = tld.chars().count() >= 2 && tld.chars().any(char::is_alphabetic);
    // `user@10.0.0.1`: an IPv4 literal domain.
    let numeric = domain.split('.').count() == 4
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()));
    (named || numeric).then(|| r.start + (at - local.len())..r.start + at + 1 + domain.len())
}

fn ssn(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    let s = b.get(r.clone())?;
    let mut digits = [0u8; 9];
    let mut n = 0;
    for &c in s.iter().filter(|c| c.is_ascii_digit()) {
        *digits.get_mut(n)? = c;
        n += 1;
    }
    if n != 9 {
        return None;
    }
    let num = |x: &[u8]| x.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    let (area, group, serial) = (num(&digits[0..3]), num(&digits[3..5]), num(&digits[5..9]));
    let valid = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    // `AAA-GG-SSSS` chains by its own separator; a spaced-out one by spaces.
    let sep = if s.len() == 11 { s[3] } else { b' ' };
    (valid && isolated(b, &r, sep)).then_some(r)
}

fn phone(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    if b.get(r.start) == Some(&b'+') {
        return international(b, r);
    }
    // The separator before the last four digits tells the format's separator.
    let sep = byte_at(b, r.end.checked_sub(5));
    isolated(b, &r, sep).then_some(r)
}

/// `+` and 8–15 digits; a run longer than 15 digits is cut after the last
/// group that still fits (it is then followed by unrelated numbers).
fn international(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    if r.start > 0 && byte_at(b, Some(r.start - 1)).is_ascii_alphanumeric() {
        return None;
    }
    let (mut digits, mut end) = (0, None);
    for i in r.clone() {
        if !b[i].is_ascii_digit() {
            continue;
        }
        digits += 1;
        if digits > 15 {
            break;
        }
        if !byte_at(b, Some(i + 1)).is_ascii_digit() || i + 1 == r.end {
            end = Some((i + 1, digits));
        }
    }
    let (end, n) = end?;
    (n >= 8).then_some(r.start..end)
}

fn ipv4(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    let s = b.get(r.clone())?;
    let octets_ok = s
        .split(|&c| c == b'.')
        .all(|o| o.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0')) <= 255);
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let before = byte_at(b, r.start.checked_sub(1));
    let after = byte_at(b, Some(r.end));
    (octets_ok && !word(before) && !word(after) && isolated(b, &r, b'.')).then_some(r)
}

fn aws_key(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    let prefix = b.get(r.clone()).and_then(|k| k.get(..4))?;
    if !matches!(
        prefix,
        b"AKIA" | b"ASIA" | b"ABIA" | b"ACCA" | [b'A', b'3', b'T', _]
    ) {
        return None;
    }
    let token = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let before = byte_at(b, r.start.checked_sub(1));
    let after = byte_at(b, Some(r.end));
    (!token(before) && !token(after)).then_some(r)
}

/// A `-----BEGIN … PRIVATE KEY-----` header (`r`, any `-----[ A-Z0-9]+-----`)
/// and everything up to the matching END line, or to the end of the text.
pub(super) fn private_key(t: &str, r: Range<usize>) -> Option<Range<usize>> {
    pub(super) static END: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s:.*?)(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\z)")
            .expect("private key end regex compiles")
    });
    let header = t.get(r.start + 5..r.end.checked_sub(5)?)?;
    let rest = header.strip_prefix("BEGIN")?;
    if !(rest.ends_with("PRIVATE KEY") || rest.ends_with("PRIVATE KEY BLOCK")) {
        return None;
    }
    let end = END.find_at(t, r.end).map_or(t.len(), |m| m.end());
    Some(r.start..end)
}

/// Longest prefix of the candidate that is a valid IBAN. Mod-97 of every
/// prefix is computed in one pass; only passing prefixes are parsed.
fn iban(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    pub(super) const MAX: usize = 34;
    let (mut chars, mut ends, mut n) = ([0u8; MAX], [0usize; MAX], 0);
    for i in r.clone() {
        if b[i] == b' ' {
            continue;
        }
        if n == MAX {
            break;
        }
        chars[n] = b[i].to_ascii_uppercase();
        ends[n] = i + 1;
        n += 1;
    }
    // The first four characters move to the end: value = bban * 10^6 + head.
    let head = mod97(&chars[..4], 0);
    let mut bban = 0;
    let mut best = None;
    for len in 5..=n {
        bban = mod97(&chars[len - 1..len], bban);
        if len >= 15 && (bban * 1_000_000 + head) % 97 == 1 {
            best = Some(len).filter(|&l| parses_as_iban(&chars[..l])).or(best);
        }
    }
    best.map(|len| r.start..ends[len - 1])
}

/// Folds characters into a running mod-97 value (letters count as two digits).
fn mod97(chars: &[u8], acc: u32) -> u32 {
    chars.iter().fold(acc, |acc, &c| match c {
        b'0'..=b'9' => (acc * 10 + u32::from(c - b'0')) % 97,
        _ => (acc * 100 + u32::from(c.saturating_sub(b'A')) + 10) % 97,
    })
}

fn parses_as_iban(chars: &[u8]) -> bool {
    std::str::from_utf8(chars).is_ok_and(|s| s.parse::<iban::Iban>().is_ok())
}
