//! PII detectors of the `redact` rule.
//!
//! Each string value is scanned on its own. Every detected span is replaced by
//! `[LABEL]`; text outside the spans is left as it is.
//!
//! | Detector | Candidate | Validation |
//! |---|---|---|
//! | `email` | `local@domain.tld`, Unicode letters allowed (IDN, homoglyphs) | top-level label of 2+ characters with a letter, or a numeric (IP) domain |
//! | `credit_card` | runs of digits with 1–3 of ` `, tab, line break, `_`, `-` (or one `.` or `·`) between them | 13–19 digits, first digit 2–6, Luhn; windows slide over the groups of a run |
//! | `iban` | 2 letters, 2 digits, 11–30 letters/digits, single spaces allowed | longest prefix with a valid mod-97 and country BBAN format (`iban` crate) |
//! | `us_ssn` | `AAA-GG-SSSS`, also with one space or dot; spaced out `5 3 6 - 2 2 - 1 2 3 4` | area not 000/666/900–999, group not 00, serial not 0000, not part of a longer number |
//! | `phone` | `+` and 8–15 digits; `(555) 123-4567`, `555-123-4567`, `555.123.4567`, `555 123 4567` | E.164 length; not part of a longer number |
//! | `ipv4` | four dotted numbers | octets 0–255, not part of a longer dotted number or word (`v1.2.3.4`) |
//! | `jwt` | `eyJ…` and 2–4 more base64url segments | none beyond the shape |
//! | `aws_access_key` | `AKIA`/`ASIA`/`ABIA`/`ACCA`/`A3T?` and 16 upper-case letters/digits | not inside a longer upper-case token |
//! | `private_key` | PEM `-----BEGIN … PRIVATE KEY-----` to the matching END | a block without an END is redacted to the end of the string |
//!
//! Custom `patterns:` are plain regexes with size limits; one that can match the
//! empty string is refused.
//!
//! Detection sees through evasions: the string is first folded into an ASCII
//! view (Unicode decimal digits, full-width forms, dash and space variants,
//! superscript digits, invisible format characters and combining marks,
//! `%XX` percent-encoding, literal `\uXXXX` escapes) and each byte of that view
//! maps back to the original bytes it came from, so the whole original span is
//! replaced.
//!
//! One pass: every candidate pattern of the rule (built-in and custom) is
//! compiled into one multi-pattern automaton (`regex_automata::meta::Regex`),
//! and each string is scanned once with it; the pattern id of a match says
//! which detector validates it. Candidates of different detectors may overlap
//! (a rejected email-shaped candidate must not hide the SSN inside it, a card
//! and an SSN may start at the same digit), so:
//! - the other patterns that may start with the same bytes are tried anchored
//!   where a candidate starts;
//! - after a candidate the scan resumes at its start, unless it is a redacted
//!   span inside which no other candidate can start and reach past its end
//!   (decided from the bytes each pattern can start with and contain);
//! - per-detector cursors skip a detector's own re-matches inside a candidate
//!   it already handled.
//!
//! Most candidates must follow a character their validator accepts before them
//! (an SSN, phone, IPv4 or card after no digit, an AWS key after no upper-case
//! letter or digit, an email local part after a character it cannot contain),
//! which the automaton checks itself: it then neither starts candidates inside
//! numbers and words nor re-matches their tails. The automaton is kept small
//! (few byte classes and states, so its tables stay in cache): a card
//! candidate is 13 digits, extended to its whole digit run by hand; an email
//! candidate takes any non-ASCII character for a word character and is narrowed
//! to the exact candidate by hand; private keys and AWS keys are found by their
//! shape (`-----…-----`, `A` and 19 more) and their exact prefix is checked by
//! hand. A byte-statistics pre-filter
//! skips strings that cannot hold any match (too few digits, no `@`, no `eyJ`,
//! none of the bytes a custom pattern starts with, ...).
//!
//! Judgement calls and residual risks:
//! - SSNs without separators (`078051120`) and phone numbers without separators
//!   or `+` (`1234567890`) are not detected: plain 9–10 digit integers are far
//!   more often ids, zip codes or Unix timestamps.
//! - Card numbers glued to a decimal point (`0.4111111111111111`) are taken for
//!   decimals; cards with 20+ digits of unseparated padding, split by other
//!   punctuation (`4111/1111/…`, `0.7.8-…`) or across several JSON values, or
//!   starting with 1, 7, 8 or 9, are missed. A Luhn-valid 13–19 digit id starting
//!   with 2–6 is redacted (about one in ten such ids).
//! - Base64, gzip, double percent-encoding (`%2540`), HTML entities (`&#64;`),
//!   `(at)`/`(dot)` spelling, quoted local parts with spaces and letters from
//!   other scripts that merely look like ASCII (for IBAN and AWS keys) are not
//!   decoded. National phone formats other than the NANP 3-3-4 shape need a `+`.
//! - `ipv4` also redacts four-part versions such as `Chrome/120.0.0.0`; `email`
//!   also redacts asset names such as `icon@2x.png`.
//! - Inside a JWT, private key block or custom match longer than 256 bytes,
//!   matches of other detectors are only looked for in its last 256 bytes
//!   (the only ones that could reach past its end); the rest is redacted anyway.

