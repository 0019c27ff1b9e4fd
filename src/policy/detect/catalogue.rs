//! The built-in candidate patterns of each detector, and what a match of each means.

use super::bytes::{Bytes, Starts, alphabet};
use super::detector::Detector;
use std::sync::LazyLock;

/// What a pattern's match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An email candidate.
    Email,
    /// A card candidate: the start of a digit run of 13+ digits (13 in the
    /// pattern, extended to the whole run by hand).
    Card,
    /// A short candidate validated by the detector. A rejected one may hide a
    /// valid match of the same detector that starts inside it: retried there.
    Checked(Detector),
    /// Redacted as matched (JWT, custom patterns).
    Shape,
    /// A PEM-style header, validated and extended to its END line (or the
    /// end of the text) by `private_key`.
    Key,
}

/// Built-in candidates, run on the normalised (ASCII-folded) view, in the
/// automaton's priority order (which only decides which of several candidates
/// starting at one position the scan reports first; the others are then tried
/// anchored there): (detector, kind, lead, candidate).
///
/// A candidate with a lead starts at the start of the text or right after a
/// character of the lead class (that character is not part of it). The lead
/// class holds every character the validator accepts before a candidate (a
/// card run starts after a non-digit, an SSN, phone or IPv4 after no digit, an
/// AWS key after no upper-case letter or digit, an email local part after a
/// character that cannot be in it), so nothing is lost; in exchange the scan
/// neither starts candidates inside numbers and words nor re-matches their tails.
pub(super) const CANDIDATES: [(Detector, Kind, Option<&str>, &str); 9] = [
    // `[\w.%+'\-]+@[\w\-]+(?:\.[\w\-]+)+` with every non-ASCII character
    // taken for a word character (exact Unicode `\w` has over a hundred byte
    // classes, which slows the whole automaton); `exact_email` then finds
    // the exact candidate inside the match.
    (
        Detector::Email,
        Kind::Email,
        Some(r"[^A-Za-z0-9_.%+'\-\x{80}-\x{10FFFF}]"),
        concat!(
            r"[A-Za-z0-9_.%+'\-\x{80}-\x{10FFFF}]+@[A-Za-z0-9_\-\x{80}-\x{10FFFF}]+",
            r"(?:\.[A-Za-z0-9_\-\x{80}-\x{10FFFF}]+)+",
        ),
    ),
    (
        Detector::Iban,
        Kind::Checked(Detector::Iban),
        None,
        r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}",
    ),
    (
        Detector::Jwt,
        Kind::Shape,
        None,
        r"eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+){0,2}",
    ),
    // Any PEM-style header; `private_key` checks it and finds the end. (The
    // words of the exact header would split the byte classes further.)
    (
        Detector::PrivateKey,
        Kind::Key,
        None,
        r"-----[ A-Z0-9]+-----",
    ),
    // Any 20-character upper-case token starting with A; `aws_key` checks
    // the prefix.
    (
        Detector::AwsAccessKey,
        Kind::Checked(Detector::AwsAccessKey),
        Some(r"[^A-Z0-9]"),
        r"A[A-Z0-9]{19}",
    ),
    (
        Detector::UsSsn,
        Kind::Checked(Detector::UsSsn),
        Some(r"[^0-9]"),
        concat!(
            r"[0-9]{3}(?:-[0-9]{2}-|\.[0-9]{2}\.| [0-9]{2} )[0-9]{4}",
            // Spaced out, digit by digit: `5 3 6 - 2 2 - 1 2 3 4`, `5 3 6 2 2 1 2 3 4`.
            r"|[0-9](?: [0-9]){2}(?: ?- ?| )[0-9] [0-9](?: ?- ?| )[0-9](?: [0-9]){3}",
        ),
    ),
    (
        Detector::Ipv4,
        Kind::Checked(Detector::Ipv4),
        Some(r"[^0-9A-Za-z_]"),
        r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}",
    ),
    (
        Detector::Phone,
        Kind::Checked(Detector::Phone),
        Some(r"[^0-9]"),
        concat!(
            r"\+ ?[1-9][0-9 \-.()]{5,30}[0-9]",
            r"|(?:1[ \-.])?(?:\([0-9]{3}\) ?[0-9]{3}[\-. ][0-9]{4}",
            r"|[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4}|[0-9]{3} [0-9]{3} [0-9]{4})",
        ),
    ),
    (
        Detector::CreditCard,
        Kind::Card,
        Some(r"[^0-9]"),
        r"[0-9](?:(?:[ \t\n\r_\-]{1,3}|\.)?[0-9]){12}",
    ),
];

/// One pattern of the automaton.
#[derive(Debug, Clone)]
pub(super) struct Pat {
    /// Index into the redactor's entries.
    pub(super) entry: usize,
    pub(super) kind: Kind,
    /// The match starts with one lead character that is not part of the candidate.
    pub(super) lead: bool,
    pub(super) starts: Starts,
    /// The bytes a candidate can contain and end with.
    pub(super) alphabet: Bytes,
}

/// A built-in pattern: detector, what it means, its source.
pub(super) struct Builtin {
    pub(super) detector: Detector,
    pub(super) pat: Pat,
    pub(super) source: String,
}

/// The built-in patterns in priority order, each candidate with a lead as two
/// patterns (at the start of the text; after a lead character), with the
/// bytes they can start with, computed once per process.
pub(super) static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for (detector, kind, lead, body) in CANDIDATES {
        let mut push = |lead: bool, source: String| {
            out.push(Builtin {
                detector,
                pat: Pat {
                    entry: 0,
                    kind,
                    lead,
                    starts: Starts::ANY,
                    alphabet: alphabet(body),
                },
                source,
            })
        };
        match lead {
            None => push(false, body.to_owned()),
            Some(class) => {
                push(false, format!("^(?:{body})"));
                push(true, format!("{class}(?:{body})"));
            }
        }
    }
    let sources: Vec<&str> = out.iter().map(|b| b.source.as_str()).collect();
    let starts = Starts::of(&sources);
    let bodies: Vec<&str> = CANDIDATES.iter().map(|c| c.3).collect();
    let body_starts = Starts::of(&bodies);
    for (b, s) in out.iter_mut().zip(starts) {
        b.pat.starts = s;
        if b.pat.lead {
            let i = CANDIDATES.iter().position(|c| c.0 == b.detector);
            b.pat.starts.then = i.and_then(|i| body_starts.get(i)).map(|s| s.inner);
        }
    }
    out
});
