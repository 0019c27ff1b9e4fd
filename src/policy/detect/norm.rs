//! The ASCII-folded view detectors scan, and the map back to the original bytes.

use std::borrow::Cow;
use std::ops::Range;

/// An ASCII-folded view of a string and the map back to the original bytes.
#[derive(Debug)]
pub(super) struct Norm<'a> {
    pub(super) text: Cow<'a, str>,
    /// Places where the view differs from the original, in order. Between
    /// edits the two are byte-for-byte equal.
    pub(super) edits: Vec<Edit>,
}

/// `orig_len` original bytes at `orig` became `norm_len` bytes at `norm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Edit {
    norm: usize,
    orig: usize,
    norm_len: usize,
    orig_len: usize,
}

/// What normalisation does with one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    Keep,
    Drop,
    To(char),
}

impl<'a> Norm<'a> {
    /// The view of a string known to need no folding: `s` itself.
    pub(super) fn plain(s: &'a str) -> Norm<'a> {
        Norm {
            text: Cow::Borrowed(s),
            edits: Vec::new(),
        }
    }

    /// Borrows `s` when nothing needs folding (the common case: no allocation).
    pub(super) fn new(s: &'a str) -> Norm<'a> {
        // Pure ASCII without `%` or `\\` cannot change: skip the byte loop.
        let plain = s.is_ascii() && !s.contains('%') && !s.contains('\\');
        let first = if plain { None } else { next_edit(s, 0) };
        let Some(first) = first else {
            return Norm {
                text: Cow::Borrowed(s),
                edits: Vec::new(),
            };
        };
        let mut text = String::with_capacity(s.len());
        let mut edits = Vec::new();
        let (mut done, mut next) = (0, Some(first));
        while let Some((at, fold, len)) = next {
            text.push_str(s.get(done..at).unwrap_or(""));
            let norm_len = match fold {
                Fold::To(c) => {
                    text.push(c);
                    c.len_utf8()
                }
                Fold::Drop | Fold::Keep => 0,
            };
            edits.push(Edit {
                norm: text.len() - norm_len,
                orig: at,
                norm_len,
                orig_len: len,
            });
            done = at + len;
            next = next_edit(s, done);
        }
        text.push_str(s.get(done..).unwrap_or(""));
        Norm {
            text: Cow::Owned(text),
            edits,
        }
    }

    /// The original byte range of a non-empty range of the view.
    pub(super) fn to_orig(&self, r: Range<usize>) -> Range<usize> {
        let start = match self.edit_at(r.start) {
            None => r.start,
            Some(e) if r.start < e.norm + e.norm_len => e.orig,
            Some(e) => e.orig + e.orig_len + (r.start - e.norm - e.norm_len),
        };
        let last = r.end.saturating_sub(1).max(r.start);
        let end = match self.edit_at(last) {
            None => last + 1,
            Some(e) if last < e.norm + e.norm_len => e.orig + e.orig_len,
            Some(e) => e.orig + e.orig_len + (last + 1 - e.norm - e.norm_len),
        };
        start..end
    }

    /// The last edit at or before view position `pos`.
    fn edit_at(&self, pos: usize) -> Option<&Edit> {
        let i = self.edits.partition_point(|e| e.norm <= pos);
        self.edits.get(i.checked_sub(1)?)
    }
}

/// The next place at or after `from` where the view differs from `s`:
/// (byte index, fold, original length).
fn next_edit(s: &str, from: usize) -> Option<(usize, Fold, usize)> {
    let b = s.as_bytes();
    let mut i = from;
    loop {
        let rest = b.get(i..)?;
        i += rest
            .iter()
            .position(|&c| c >= 0x80 || c == b'%' || c == b'\\')?;
        let found = match b[i] {
            b'%' => percent_at(b, i).map(|(fold, len)| (fold, len, 1)),
            b'\\' => unicode_escape_at(b, i).map(|(fold, len)| (fold, len, 1)),
            _ => {
                let ch = s.get(i..).and_then(|r| r.chars().next())?;
                Some((fold_char(ch), ch.len_utf8(), ch.len_utf8()))
            }
        };
        match found {
            Some((fold, len, _)) if fold != Fold::Keep => return Some((i, fold, len)),
            Some((_, _, step)) => i += step,
            None => i += 1,
        }
    }
}

/// A decoded character is folded too (`%EF%BC%A0` is a full-width `@`).
fn fold_decoded(c: char) -> Fold {
    match fold_char(c) {
        Fold::Keep => Fold::To(c),
        other => other,
    }
}

/// `%XX` (and the `%XX` continuation bytes of one UTF-8 character).
fn percent_at(b: &[u8], i: usize) -> Option<(Fold, usize)> {
    let first = hex_pair(b, i)?;
    let n = match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut buf = [first, 0, 0, 0];
    for (k, slot) in buf.iter_mut().enumerate().take(n).skip(1) {
        *slot = hex_pair(b, i + 3 * k)?;
    }
    let c = std::str::from_utf8(&buf[..n]).ok()?.chars().next()?;
    Some((fold_decoded(c), 3 * n))
}

fn hex_pair(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    let hi = (*b.get(i + 1)? as char).to_digit(16)?;
    let lo = (*b.get(i + 2)? as char).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// A literal `\uXXXX` escape (or surrogate pair), as left by double-encoded JSON.
fn unicode_escape_at(b: &[u8], i: usize) -> Option<(Fold, usize)> {
    let hi = hex4(b, i)?;
    if !(0xD800..0xDC00).contains(&hi) {
        return Some((fold_decoded(char::from_u32(hi)?), 6));
    }
    let lo = hex4(b, i + 6).filter(|lo| (0xDC00..0xE000).contains(lo))?;
    let c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?;
    Some((fold_decoded(c), 12))
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
        return None;
    }
    b.get(i + 2..i + 6)?
        .iter()
        .try_fold(0u32, |n, &c| Some(n * 16 + (c as char).to_digit(16)?))
}

/// NFKC-like folding of the characters used to dodge detectors.
pub(super) fn fold_char(c: char) -> Fold {
    let u = u32::from(c);
    if u < 0x80 {
        return Fold::Keep;
    }
    if let Some(d) = decimal_digit(u) {
        return Fold::To(d);
    }
    let to = match u {
        0xFF01..=0xFF5E => char::from_u32(u - 0xFEE0),
        0xFE6B => Some('@'),
        0x3002 | 0xFF61 | 0xFE52 | 0x2024 | 0xB7 | 0x2027 => Some('.'),
        0xB2 | 0xB3 => char::from_digit(u - 0xB0, 10),
        0xB9 => Some('1'),
        0x2070 | 0x2074..=0x2079 => char::from_digit(u - 0x2070, 10),
        0x2080..=0x2089 => char::from_digit(u - 0x2080, 10),
        _ if in_table(u, DASHES) => Some('-'),
        _ if in_table(u, SPACES) => Some(' '),
        _ if in_table(u, INVISIBLE) => return Fold::Drop,
        _ => None,
    };
    to.map_or(Fold::Keep, Fold::To)
}

fn in_table(u: u32, table: &[(u32, u32)]) -> bool {
    let i = table.partition_point(|&(_, hi)| hi < u);
    table.get(i).is_some_and(|&(lo, _)| lo <= u)
}

/// The ASCII digit of a Unicode decimal digit (general category Nd).
pub(super) fn decimal_digit(u: u32) -> Option<char> {
    let i = DECIMAL_DIGITS.partition_point(|&(_, hi)| hi < u);
    let &(lo, _) = DECIMAL_DIGITS.get(i).filter(|&&(lo, _)| lo <= u)?;
    char::from_digit((u - lo) % 10, 10)
}

#[rustfmt::skip]
/// Unicode 16 Nd ranges; each starts at a digit zero.
pub(super) const DECIMAL_DIGITS: &[(u32, u32)] = &[
    (0x30, 0x39), (0x660, 0x669), (0x6F0, 0x6F9), (0x7C0, 0x7C9), (0x966, 0x96F),
    (0x9E6, 0x9EF), (0xA66, 0xA6F), (0xAE6, 0xAEF), (0xB66, 0xB6F), (0xBE6, 0xBEF),
    (0xC66, 0xC6F), (0xCE6, 0xCEF), (0xD66, 0xD6F), (0xDE6, 0xDEF), (0xE50, 0xE59),
    (0xED0, 0xED9), (0xF20, 0xF29), (0x1040, 0x1049), (0x1090, 0x1099), (0x17E0, 0x17E9),
    (0x1810, 0x1819), (0x1946, 0x194F), (0x19D0, 0x19D9), (0x1A80, 0x1A89), (0x1A90, 0x1A99),
    (0x1B50, 0x1B59), (0x1BB0, 0x1BB9), (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0xA620, 0xA629),
    (0xA8D0, 0xA8D9), (0xA900, 0xA909), (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59),
    (0xABF0, 0xABF9), (0xFF10, 0xFF19), (0x104A0, 0x104A9), (0x10D30, 0x10D39), (0x10D40, 0x10D49),
    (0x11066, 0x1106F), (0x110F0, 0x110F9), (0x11136, 0x1113F), (0x111D0, 0x111D9), (0x112F0, 0x112F9),
    (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659), (0x116C0, 0x116C9), (0x116D0, 0x116E3),
    (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959), (0x11BF0, 0x11BF9), (0x11C50, 0x11C59),
    (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x11F50, 0x11F59), (0x16130, 0x16139), (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9), (0x16B50, 0x16B59), (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9), (0x1D7CE, 0x1D7FF),
    (0x1E140, 0x1E149), (0x1E2F0, 0x1E2F9), (0x1E4F0, 0x1E4F9), (0x1E5F1, 0x1E5FA), (0x1E950, 0x1E959),
    (0x1FBF0, 0x1FBF9),
];

#[rustfmt::skip]
/// Dash punctuation (Pd) and minus signs, folded to `-`.
pub(super) const DASHES: &[(u32, u32)] = &[
    (0x58A, 0x58A), (0x5BE, 0x5BE), (0x1400, 0x1400), (0x1806, 0x1806), (0x2010, 0x2015),
    (0x2043, 0x2043), (0x2212, 0x2212), (0x2796, 0x2796), (0x2E17, 0x2E17), (0x2E1A, 0x2E1A),
    (0x2E3A, 0x2E3B), (0x2E40, 0x2E40), (0x2E5D, 0x2E5D), (0x301C, 0x301C), (0x3030, 0x3030),
    (0x30A0, 0x30A0), (0xFE31, 0xFE32), (0xFE58, 0xFE58), (0xFE63, 0xFE63), (0x10D6E, 0x10D6E),
    (0x10EAD, 0x10EAD),
];

#[rustfmt::skip]
/// Space separators (Zs), line/paragraph separators and the braille blank, folded to ` `.
pub(super) const SPACES: &[(u32, u32)] = &[
    (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F),
    (0x205F, 0x205F), (0x2800, 0x2800), (0x3000, 0x3000),
];

#[rustfmt::skip]
/// Dropped: format characters (Cf: zero-width, soft hyphen, bidi controls,
/// tags), combining marks, variation selectors and Hangul fillers.
pub(super) const INVISIBLE: &[(u32, u32)] = &[
    (0xAD, 0xAD), (0x300, 0x36F), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x115F, 0x1160), (0x180E, 0x180E),
    (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0x20D0, 0x20FF), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
    (0xE0100, 0xE01EF),
];