use regex::{Regex, RegexBuilder};
use regex_automata::hybrid::dfa::DFA;
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::look::LookMatcher;
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, Input, MatchKind, PatternID, meta};
use std::ops::Range;
use std::sync::LazyLock;

mod norm;
mod prefilter;
#[cfg(test)]
mod tests;

use norm::Norm;
#[cfg(test)]
use norm::{DASHES, DECIMAL_DIGITS, Fold, INVISIBLE, SPACES, decimal_digit, fold_char};
use prefilter::Stats;

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    Email,
    CreditCard,
    Iban,
    UsSsn,
    Phone,
    Ipv4,
    Jwt,
    AwsAccessKey,
    PrivateKey,
}

impl Detector {
    /// Every built-in detector, in config order.
    pub const ALL: [Detector; 9] = [
        Detector::Email,
        Detector::CreditCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::Phone,
        Detector::Ipv4,
        Detector::Jwt,
        Detector::AwsAccessKey,
        Detector::PrivateKey,
    ];

    /// Config name: "email", "credit_card", "iban", "us_ssn", "phone", "ipv4",
    /// "jwt", "aws_access_key", "private_key".
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::CreditCard => "credit_card",
            Detector::Iban => "iban",
            Detector::UsSsn => "us_ssn",
            Detector::Phone => "phone",
            Detector::Ipv4 => "ipv4",
            Detector::Jwt => "jwt",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::PrivateKey => "private_key",
        }
    }

    /// Replacement label without brackets, upper case: "EMAIL", "CREDIT_CARD", ...
    pub fn label(self) -> &'static str {
        match self {
            Detector::Email => "EMAIL",
            Detector::CreditCard => "CREDIT_CARD",
            Detector::Iban => "IBAN",
            Detector::UsSsn => "US_SSN",
            Detector::Phone => "PHONE",
            Detector::Ipv4 => "IPV4",
            Detector::Jwt => "JWT",
            Detector::AwsAccessKey => "AWS_ACCESS_KEY",
            Detector::PrivateKey => "PRIVATE_KEY",
        }
    }

    /// The detector of a config name (ASCII case ignored).
    pub fn from_name(s: &str) -> Option<Detector> {
        Detector::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// What a pattern's match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
const CANDIDATES: [(Detector, Kind, Option<&str>, &str); 9] = [
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
struct Pat {
    /// Index into the redactor's entries.
    entry: usize,
    kind: Kind,
    /// The match starts with one lead character that is not part of the candidate.
    lead: bool,
    starts: Starts,
    /// The bytes a candidate can contain and end with.
    alphabet: Bytes,
}

/// A built-in pattern: detector, what it means, its source.
struct Builtin {
    detector: Detector,
    pat: Pat,
    source: String,
}

/// The built-in patterns in priority order, each candidate with a lead as two
/// patterns (at the start of the text; after a lead character), with the
/// bytes they can start with, computed once per process.
static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
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

/// Restarts inside a redacted JWT, private key or custom match this long or
/// longer skip to its last `TAIL` bytes. Longer than any bounded candidate
/// (card 73, IBAN 64, phone 34 bytes), so what could reach past its end is seen.
const TAIL: usize = 256;
/// Compiled-size limit of one custom pattern (regex `size_limit`).
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit of one custom pattern (regex `dfa_size_limit`).
const CUSTOM_DFA_LIMIT: usize = 1 << 20;
/// Limits of the combined set (plus one custom limit per custom pattern): the
/// built-ins alone compile to under 256 KiB.
const SET_SIZE_LIMIT: usize = 2 << 20;
const SET_DFA_LIMIT: usize = 4 << 20;

/// A `redact` rule that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A custom pattern that does not compile or would match the empty string.
    #[error("redact pattern '{name}' is not usable: {reason}")]
    BadPattern { name: String, reason: String },
    /// A custom pattern name that cannot be a `[LABEL]`.
    #[error("redact pattern name '{name}' is not usable: {reason}")]
    BadName { name: String, reason: String },
}

/// The result of redacting one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The string with each detected span replaced by `[LABEL]`.
    pub text: String,
    /// How many spans were replaced.
    pub count: usize,
}

