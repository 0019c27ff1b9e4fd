//! Property: whatever the shape of a document, a policy that redacts every
//! string lets no planted card number, SSN or e-mail address through — in a
//! value, in an object key or as a number in any notation — and its output is
//! always valid JSON.

mod arb;

use arb::{CARD_NUMBERS, PLANTED, planted_string};
use customs::policy::{Apply, compile};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;

fn card_number() -> impl Strategy<Value = Value> {
    (0..CARD_NUMBERS.len())
        .prop_map(|i| serde_json::from_str(CARD_NUMBERS[i]).expect("a JSON number"))
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        card_number(),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-zA-Z0-9 .,-]{0,20}".prop_map(Value::String),
        planted_string().prop_map(Value::String),
    ]
}

/// Random documents up to depth 6 with planted values anywhere.
fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kvs| { Value::Object(kvs.into_iter().collect::<Map<String, Value>>()) }),
        ]
    })
}

/// Object keys: field names, or planted values (keys are payload data too).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-zA-Z_]{1,8}", 1 => planted_string()]
}

fn contains_planted(text: &str) -> Option<&'static str> {
    PLANTED
        .iter()
        .chain(&CARD_NUMBERS)
        .copied()
        .find(|p| text.contains(p))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_planted_value_survives(doc in document()) {
        let policy = compile(
            Path::new("redact-all.yaml"),
            "policy: redact-all\nbody:\n  rules:\n    - id: all\n      redact:\n",
        ).expect("policy compiles");
        let mut out = doc.clone();
        policy.apply(&mut out, &Apply::default()).expect("applies");
        let text = serde_json::to_string(&out).expect("serialises");
        let reparsed: Value = serde_json::from_str(&text).expect("output is valid JSON");
        prop_assert_eq!(&reparsed, &out);
        prop_assert!(contains_planted(&text).is_none(), "leaked {:?} in {}", contains_planted(&text), text);
        // The card digits must not survive in any form either.
        prop_assert!(!text.contains("4111111111111111"));
    }
}
