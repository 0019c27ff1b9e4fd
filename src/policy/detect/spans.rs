//! Spans: detected ranges of the normalised view, merged before they are replaced, and the
//! character-boundary steps the scan moves by.

use std::ops::Range;

/// A detected span of the normalised view and the entry that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) range: Range<usize>,
    pub(super) entry: usize,
}

/// Sorts spans and merges overlapping ones: the earliest (then longest) span's
/// label wins and the union is replaced, so no character is replaced twice and
/// no tail of a shorter overlapping span survives.
pub(super) fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable_by_key(|s| (s.range.start, std::cmp::Reverse(s.range.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(last) if span.range.start < last.range.end => {
                last.range.end = last.range.end.max(span.range.end);
            }
            _ => out.push(span),
        }
    }
    out
}

/// The byte index after the character at `i`.
pub(super) fn next_char(t: &str, i: usize) -> usize {
    i + t
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// The first character boundary at or after `i`.
pub(super) fn ceil_char(t: &str, mut i: usize) -> usize {
    while i < t.len() && !t.is_char_boundary(i) {
        i += 1;
    }
    i
}
