//! Credit cards: sliding windows over the groups of a digit run, checked by issuer digit and
//! Luhn.

use super::validate::byte_at;
use std::ops::Range;

/// Separator class between two groups of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Dot,
    SpaceDash,
}

/// End of the digit run of a card candidate that ends at `end` (just after a
/// digit): what `[0-9](?:(?:[ \t\n\r_\-]{1,3}|\.)?[0-9])*` matches greedily.
pub(super) fn run_end(b: &[u8], mut end: usize) -> usize {
    loop {
        let sep = match b.get(end) {
            Some(c) if c.is_ascii_digit() => 0,
            Some(b'.') => 1,
            Some(&c) if card_gap(c) => b[end..]
                .iter()
                .take(4)
                .take_while(|&&c| card_gap(c))
                .count(),
            _ => return end,
        };
        if sep > 3 || !byte_at(b, Some(end + sep)).is_ascii_digit() {
            return end;
        }
        end += sep + 1;
    }
}

/// Reports every card in a digit run. Windows start and end on group
/// boundaries, so `2026 4111 1111 1111 1111` still finds the card while a long
/// unseparated number is never cut into a card-sized piece.
pub(super) fn card_spans(b: &[u8], run: Range<usize>, found: &mut dyn FnMut(Range<usize>)) {
    let mut start = run.start;
    while start < run.end {
        let end = match best_card_at(b, start, run.end) {
            Some(end) => {
                found(start..end);
                end
            }
            None => digits_end(b, start, run.end),
        };
        start = next_group(b, end, run.end);
    }
}

/// End of the longest valid card starting at group `start`. Groups other than
/// the last have 4–6 digits (printed card formats) and all separators are of
/// one class.
fn best_card_at(b: &[u8], start: usize, limit: usize) -> Option<usize> {
    let (mut p, mut total, mut class, mut best) = (start, 0, None, None);
    loop {
        let end = digits_end(b, p, limit);
        total += end - p;
        if total > 19 {
            return best;
        }
        if total >= 13 && card_ok(b, start..end, class.is_none()) {
            best = Some(end);
        }
        if !(4..=6).contains(&(end - p)) || end >= limit {
            return best;
        }
        let c = if b[end] == b'.' {
            Sep::Dot
        } else {
            Sep::SpaceDash
        };
        if class.is_some_and(|k| k != c) {
            return best;
        }
        class = Some(c);
        p = next_group(b, end, limit);
    }
}

/// Issuer digit, Luhn, and for a single group: not the fraction or integer part
/// of a decimal number (`0.4111111111111111`).
fn card_ok(b: &[u8], w: Range<usize>, single: bool) -> bool {
    let decimal = |i: Option<usize>| byte_at(b, i) == b'.';
    let fraction = decimal(w.start.checked_sub(1));
    let integer = decimal(Some(w.end)) && byte_at(b, Some(w.end + 1)).is_ascii_digit();
    if single && (fraction || integer) {
        return false;
    }
    matches!(b.get(w.start), Some(b'2'..=b'6')) && luhn(b.get(w).unwrap_or_default())
}

pub(super) fn luhn(s: &[u8]) -> bool {
    let digits = s
        .iter()
        .rev()
        .filter(|c| c.is_ascii_digit())
        .map(|&c| u32::from(c - b'0'));
    let sum: u32 = digits
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d > 4 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A byte that may separate the digit groups of a card (1–3 in a row).
fn card_gap(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'_' | b'-')
}

fn digits_end(b: &[u8], mut p: usize, limit: usize) -> usize {
    while p < limit && b[p].is_ascii_digit() {
        p += 1;
    }
    p
}

fn next_group(b: &[u8], mut p: usize, limit: usize) -> usize {
    while p < limit && !b[p].is_ascii_digit() {
        p += 1;
    }
    p
}
