//! The strict JSON parser and policy application on arbitrary bytes.
//!
//! Invariants: nothing panics; a document the parser accepts re-serialises to
//! one it accepts again, unchanged; what a policy lets cross is strict JSON
//! (NDJSON: every line), a blocked crossing carries no bytes, and no key a
//! `refuse` rule names (`$..cvv`, in any letter case) is in what crosses.
#![no_main]

use customs::json::{self, Bounds};
use customs::policy::document::{Format, apply_bytes};
use customs::policy::{Apply, transform::HashKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The names each policy's `refuse: [$..name]` rules name.
const REFUSED: [(&str, &[&str]); 4] = [
    ("payment-data", &["cvv", "cvc"]),
    ("hr-records", &["diagnosis", "medical_notes"]),
    ("incident-outbound", &["password"]),
    ("fuzz-extra", &["password"]),
];

const BOUNDS: Bounds = Bounds {
    depth: 64,
    elements: 100_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = json::parse_bounded(data, BOUNDS) {
        let again = serde_json::to_vec(&doc).expect("a parsed value serialises");
        let reparsed = json::parse_bounded(&again, BOUNDS).expect("own output parses");
        assert_eq!(doc, reparsed, "re-serialised document reads differently");
    }
    let policies = customs_fuzz::policies();
    // The length picks the policy, so seeds stay plain JSON files.
    let policy = &policies[data.len() % policies.len()];
    let key = HashKey::new(b"fuzz");
    let how = Apply {
        hash_key: Some(&key),
        report: data.len() % 2 == 0,
    };
    for format in [Format::Json, Format::Ndjson] {
        let Ok(applied) = apply_bytes(policy, data, format, BOUNDS, &how) else {
            continue;
        };
        if applied.outcome.blocks(policy) {
            assert!(applied.bytes.is_empty(), "a blocked crossing carries bytes");
            continue;
        }
        match format {
            Format::Json => {
                let out =
                    json::parse_bounded(&applied.bytes, BOUNDS).expect("output is strict JSON");
                assert_no_refused_key(&policy.name, &out);
            }
            Format::Ndjson => {
                let docs =
                    json::parse_ndjson(&applied.bytes, BOUNDS).expect("output is strict NDJSON");
                docs.iter()
                    .for_each(|doc| assert_no_refused_key(&policy.name, doc));
            }
        }
    }
});

fn assert_no_refused_key(policy: &str, doc: &Value) {
    let Some((_, names)) = REFUSED.iter().find(|(name, _)| *name == policy) else {
        return;
    };
    match doc {
        Value::Object(map) => {
            for (key, value) in map {
                let key = key.to_ascii_lowercase();
                assert!(
                    !names.contains(&key.as_str()),
                    "{policy}: a refused key crossed"
                );
                assert_no_refused_key(policy, value);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_no_refused_key(policy, v)),
        _ => {}
    }
}
