//! The hash chain: how a line is sealed, and how a log is verified.
//!
//! Shared by the writer ([`seal`]) and `customs audit verify` ([`verify`]),
//! so the two can never disagree about the format.
//!
//! # Line format
//!
//! Every line is one JSON object followed by `\n`:
//!
//! ```text
//! {"seq":N,"prev":"<64 hex>",<record fields…>,"hash":"<64 hex>"}
//! ```
//!
//! - `seq`: 1 for the first record of a new log, then +1 per record, across
//!   rotated files and restarts.
//! - `prev`: the `hash` of the previous record; 64 `0`s when `seq` is 1.
//! - `hash`: lowercase hex SHA-256 of the *unsealed line* `U`: the exact
//!   bytes of the written line up to, not including, the final
//!   `,"hash":"` member, followed by a single `}`. That is,
//!   `U = {"seq":N,"prev":"…",<record fields…>}` byte for byte as written.
//!
//! `hash` is always the last member, so a line is exactly `U` without its
//! closing `}`, then `,"hash":"`, 64 hex digits, `"}` and `\n`. Verification
//! cuts that fixed 75-byte suffix off and hashes what is left plus `}`: it
//! never re-serialises JSON, so it does not depend on serialisation being
//! canonical. The line is still parsed (strictly: duplicate keys are
//! refused) to read `seq` and `prev`.
//!
//! # What the chain proves
//!
//! Altering, removing, inserting or reordering any record breaks the chain at
//! the first affected line. Limits:
//! - records cut from the *start* show only as a first `seq` other than 1
//!   ([`Verified::first_seq`]);
//! - records cut from the *end* show only against an independently kept
//!   copy of the last `seq`/`hash` (the writer logs it at open, rotation and
//!   shutdown);
//! - the chain is unkeyed: someone able to rewrite every line from some point
//!   on can recompute the hashes;
//! - file boundaries are not part of the chain: a record moved from the end
//!   of one file to the start of the next keeps its place in the sequence.
//!
//! # Verifying a rotated log
//!
//! [`verify`] reads the files in the order given, as one sequence of lines.
//! A rotated file is named after the `seq` of its first record, 12 digits,
//! inserted before the extension: `crossings.000000000001.jsonl` (see
//! [`rotated_name`]). Digits sort before letters, so one shell glob lists
//! the rotated files oldest first and then the live file:
//! `customs audit verify audit/crossings*.jsonl`. (A log path without an
//! extension needs `log.* log`.)
//!
//! The first record of the first file is the anchor: its `seq` and `prev` are
//! accepted as given, so a log whose oldest files were archived still
//! verifies (the result reports where it started). A record with `seq` 1
//! must have the all-zero `prev` wherever it appears.

use crate::json;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// `prev` of the first record of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What follows the unsealed line's body: `,"hash":"` + 64 hex + `"}`.
const HASH_OPEN: &[u8] = br#","hash":""#;
const SUFFIX_LEN: usize = HASH_OPEN.len() + 64 + 2;

/// Digits of the first `seq` in a rotated file's name. Fixed width keeps
/// lexicographic order chronological up to 10^12 records.
const ROTATED_DIGITS: usize = 12;

/// Longest line `verify` reads: far above any record the writer produces, so a longer line
/// is reported as bad without being held whole (a 500 MB line costs 1 MiB, not 1 GB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A sealed line and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The complete line, ending in `\n`.
    pub line: Vec<u8>,
    /// Its `hash`, lowercase hex.
    pub hash: String,
}

/// What one valid line says about its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The record's `seq`.
    pub seq: u64,
    /// The record's `prev`.
    pub prev: String,
    /// The record's `hash` (recomputed and matching).
    pub hash: String,
}