/// Scans of one string at most: the first, and rescans while placeholders
/// uncover more.
const MAX_PASSES: usize = 4;

/// Which scan of a string [`Redactor::redact`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every detector and custom pattern.
    First,
    /// Built-in detectors only, over text that already holds placeholders.
    Rescan,
}

/// All detectors of one `redact` rule, compiled once at policy load.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// One automaton over every pattern of the rule; a match's pattern id
    /// indexes `pats`. `None` when the rule has no detector at all.
    re: Option<meta::Regex>,
    pats: Vec<Pat>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None` for a custom pattern.
    detector: Option<Detector>,
    label: String,
    /// The bytes a match can start with (custom patterns: for the pre-filter).
    starts: Needles,
}

/// A set of bytes to look for in a text: a few, each found with `memchr`, or
/// any number, tested byte by byte.
#[derive(Debug, Clone)]
enum Needles {
    Few(Vec<u8>),
    Many(ByteSet),
}

impl Needles {
    fn of(set: ByteSet) -> Needles {
        let bytes: Vec<u8> = (0..=u8::MAX).filter(|&c| set.has(c)).collect();
        if bytes.len() <= 3 {
            Needles::Few(bytes)
        } else {
            Needles::Many(set)
        }
    }

    fn any_in(&self, hay: &[u8]) -> bool {
        match self {
            Needles::Few(bytes) => bytes.iter().any(|c| hay.contains(c)),
            Needles::Many(set) => hay.iter().any(|&c| set.has(c)),
        }
    }
}

impl Redactor {
    /// `custom` are (name, regex source) pairs from the rule's `patterns:` map;
    /// the label is the name upper-cased ("ticket-secret" -> "TICKET-SECRET").
    pub fn new(
        builtins: &[Detector],
        custom: &[(String, String)],
    ) -> Result<Redactor, DetectError> {
        let mut entries: Vec<Entry> = Vec::new();
        for &d in builtins {
            if !entries.iter().any(|e| e.detector == Some(d)) {
                entries.push(Entry {
                    detector: Some(d),
                    label: d.label().to_owned(),
                    starts: Needles::Many(ByteSet::ALL),
                });
            }
        }
        for (name, src) in custom {
            let label = custom_label(name)?;
            check_custom(name, src)?;
            entries.push(Entry {
                detector: None,
                label,
                starts: Needles::Many(ByteSet::ALL),
            });
        }
        let mut pats = Vec::new();
        let mut sources = Vec::new();
        for b in BUILTINS.iter() {
            if let Some(entry) = entries.iter().position(|e| e.detector == Some(b.detector)) {
                pats.push(Pat { entry, ..b.pat });
                sources.push(b.source.as_str());
            }
        }
        let custom_sources: Vec<&str> = custom.iter().map(|(_, src)| src.as_str()).collect();
        let first_custom = entries.len() - custom.len();
        for (i, starts) in Starts::of(&custom_sources).into_iter().enumerate() {
            if let Some(e) = entries.get_mut(first_custom + i) {
                let mut any = starts.first;
                any.union(starts.inner);
                e.starts = Needles::of(any);
            }
            pats.push(Pat {
                entry: first_custom + i,
                kind: Kind::Shape,
                lead: false,
                starts,
                alphabet: custom_sources.get(i).map_or(
                    Bytes {
                        all: ByteSet::ALL,
                        last: ByteSet::ALL,
                    },
                    |src| alphabet(src),
                ),
            });
        }
        sources.extend(custom_sources);
        let re = if sources.is_empty() {
            None
        } else {
            Some(build_automaton(&sources, custom)?)
        };
        Ok(Redactor { re, pats, entries })
    }

    /// Finds every detected span in `s`; `None` when nothing is found (without
    /// allocating unless a candidate fired), otherwise the new string with each
    /// span replaced by `[LABEL]` and how many spans were replaced.
    ///
    /// A placeholder is a boundary the original text did not have: no phone
    /// number is read in `DE89370400440532013000+14155550134` (a digit touches
    /// the `+`), but one is in `[IBAN]+14155550134`. So the result is scanned
    /// again by the built-in detectors until they find nothing more (four
    /// scans at most): what crosses holds nothing they would redact. Custom
    /// patterns are not rescanned: one may match a placeholder's own label.
    pub fn redact(&self, s: &str) -> Option<Redacted> {
        let mut done = self.redact_once(s, Pass::First)?;
        for _ in 1..MAX_PASSES {
            let Some(more) = self.redact_once(&done.text, Pass::Rescan) else {
                break;
            };
            done = Redacted {
                text: more.text,
                count: done.count + more.count,
            };
        }
        Some(done)
    }

    /// One scan of `s`: [`Redactor::redact`] without the rescans.
    fn redact_once(&self, s: &str, pass: Pass) -> Option<Redacted> {
        // One byte pass tells both whether the view differs from `s` and, when it does not
        // (nearly always), whether any detector can match.
        let first = Stats::of(s);
        let norm = if first.folds() {
            Norm::new(s)
        } else {
            Norm::plain(s)
        };
        let t: &str = &norm.text;
        let plausible = match norm.edits.is_empty() && t.len() == s.len() {
            true => self.plausible_in(&first),
            false => self.plausible(t),
        };
        if !plausible {
            return None;
        }
        let mut spans = self.scan(t);
        if pass == Pass::Rescan {
            spans.retain(|span| {
                self.entries
                    .get(span.entry)
                    .is_some_and(|e| e.detector.is_some())
            });
        }
        if spans.is_empty() {
            return None;
        }
        let spans = merge(spans);
        Some(self.splice(s, &norm, &spans))
    }

    /// Cheap pre-filter: can any detector of this rule match `t`?
    fn plausible(&self, t: &str) -> bool {
        self.plausible_in(&Stats::of(t))
    }

    /// [`Redactor::plausible`] on statistics already gathered.
    fn plausible_in(&self, stats: &Stats<'_>) -> bool {
        self.entries.iter().any(|e| match e.detector {
            None => e.starts.any_in(stats.text().as_bytes()),
            Some(d) => d.plausible(stats),
        })
    }

    /// The one scan: every validated span of every entry, unmerged.
    fn scan(&self, t: &str) -> Vec<Span> {
        let mut spans = Vec::new();
        let Some(re) = &self.re else {
            return spans;
        };
        // Per entry: candidates starting before this were already handled.
        let mut small = [0usize; 16];
        let mut large = Vec::new();
        let cursor: &mut [usize] = match small.get_mut(..self.entries.len()) {
            Some(c) => c,
            None => {
                large.resize(self.entries.len(), 0);
                &mut large
            }
        };
        let mut at = 0;
        while at < t.len() {
            let Some(m) = re.search(&Input::new(t).range(at..)) else {
                break;
            };
            let (s, first) = (m.start(), m.pattern().as_usize());
            let mut resume = self.take(t, first, m.range(), cursor, &mut spans);
            // The scan reports the first pattern (in priority order) that
            // matches at `s`; later ones may match there too.
            for (k, pat) in self.pats.iter().enumerate().skip(first + 1) {
                if cursor.get(pat.entry).is_some_and(|&c| c > s) || !pat.starts.may(t, s) {
                    continue;
                }
                let anchored = Input::new(t)
                    .range(s..)
                    .anchored(Anchored::Pattern(PatternID::new_unchecked(k)));
                if let Some(m) = re.search(&anchored) {
                    resume = resume.min(self.take(t, k, m.range(), cursor, &mut spans));
                }
            }
            at = resume.max(next_char(t, s));
        }
        spans
    }

    /// Handles a match `r` of pattern `k`: validates the candidate (the match
    /// without its lead character), pushes its spans and moves the entry's
    /// cursor. Returns where the scan has to resume for this candidate's sake:
    /// its start, or past a redacted span inside which no other detector can
    /// start a match that reaches out of it.
    fn take(
        &self,
        t: &str,
        k: usize,
        r: Range<usize>,
        cursor: &mut [usize],
        out: &mut Vec<Span>,
    ) -> usize {
        let Some(pat) = self.pats.get(k) else {
            return r.end;
        };
        let (entry, b) = (pat.entry, t.as_bytes());
        let start = if pat.lead {
            next_char(t, r.start)
        } else {
            r.start
        };
        let r = start..r.end;
        let Some(cur) = cursor.get_mut(entry) else {
            return start;
        };
        let mut found = None;
        match pat.kind {
            // Distinct email candidates start at distinct local-part starts;
            // no cursor is needed.
            Kind::Email => found = exact_email(t, r.clone()).and_then(|r| email(t, r)),
            Kind::Card if start >= *cur => {
                let run = start..run_end(b, r.end);
                *cur = run.end;
                let before = out.len();
                card_spans(b, run.clone(), &mut |c| out.push(Span { range: c, entry }));
                // Other candidates may start inside the run (phones, SSNs)
                // unless it is one card, redacted whole.
                let whole = out.len() == before + 1 && out.last().is_some_and(|s| s.range == run);
                if whole && self.sealed(t, entry, &run) {
                    return run.end;
                }
            }
            Kind::Checked(d) if start >= *cur => {
                let retry = next_char(t, start);
                found = validate(d, t, r.clone());
                *cur = found.as_ref().map_or(retry, |f| f.end.max(retry));
            }
            Kind::Shape | Kind::Key => {
                if start >= *cur {
                    let found = match pat.kind {
                        Kind::Key => private_key(t, r.clone()),
                        _ => Some(r.clone()).filter(|r| !r.is_empty()),
                    };
                    let Some(range) = found else {
                        *cur = next_char(t, start);
                        return start;
                    };
                    *cur = range.end.max(next_char(t, start));
                    out.push(Span { range, entry });
                }
                // The rest of this entry's span from here on.
                let span = start..*cur;
                if self.sealed(t, entry, &span) {
                    return span.end;
                }
                // Within a long redacted span only matches that could reach
                // past its end matter: skip to its last bytes.
                return ceil_char(t, span.end.saturating_sub(TAIL)).max(start);
            }
            Kind::Card | Kind::Checked(_) => {}
        }
        match found {
            Some(range) => {
                let resume = if range.start == start && self.sealed(t, entry, &range) {
                    range.end
                } else {
                    start
                };
                out.push(Span { range, entry });
                resume
            }
            None => start,
        }
    }

    /// Whether no other candidate can start inside the span `r` of `entry`
    /// and reach past its end: none can contain the byte after the span (and
    /// end there or contain the next one too), or none can start at any byte
    /// of it. Then the
    /// scan can resume after the span (what starts and ends inside it is
    /// merged into it anyway).
    fn sealed(&self, t: &str, entry: usize, r: &Range<usize>) -> bool {
        let b = t.as_bytes();
        let Some(&next) = b.get(r.end) else {
            return true;
        };
        let Some(inside) = b.get(r.clone()).filter(|s| s.len() <= TAIL) else {
            return false;
        };
        let mut starts = ByteSet::EMPTY;
        for p in &self.pats {
            // An entry's own later candidates inside are skipped by its
            // cursor, except an email's (any local part start counts).
            let reaches = p.alphabet.all.has(next)
                && (p.alphabet.last.has(next)
                    || b.get(r.end + 1).is_some_and(|&c| p.alphabet.all.has(c)));
            if (p.entry != entry || p.kind == Kind::Email) && reaches {
                starts.union(p.starts.inner);
            }
        }
        !inside.iter().any(|&c| starts.has(c))
    }

    /// Rebuilds `s` with the original bytes of each span replaced by its label.
    fn splice(&self, s: &str, norm: &Norm<'_>, spans: &[Span]) -> Redacted {
        let mut text = String::with_capacity(s.len());
        let mut last = 0;
        for span in spans {
            let orig = norm.to_orig(span.range.clone());
            // The map is monotone and char-aligned; `get` only guards against a bug.
            text.push_str(s.get(last..orig.start).unwrap_or(""));
            text.push('[');
            text.push_str(
                self.entries
                    .get(span.entry)
                    .map_or("REDACTED", |e| &e.label),
            );
            text.push(']');
            last = last.max(orig.end);
        }
        text.push_str(s.get(last..).unwrap_or(""));
        Redacted {
            text,
            count: spans.len(),
        }
    }
}

/// Upper-cased label of a custom pattern name.
fn custom_label(name: &str) -> Result<String, DetectError> {
    let bad = |reason: &str| DetectError::BadName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.trim().is_empty() {
        return Err(bad(
            "the name is empty; give the pattern a name such as ticket-secret",
        ));
    }
    if name.chars().any(|c| c == '[' || c == ']' || c.is_control()) {
        return Err(bad(
            "the name becomes the [LABEL]; use letters, digits, '-' or '_'",
        ));
    }
    Ok(name.to_uppercase())
}

/// Checks one custom pattern with size limits and refuses empty matches.
fn check_custom(name: &str, src: &str) -> Result<(), DetectError> {
    let bad = |reason: String| DetectError::BadPattern {
        name: name.to_owned(),
        reason,
    };
    let re = RegexBuilder::new(src)
        .size_limit(CUSTOM_SIZE_LIMIT)
        .dfa_size_limit(CUSTOM_DFA_LIMIT)
        .build()
        .map_err(|e| bad(describe(&e)))?;
    if matches_empty(&re) {
        return Err(bad(
            "it can match the empty string, so it would redact between every character; \
             make it require at least one character (e.g. `+` instead of `*`, no optional whole)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A one-line reason with a hint, from a regex compile error.
fn describe(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(msg) => {
            let detail = msg
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(msg.trim());
            format!(
                "invalid regex: {detail}; use Rust regex syntax (no look-around or \
                 backreferences) and escape literal metacharacters with '\\'"
            )
        }
        regex::Error::CompiledTooBig(limit) => too_big(*limit),
        other => format!("{other}; simplify the pattern"),
    }
}

fn too_big(limit: usize) -> String {
    format!(
        "it compiles to more than {} KiB; nested or large counted repetitions \
         (such as {{1000}} or (?:..){{64}}{{64}}) multiply its size, use smaller counts",
        limit / 1024
    )
}

/// Whether `re` can match the empty string. Empty matches depend only on the
/// neighbouring characters' classes (word ASCII/Unicode, space, line ends,
/// text edges), so probing every pair of those classes covers all cases.
fn matches_empty(re: &Regex) -> bool {
    const CLASSES: [&str; 6] = ["a", "é", " ", "\n", "\r", "-"];
    let mut probe = String::new();
    let empty = |p: &str| re.find_iter(p).any(|m| m.is_empty());
    if empty("") {
        return true;
    }
    for a in CLASSES {
        for b in CLASSES {
            probe.clear();
            probe.push_str(a);
            probe.push_str(b);
            if empty(a) || empty(&probe) {
                return true;
            }
        }
    }
    false
}

/// The one automaton over all patterns, leftmost-first in priority order.
fn build_automaton(
    sources: &[&str],
    custom: &[(String, String)],
) -> Result<meta::Regex, DetectError> {
    let extra = custom.len() * CUSTOM_SIZE_LIMIT;
    let config = meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .which_captures(WhichCaptures::Implicit)
        .nfa_size_limit(Some(SET_SIZE_LIMIT + extra))
        .onepass_size_limit(Some(SET_SIZE_LIMIT + extra))
        .hybrid_cache_capacity(SET_DFA_LIMIT);
    meta::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new().utf8(true))
        .build_many(sources)
        .map_err(|e| DetectError::BadPattern {
            name: custom
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: format!(
                "the patterns together with the built-in detectors fail to compile: {}",
                e.size_limit()
                    .map_or_else(|| format!("{e}; simplify the pattern"), too_big)
            ),
        })
}

/// The bytes a pattern's match can start with: at the start of the text, and
/// anywhere else. A superset is fine (it only costs an anchored try).
#[derive(Debug, Clone, Copy)]
struct Starts {
    first: ByteSet,
    inner: ByteSet,
    /// For a pattern with a lead: the bytes the candidate after it can start with.
    then: Option<ByteSet>,
}

impl Starts {
    const ANY: Starts = Starts {
        first: ByteSet::ALL,
        inner: ByteSet::ALL,
        then: None,
    };

    /// Whether the pattern may match at `s` of `t`.
    fn may(&self, t: &str, s: usize) -> bool {
        let b = t.as_bytes();
        let set = if s == 0 { &self.first } else { &self.inner };
        set.has(byte_at(b, Some(s)))
            && self
                .then
                .is_none_or(|then| then.has(byte_at(b, Some(next_char(t, s)))))
    }

    /// Probes the anchored start state of each pattern of a lazy DFA with
    /// every byte, for each kind of preceding context (text start, word
    /// byte, non-word byte, `\n`, `\r`). Anything unexpected means "any byte".
    fn of(sources: &[&str]) -> Vec<Starts> {
        if sources.is_empty() {
            return Vec::new();
        }
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .starts_for_each_pattern(true)
                    .unicode_word_boundary(true),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(sources);
        let Ok(dfa) = dfa else {
            return vec![Starts::ANY; sources.len()];
        };
        let mut cache = dfa.create_cache();
        let mut probe = |pid: PatternID, look_behind: Option<u8>| {
            let config = start::Config::new()
                .anchored(Anchored::Pattern(pid))
                .look_behind(look_behind);
            let Ok(sid) = dfa.start_state(&mut cache, &config) else {
                return ByteSet::ALL;
            };
            let mut set = ByteSet::EMPTY;
            for byte in 0..=u8::MAX {
                if !dfa
                    .next_state(&mut cache, sid, byte)
                    .is_ok_and(|next| next.is_dead())
                {
                    set.insert(byte);
                }
            }
            set
        };
        (0..sources.len())
            .map(|i| {
                let pid = PatternID::new_unchecked(i);
                let mut inner = ByteSet::EMPTY;
                for lb in [b'a', b' ', b'\n', b'\r'] {
                    inner.union(probe(pid, Some(lb)));
                }
                Starts {
                    first: probe(pid, None),
                    inner,
                    then: None,
                }
            })
            .collect()
    }
}

/// The bytes a match of `source` can contain and end with: every byte of
/// every transition reachable from its anchored start, and of those that lead
/// to a match without consuming more (any byte if it does not compile).
fn alphabet(source: &str) -> Bytes {
    use thompson::State;
    let any = Bytes {
        all: ByteSet::ALL,
        last: ByteSet::ALL,
    };
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().which_captures(WhichCaptures::None))
        .build(source);
    let Ok(nfa) = nfa else {
        return any;
    };
    // Whether a state reaches a match without consuming a byte (look-around
    // assertions taken as satisfied): walk the epsilon edges backwards from
    // the match states.
    let states = nfa.states();
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); states.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let mut edge = |next: StateID| {
            if let Some(v) = back.get_mut(next.as_usize()) {
                v.push(i);
            }
        };
        match state {
            State::Match { .. } => todo.push(i),
            State::Look { next, .. } | State::Capture { next, .. } => edge(*next),
            State::Union { alternates } => alternates.iter().copied().for_each(edge),
            State::BinaryUnion { alt1, alt2 } => {
                edge(*alt1);
                edge(*alt2);
            }
            _ => {}
        }
    }
    let mut matches = vec![false; states.len()];
    while let Some(i) = todo.pop() {
        match matches.get_mut(i) {
            Some(m) if !*m => *m = true,
            _ => continue,
        }
        todo.extend(back.get(i).into_iter().flatten());
    }
    let ends = |id: StateID| matches.get(id.as_usize()).copied().unwrap_or(true);
    let mut out = Bytes {
        all: ByteSet::EMPTY,
        last: ByteSet::EMPTY,
    };
    let mut seen = vec![false; states.len()];
    let mut todo = vec![nfa.start_anchored()];
    while let Some(id) = todo.pop() {
        match seen.get_mut(id.as_usize()) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        let mut step = |lo: u8, hi: u8, next: StateID| {
            out.all.insert_range(lo, hi);
            if ends(next) {
                out.last.insert_range(lo, hi);
            }
            todo.push(next);
        };
        match nfa.state(id) {
            State::ByteRange { trans } => step(trans.start, trans.end, trans.next),
            State::Sparse(sparse) => {
                for trans in sparse.transitions.iter() {
                    step(trans.start, trans.end, trans.next);
                }
            }
            State::Dense(dense) => {
                for (byte, &next) in (0..=u8::MAX).zip(dense.transitions.iter()) {
                    if next != StateID::ZERO {
                        step(byte, byte, next);
                    }
                }
            }
            State::Look { next, .. } | State::Capture { next, .. } => todo.push(*next),
            State::Union { alternates } => todo.extend(alternates.iter().copied()),
            State::BinaryUnion { alt1, alt2 } => todo.extend([*alt1, *alt2]),
            State::Fail | State::Match { .. } => {}
        }
    }
    out
}

/// What [`alphabet`] finds.
#[derive(Debug, Clone, Copy)]
struct Bytes {
    all: ByteSet,
    last: ByteSet,
}

/// A set of bytes.
#[derive(Debug, Clone, Copy)]
struct ByteSet([u64; 4]);

impl ByteSet {
    const EMPTY: ByteSet = ByteSet([0; 4]);
    const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    fn has(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }

    fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for byte in lo..=hi {
            self.insert(byte);
        }
    }

    fn union(&mut self, other: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
}

// ---------------------------------------------------------------------------
// Spans

/// A detected span of the normalised view and the entry that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    range: Range<usize>,
    entry: usize,
}

/// Sorts spans and merges overlapping ones: the earliest (then longest) span's
/// label wins and the union is replaced, so no character is replaced twice and
/// no tail of a shorter overlapping span survives.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
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
fn next_char(t: &str, i: usize) -> usize {
    i + t
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// The first character boundary at or after `i`.
fn ceil_char(t: &str, mut i: usize) -> usize {
    while i < t.len() && !t.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Validates a candidate; returns the span to redact (possibly trimmed).
fn validate(d: Detector, t: &str, r: Range<usize>) -> Option<Range<usize>> {
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

// ---------------------------------------------------------------------------
// Validators (all work on the normalised view, where digits are ASCII)

fn byte_at(b: &[u8], i: Option<usize>) -> u8 {
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
fn exact_email(t: &str, r: Range<usize>) -> Option<Range<usize>> {
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

fn email(t: &str, r: Range<usize>) -> Option<Range<usize>> {
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
fn private_key(t: &str, r: Range<usize>) -> Option<Range<usize>> {
    static END: LazyLock<Regex> = LazyLock::new(|| {
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
    const MAX: usize = 34;
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

// ---------------------------------------------------------------------------
// Credit cards: sliding windows over the groups of a digit run

/// Separator class between two groups of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Dot,
    SpaceDash,
}

/// End of the digit run of a card candidate that ends at `end` (just after a
/// digit): what `[0-9](?:(?:[ \t\n\r_\-]{1,3}|\.)?[0-9])*` matches greedily.
fn run_end(b: &[u8], mut end: usize) -> usize {
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
fn card_spans(b: &[u8], run: Range<usize>, found: &mut dyn FnMut(Range<usize>)) {
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

fn luhn(s: &[u8]) -> bool {
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
