//! [`Redactor`]: all detectors of one `redact` rule compiled into one automaton, and the scan
//! that finds, validates, merges and replaces their spans.

use super::bytes::{ByteSet, Bytes, Starts, alphabet};
use super::card::{card_spans, run_end};
use super::catalogue::{BUILTINS, Kind, Pat};
use super::custom::{DetectError, build_automaton, check_custom, custom_label};
use super::detector::Detector;
use super::norm::Norm;
use super::prefilter::Stats;
use super::spans::{Span, ceil_char, merge, next_char};
use super::validate::{email, exact_email, private_key, validate};
use regex_automata::{Anchored, Input, PatternID, meta};
use std::ops::Range;

/// Restarts inside a redacted JWT, private key or custom match this long or
/// longer skip to its last `TAIL` bytes. Longer than any bounded candidate
/// (card 73, IBAN 64, phone 34 bytes), so what could reach past its end is seen.
const TAIL: usize = 256;

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
pub(super) enum Pass {
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
    pub(super) re: Option<meta::Regex>,
    pub(super) pats: Vec<Pat>,
    pub(super) entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// `None` for a custom pattern.
    pub(super) detector: Option<Detector>,
    pub(super) label: String,
    /// The bytes a match can start with (custom patterns: for the pre-filter).
    pub(super) starts: Needles,
}

/// A set of bytes to look for in a text: a few, each found with `memchr`, or
/// any number, tested byte by byte.
#[derive(Debug, Clone)]
pub(super) enum Needles {
    Few(Vec<u8>),
    Many(ByteSet),
}

impl Needles {
    pub(super) fn of(set: ByteSet) -> Needles {
        let bytes: Vec<u8> = (0..=u8::MAX).filter(|&c| set.has(c)).collect();
        if bytes.len() <= 3 {
            Needles::Few(bytes)
        } else {
            Needles::Many(set)
        }
    }

    pub(super) fn any_in(&self, hay: &[u8]) -> bool {
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
    pub(super) fn plausible(&self, t: &str) -> bool {
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
    pub(super) fn scan(&self, t: &str) -> Vec<Span> {
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