/// Seals a record: `fields` is the record serialised as a JSON object
/// (`{…}`) that has no `seq`, `prev` or `hash` member.
///
/// # Errors
/// When `fields` is not `{…}` or contains a newline (one record per line).
pub fn seal(seq: u64, prev: &str, fields: &[u8]) -> Result<Sealed, SealError> {
    let inner = fields
        .strip_prefix(b"{")
        .and_then(|f| f.strip_suffix(b"}"))
        .ok_or(SealError::NotAnObject)?;
    if inner.contains(&b'\n') {
        return Err(SealError::Newline);
    }
    let mut line = Vec::with_capacity(40 + prev.len() + inner.len() + SUFFIX_LEN);
    line.extend_from_slice(br#"{"seq":"#);
    line.extend_from_slice(seq.to_string().as_bytes());
    line.extend_from_slice(br#","prev":""#);
    line.extend_from_slice(prev.as_bytes());
    line.push(b'"');
    if !inner.is_empty() {
        line.push(b',');
        line.extend_from_slice(inner);
    }
    line.push(b'}');
    let mut hash = [0u8; 64];
    // A 32-byte digest always fills 64 hex digits.
    let _ = hex::encode_to_slice(Sha256::digest(&line), &mut hash);
    line.pop();
    line.extend_from_slice(HASH_OPEN);
    line.extend_from_slice(&hash);
    line.extend_from_slice(b"\"}\n");
    let hash = hash.iter().map(|&d| char::from(d)).collect();
    Ok(Sealed { line, hash })
}

/// Why a record could not be sealed (a bug in the caller, never input data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The fields were not serialised as a JSON object.
    #[error("record fields are not a JSON object")]
    NotAnObject,
    /// The serialised fields contain a raw newline.
    #[error("record fields contain a newline")]
    Newline,
}

/// Checks one line (without its `\n`) on its own: sealed form, strict JSON,
/// `seq`/`prev` present and well-formed, `hash` recomputed and matching.
///
/// # Errors
/// The first fault found, in that order.
pub fn check_line(line: &[u8]) -> Result<Link, Fault> {
    let body_len = line.len().checked_sub(SUFFIX_LEN).ok_or(Fault::NotSealed)?;
    let (body, suffix) = line.split_at(body_len);
    let claimed = suffix
        .strip_prefix(HASH_OPEN)
        .and_then(|s| s.strip_suffix(b"\"}"))
        .filter(|h| is_hex64(h))
        .ok_or(Fault::NotSealed)?;
    let value =
        json::parse_strict(line, json::MAX_DEPTH).map_err(|e| Fault::NotJson(e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(body);
    hasher.update(b"}");
    let hash = hex::encode(hasher.finalize());
    if hash.as_bytes() != claimed {
        return Err(Fault::HashMismatch);
    }
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|&s| s > 0)
        .ok_or(Fault::BadField("seq"))?;
    let prev = value
        .get("prev")
        .and_then(Value::as_str)
        .filter(|p| is_hex64(p.as_bytes()))
        .ok_or(Fault::BadField("prev"))?;
    if seq == 1 && prev != GENESIS {
        return Err(Fault::GenesisPrev);
    }
    Ok(Link {
        seq,
        prev: prev.to_owned(),
        hash,
    })
}

fn is_hex64(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The name a log file gets when it is rotated: the `seq` of its first
/// record, zero-padded to 12 digits, inserted before the extension
/// (`crossings.jsonl` → `crossings.000000000001.jsonl`; `log` →
/// `log.000000000001`).
#[must_use]
pub fn rotated_name(path: &Path, first_seq: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let (before, after) = rotation_affixes(&name);
    path.with_file_name(format!("{before}{first_seq:0ROTATED_DIGITS$}{after}"))
}

/// Whether `name` is the file name of a rotated file of the log file
/// named `base` (see [`rotated_name`]).
#[must_use]
pub fn is_rotated_name(base: &str, name: &str) -> bool {
    let (before, after) = rotation_affixes(base);
    name.strip_prefix(&before)
        .and_then(|rest| rest.strip_suffix(&after))
        .is_some_and(|d| d.len() == ROTATED_DIGITS && d.bytes().all(|b| b.is_ascii_digit()))
}

/// What comes before and after the number in a rotated name:
/// `crossings.jsonl` → (`crossings.`, `.jsonl`).
fn rotation_affixes(name: &str) -> (String, String) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => (format!("{}.", &name[..dot]), name[dot..].to_owned()),
        _ => (format!("{name}."), String::new()),
    }
}

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The last line has no newline: the file was cut mid-record.
    #[error("truncated record (no newline at end of file)")]
    Truncated,
    /// The line is longer than [`MAX_LINE_BYTES`]: no record is that long.
    #[error("line longer than {MAX_LINE_BYTES} bytes: not a record")]
    TooLong,
    /// The line does not end in a `"hash"` member of 64 lowercase hex digits.
    #[error("not a sealed record (no trailing \"hash\")")]
    NotSealed,
    /// The line is not strict JSON.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The line's content does not match its `hash`: it was altered.
    #[error("hash mismatch: the record was altered")]
    HashMismatch,
    /// `seq` or `prev` is missing or malformed.
    #[error("missing or malformed \"{0}\"")]
    BadField(&'static str),
    /// A record with `seq` 1 does not start a chain.
    #[error("seq 1 with a non-zero prev")]
    GenesisPrev,
    /// Not the next `seq`: a record is missing, repeated or out of order.
    #[error("seq {found}, expected {expected}: a record is missing, inserted or out of order")]
    Seq {
        /// The previous record's `seq` + 1.
        expected: u64,
        /// This record's `seq`.
        found: u64,
    },
    /// `prev` is not the previous record's `hash`.
    #[error("prev does not match the previous record's hash")]
    Prev,
}

/// The first line that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The file, as given.
    pub file: PathBuf,
    /// 1-based line within `file`; 0 when the file could not be opened.
    pub line: usize,
    /// What is wrong.
    pub reason: Fault,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.line {
            0 => write!(f, "{file}: {}", self.reason),
            n => write!(f, "{file}:{n}: {}", self.reason),
        }
    }
}

