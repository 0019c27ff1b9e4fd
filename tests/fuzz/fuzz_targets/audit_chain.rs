//! The audit-chain verifier on arbitrary log files, and on chains sealed from
//! arbitrary records.
//!
//! Invariants: nothing panics; a chain sealed from well-formed records
//! verifies, line by line and as a file; changing any one byte of a sealed
//! line makes it fail.
#![no_main]

use customs::audit::chain::{GENESIS, check_line, seal};
use customs::audit::verify;
use customs::json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = check_line(line);
    }
    let dir = customs_fuzz::scratch();
    let raw = dir.join("raw.jsonl");
    std::fs::write(&raw, data).expect("log file");
    let _ = verify(&[raw]);

    let sealed = seal_records(data);
    let mut log = Vec::new();
    for (i, line) in sealed.iter().enumerate() {
        let body = line
            .strip_suffix(b"\n")
            .expect("sealed lines end in a newline");
        let link = check_line(body).expect("a sealed line checks");
        assert_eq!(link.seq, i as u64 + 1);
        let pos = data.len().wrapping_mul(31).wrapping_add(i) % body.len();
        let mut tampered = body.to_vec();
        tampered[pos] ^= 1 + (data.len() % 255) as u8;
        assert!(
            check_line(&tampered).is_err(),
            "a changed byte went unnoticed"
        );
        log.extend_from_slice(line);
    }
    let file = dir.join("sealed.jsonl");
    std::fs::write(&file, &log).expect("log file");
    let records = verify(std::slice::from_ref(&file)).expect("a sealed chain verifies");
    assert_eq!(records, sealed.len() as u64);
});

/// Seals every input line that is a strict JSON object into one chain, as
/// the writer does: compact fields without `seq`, `prev` or `hash`.
fn seal_records(data: &[u8]) -> Vec<Vec<u8>> {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(Value::Object(mut fields)) = json::parse_strict(line, json::MAX_DEPTH - 1) else {
            continue;
        };
        for reserved in ["seq", "prev", "hash"] {
            fields.remove(reserved);
        }
        let bytes = serde_json::to_vec(&fields).expect("fields serialise");
        let sealed = seal(out.len() as u64 + 1, &prev, &bytes).expect("fields seal");
        prev = sealed.hash;
        out.push(sealed.line);
    }
    out
}
