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

//!
//! Files:
//! - `detector.rs`: [`Detector`], the catalogue of built-in detectors.
//! - `catalogue.rs`: their candidate patterns, and what a match of each means.
//! - `redactor.rs`: [`Redactor`], the one automaton of a rule and the scan that replaces spans.
//! - `custom.rs`: custom patterns, their limits and checks, [`DetectError`], building the automaton.
//! - `bytes.rs`: the bytes a pattern can start with, contain and end with.
//! - `spans.rs`: detected spans and their merging.
//! - `validate.rs`: the validators of each detector's candidates (IBAN mod-97 among them).
//! - `card.rs`: credit card windows over a digit run, and Luhn.
//! - `norm.rs`: the ASCII-folded view scanned, and the map back to the original bytes.
//! - `prefilter.rs`: byte statistics that prove a string holds no match.

mod bytes;
mod card;
mod catalogue;
mod custom;
mod detector;
mod norm;
mod prefilter;
mod redactor;
mod spans;
#[cfg(test)]
mod tests;
mod validate;

pub use custom::DetectError;
pub use detector::Detector;
pub use redactor::{Redacted, Redactor};

#[cfg(test)]
use card::{card_spans, luhn};
#[cfg(test)]
use norm::{DASHES, DECIMAL_DIGITS, Fold, INVISIBLE, Norm, SPACES, decimal_digit, fold_char};
#[cfg(test)]
use regex::Regex;
#[cfg(test)]
use spans::{Span, merge};
#[cfg(test)]
use validate::exact_email;