/// What an intact log contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Number of records.
    pub records: u64,
    /// The first record's `seq` (1 when the log starts at its beginning);
    /// `None` for an empty log.
    pub first_seq: Option<u64>,
    /// The last record's `seq`.
    pub last_seq: Option<u64>,
    /// The last record's `hash`: compare with an independently kept copy to
    /// detect records removed from the end.
    pub last_hash: Option<String>,
}

/// Verifies the chain across `files`, read in the given order (oldest
/// rotated file first, the live file last). Returns the number of records.
///
/// # Errors
/// The first line that breaks the chain, with its file and line number.
pub fn verify(files: &[PathBuf]) -> Result<u64, VerifyError> {
    verify_summary(files).map(|v| v.records)
}

/// Like [`verify`], and also reports where the chain starts and ends.
///
/// # Errors
/// The first line that breaks the chain, with its file and line number.
pub fn verify_summary(files: &[PathBuf]) -> Result<Verified, VerifyError> {
    let mut state = Verified::default();
    for file in files {
        verify_file(file, &mut state).map_err(|(line, reason)| VerifyError {
            file: file.clone(),
            line,
            reason,
        })?;
    }
    Ok(state)
}

/// Continues the chain in `state` through one file; errors carry the line.
fn verify_file(path: &Path, state: &mut Verified) -> Result<(), (usize, Fault)> {
    let unreadable = |e: io::Error| Fault::Unreadable(e.to_string());
    let mut reader = BufReader::new(File::open(path).map_err(|e| (0, unreadable(e)))?);
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        // One byte past the cap tells a line at the cap from a longer one.
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| (n, unreadable(e)))?;
        if read == 0 {
            return Ok(());
        }
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err((n, Fault::TooLong));
        }
        let line = buf.strip_suffix(b"\n").ok_or((n, Fault::Truncated))?;
        let link = check_line(line).map_err(|f| (n, f))?;
        follow(state, link).map_err(|f| (n, f))?;
    }
    Ok(())
}

