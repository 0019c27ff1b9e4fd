//! The pre-filter: statistics of a string, gathered in one table-driven byte pass, that prove
//! a detector cannot match it, so that most strings are never scanned by the automaton.
//!
//! Every condition is necessary for the detector to report a span (its candidate pattern and
//! validator require it), so a string a detector could match is never skipped: the verdicts
//! are those of the full scan. They run on the normalised view, as the scan does.

use super::Detector;
use std::cell::OnceCell;

impl Detector {
    /// Whether a string with these statistics can hold a match at all.
    pub(super) fn plausible(self, st: &Stats<'_>) -> bool {
        match self {
            Detector::Email => st.has(AT),
            // 13+ digits joined by at most three separators each.
            Detector::CreditCard => st.digits >= 13 && st.run() >= 13,
            // Two letters and two digits start every candidate.
            Detector::Iban => {
                st.has(LETTER) && st.digits >= 2 && st.text.len() >= 15 && st.iban_head()
            }
            // `AAA-GG-SSSS` and its spaced-out forms: nine digits in one run.
            Detector::UsSsn => st.digits >= 9 && st.run() >= 9,
            // `+` and 8–15 digits, or the ten digits of a NANP number in one run.
            Detector::Phone => st.digits >= 8 && (st.has(PLUS) || st.run() >= 10),
            Detector::Ipv4 => st.has(DOT) && st.digits >= 4,
            Detector::Jwt => st.has(UPPER_J) && st.holds(b"eyJ"),
            Detector::AwsAccessKey => st.has(UPPER_A) && st.aws_prefix(),
            Detector::PrivateKey => st.has(DASH) && st.holds(b"-----"),
        }
    }
}

/// What a string contains, gathered in one table-driven byte pass.
#[derive(Debug)]
pub(super) struct Stats<'a> {
    text: &'a str,
    digits: usize,
    flags: u16,
    /// The longest run of digits (computed when a detector asks).
    run: OnceCell<usize>,
}

const DIGIT: u16 = 1;
const AT: u16 = 2;
const DOT: u16 = 4;
const DASH: u16 = 8;
const LETTER: u16 = 16;
const UPPER_J: u16 = 32;
const UPPER_A: u16 = 64;
const PLUS: u16 = 128;
/// A byte the normalised view may change: non-ASCII, `%` or `\\`.
const FOLDS: u16 = 256;

/// Byte classes of the pre-filter.
static CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match i as u8 {
            b'0'..=b'9' => DIGIT,
            b'@' => AT,
            b'.' => DOT,
            b'-' => DASH,
            b'A' => LETTER | UPPER_A,
            b'J' => LETTER | UPPER_J,
            b'a'..=b'z' | b'B'..=b'Z' => LETTER,
            b'+' => PLUS,
            b'%' | b'\\' | 0x80..=0xff => FOLDS,
            _ => 0,
        };
        i += 1;
    }
    table
};

impl<'a> Stats<'a> {
    pub(super) fn of(text: &'a str) -> Stats<'a> {
        let (mut digits, mut flags) = (0, 0);
        for &c in text.as_bytes() {
            let class = CLASS[usize::from(c)];
            flags |= class;
            digits += usize::from(class & DIGIT);
        }
        Stats {
            text,
            digits,
            flags,
            run: OnceCell::new(),
        }
    }

    /// Whether the normalised view of the text may differ from it.
    pub(super) fn folds(&self) -> bool {
        self.has(FOLDS)
    }

    /// The text the statistics are of.
    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    fn has(&self, class: u16) -> bool {
        self.flags & class != 0
    }

    /// An AWS key prefix (`AK`, `AS`, `AB`, `AC`, `A3`) occurs.
    fn aws_prefix(&self) -> bool {
        self.text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'A' && matches!(w[1], b'K' | b'S' | b'B' | b'C' | b'3'))
    }

    /// Whether `needle` occurs (the strings are short: a plain window compare beats setting
    /// up a substring searcher).
    fn holds(&self, needle: &[u8]) -> bool {
        self.text
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle)
    }

    /// The most digits in one run, where a run is digits joined by at most three of
    /// ` \t\n\r_-.()` each: card, SSN and NANP phone candidates all lie in one.
    fn run(&self) -> usize {
        *self.run.get_or_init(|| {
            let (mut best, mut run, mut gap) = (0, 0, 0);
            for &c in self.text.as_bytes() {
                if c.is_ascii_digit() {
                    run += 1;
                    gap = 0;
                    best = best.max(run);
                } else if matches!(
                    c,
                    b' ' | b'\t' | b'\n' | b'\r' | b'_' | b'-' | b'.' | b'(' | b')'
                ) && gap < 3
                {
                    gap += 1;
                } else {
                    run = 0;
                    gap = 0;
                }
            }
            best
        })
    }

    /// Two ASCII letters followed by two digits occur (the start of an IBAN candidate).
    fn iban_head(&self) -> bool {
        self.text.as_bytes().windows(4).any(|w| {
            w[0].is_ascii_alphabetic()
                && w[1].is_ascii_alphabetic()
                && w[2].is_ascii_digit()
                && w[3].is_ascii_digit()
        })
    }
}