/// Appends a checked record to the chain so far.
fn follow(state: &mut Verified, link: Link) -> Result<(), Fault> {
    if let (Some(last), Some(last_hash)) = (state.last_seq, &state.last_hash) {
        let expected = last.saturating_add(1);
        if link.seq != expected {
            return Err(Fault::Seq {
                expected,
                found: link.seq,
            });
        }
        if &link.prev != last_hash {
            return Err(Fault::Prev);
        }
    } else {
        state.first_seq = Some(link.seq);
    }
    state.records += 1;
    state.last_seq = Some(link.seq);
    state.last_hash = Some(link.hash);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn seal_hashes_the_line_without_its_hash_member() {
        let sealed = seal(1, GENESIS, br#"{"a":1,"b":"x"}"#).expect("seals");
        let unsealed = format!(r#"{{"seq":1,"prev":"{GENESIS}","a":1,"b":"x"}}"#);
        assert_eq!(sealed.hash, sha(unsealed.as_bytes()));
        let expected = format!(
            r#"{{"seq":1,"prev":"{GENESIS}","a":1,"b":"x","hash":"{}"}}"#,
            sealed.hash
        ) + "\n";
        assert_eq!(String::from_utf8(sealed.line).expect("utf-8"), expected);
    }

    #[test]
    fn seal_of_an_empty_object_is_valid_json() {
        let sealed = seal(7, &sha(b"x"), b"{}").expect("seals");
        let line = sealed.line.strip_suffix(b"\n").expect("newline");
        let value: Value = serde_json::from_slice(line).expect("json");
        assert_eq!(value["seq"], 7);
        assert_eq!(check_line(line).expect("valid").hash, sealed.hash);
    }

    #[test]
    fn seal_refuses_non_objects_and_newlines() {
        assert_eq!(seal(1, GENESIS, b"[1]"), Err(SealError::NotAnObject));
        assert_eq!(seal(1, GENESIS, b"{\"a\":\n1}"), Err(SealError::Newline));
    }

    #[test]
    fn check_line_returns_the_link() {
        let prev = sha(b"previous");
        let sealed = seal(42, &prev, br#"{"k":"v"}"#).expect("seals");
        let link = check_line(sealed.line.strip_suffix(b"\n").expect("newline")).expect("valid");
        assert_eq!(
            link,
            Link {
                seq: 42,
                prev,
                hash: sealed.hash
            }
        );
    }

    #[test]
    fn check_line_detects_each_fault() {
        let sealed = seal(3, &sha(b"p"), br#"{"status":200}"#).expect("seals");
        let line = String::from_utf8(sealed.line).expect("utf-8");
        let line = line.trim_end();
        let altered = line.replace("200", "201");
        assert_eq!(check_line(altered.as_bytes()), Err(Fault::HashMismatch));
        let upper = line.replace(&sealed.hash, &sealed.hash.to_uppercase());
        assert_eq!(check_line(upper.as_bytes()), Err(Fault::NotSealed));
        assert_eq!(check_line(&line.as_bytes()[..40]), Err(Fault::NotSealed));
        assert_eq!(check_line(b""), Err(Fault::NotSealed));
        let no_hash = line.replace(r#""hash""#, r#""hush""#);
        assert_eq!(check_line(no_hash.as_bytes()), Err(Fault::NotSealed));
    }

    #[test]
    fn check_line_refuses_duplicate_keys_and_bad_fields() {
        let dup = seal(2, &sha(b"p"), br#"{"seq":9}"#).expect("seals");
        let dup = dup.line.strip_suffix(b"\n").expect("newline");
        assert!(matches!(check_line(dup), Err(Fault::NotJson(_))));
        let bad_prev = seal(2, "abc", br#"{"a":1}"#).expect("seals");
        let bad_prev = bad_prev.line.strip_suffix(b"\n").expect("newline");
        assert_eq!(check_line(bad_prev), Err(Fault::BadField("prev")));
        let zero = seal(0, GENESIS, br#"{"a":1}"#).expect("seals");
        let zero = zero.line.strip_suffix(b"\n").expect("newline");
        assert_eq!(check_line(zero), Err(Fault::BadField("seq")));
        let genesis = seal(1, &sha(b"p"), br#"{"a":1}"#).expect("seals");
        let genesis = genesis.line.strip_suffix(b"\n").expect("newline");
        assert_eq!(check_line(genesis), Err(Fault::GenesisPrev));
    }

    #[test]
    fn follow_checks_seq_then_prev() {
        let mut state = Verified::default();
        let a = Link {
            seq: 5,
            prev: sha(b"x"),
            hash: sha(b"a"),
        };
        follow(&mut state, a).expect("anchor accepted as given");
        let skip = Link {
            seq: 7,
            prev: sha(b"a"),
            hash: sha(b"c"),
        };
        assert_eq!(
            follow(&mut state, skip),
            Err(Fault::Seq {
                expected: 6,
                found: 7
            })
        );
        let wrong_prev = Link {
            seq: 6,
            prev: sha(b"z"),
            hash: sha(b"b"),
        };
        assert_eq!(follow(&mut state, wrong_prev), Err(Fault::Prev));
        let b = Link {
            seq: 6,
            prev: sha(b"a"),
            hash: sha(b"b"),
        };
        follow(&mut state, b).expect("chains");
        assert_eq!(
            (state.records, state.first_seq, state.last_seq),
            (2, Some(5), Some(6))
        );
    }

    #[test]
    fn rotated_names_sort_chronologically_before_the_live_file() {
        let base = Path::new("audit/crossings.jsonl");
        let a = rotated_name(base, 9);
        let b = rotated_name(base, 10);
        assert_eq!(a, Path::new("audit/crossings.000000000009.jsonl"));
        assert!(a < b && b.as_os_str() < base.as_os_str());
        let live = "crossings.jsonl";
        assert!(is_rotated_name(live, "crossings.000000000010.jsonl"));
        assert!(!is_rotated_name(live, live));
        assert!(!is_rotated_name(live, "crossings.10.jsonl"));
        assert!(!is_rotated_name(live, "crossings.00000000001x.jsonl"));
        assert!(!is_rotated_name(live, "crossings.000000000010.json"));
        assert_eq!(
            rotated_name(Path::new("log"), 1),
            Path::new("log.000000000001")
        );
        assert!(is_rotated_name("log", "log.000000000001"));
        assert!(is_rotated_name(".log", ".log.000000000001"));
    }

    #[test]
    fn a_line_over_the_cap_is_a_bad_line_read_only_to_the_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.jsonl");
        let mut long = vec![b'x'; MAX_LINE_BYTES * 3];
        long.push(b'\n');
        std::fs::write(&path, &long).expect("write");
        let e = verify(std::slice::from_ref(&path)).expect_err("too long");
        assert_eq!((e.line, e.reason), (1, Fault::TooLong));
        // A line of exactly the cap is read and judged on its content.
        let mut at_cap = vec![b'x'; MAX_LINE_BYTES];
        at_cap.push(b'\n');
        std::fs::write(&path, &at_cap).expect("write");
        let e = verify(std::slice::from_ref(&path)).expect_err("not a record");
        assert_ne!(e.reason, Fault::TooLong);
    }

    #[test]
    fn verify_error_names_file_and_line() {
        let e = VerifyError {
            file: "a.jsonl".into(),
            line: 3,
            reason: Fault::HashMismatch,
        };
        assert_eq!(
            e.to_string(),
            "a.jsonl:3: hash mismatch: the record was altered"
        );
        let e = VerifyError {
            file: "b".into(),
            line: 0,
            reason: Fault::Unreadable("gone".into()),
        };
        assert_eq!(e.to_string(), "b: cannot read: gone");
    }
}
