//! The policy engine through its public API: every rule kind, the
//! allow-list modes, evaluation order, monitor mode and name matching.

use customs::policy::transform::HashKey;
use customs::policy::{Apply, Outcome, Policy, compile};
use serde_json::{Value, json};
use std::path::Path;

fn policy(yaml: &str) -> Policy {
    compile(Path::new("test.yaml"), yaml).unwrap_or_else(|d| panic!("{d:?}"))
}

/// Applies `body_yaml` (the part under `body:`) to `input`.
fn run(body_yaml: &str, input: Value) -> (Value, Outcome, Policy) {
    let p = policy(&format!("policy: t\nbody:\n{body_yaml}"));
    let key = HashKey::new(b"k");
    let mut doc = input;
    let out = p
        .apply(
            &mut doc,
            &Apply {
                hash_key: Some(&key),
                report: true,
            },
        )
        .expect("applies");
    (doc, out, p)
}

#[test]
fn drop_removes_members_and_array_elements() {
    let (doc, out, p) = run(
        "  rules:\n    - id: d\n      drop: ['$.a', '$.list[1]', '$..secret']\n",
        json!({"a": 1, "b": 2, "list": [0, 1, 2], "deep": {"secret": "x", "keep": true}}),
    );
    assert_eq!(doc, json!({"b": 2, "list": [0, 2], "deep": {"keep": true}}));
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("d", 3)]);
}

#[test]
fn mask_keeps_format_and_turns_non_strings_into_strings() {
    let (doc, _, _) = run(
        "  rules:\n    - id: m\n      mask: [$.card, $.num, $.mail]\n      keep_first: 1\n      keep_last: 2\n      char: '#'\n",
        json!({"card": "4111-1111-1111-1111", "num": 123456, "mail": "jo@x.io"}),
    );
    assert_eq!(
        doc,
        json!({"card": "4###-####-####-##11", "num": "1###56", "mail": "j#@#.io"})
    );
}

#[test]
fn replace_sets_any_json_value() {
    let (doc, _, _) = run(
        "  rules:\n    - id: r\n      replace: [$.a, $.b]\n      with: {\"redacted\": true}\n",
        json!({"a": "x", "b": [1, 2], "c": 3}),
    );
    assert_eq!(
        doc,
        json!({"a": {"redacted": true}, "b": {"redacted": true}, "c": 3})
    );
}

#[test]
fn hash_is_stable_keyed_and_hashes_numbers_as_text() {
    let body = "  rules:\n    - id: h\n      hash: [$.email, $.id]\n";
    let (a, _, _) = run(body, json!({"email": "jane@example.com", "id": 42}));
    let (b, _, _) = run(body, json!({"email": "jane@example.com", "id": "42"}));
    assert_eq!(
        a, b,
        "equal inputs give equal pseudonyms; 42 hashes as its text"
    );
    let h = a["email"].as_str().expect("hex");
    assert_eq!(h.len(), 64);
    assert_ne!(
        h,
        "5b0ea3ff2d5be0f2e2f8e4ae8b57d25da2f3c2f6b3b1a3b4bd3d1ba1c0d0b1bf"
    );
    use sha2::{Digest, Sha256};
    assert_ne!(
        h,
        hex::encode(Sha256::digest(b"jane@example.com")),
        "never a bare digest"
    );
}

#[test]
fn redact_without_paths_scans_every_string_and_number() {
    let (doc, out, p) = run(
        "  rules:\n    - id: pii\n      redact:\n      patterns: { ticket-secret: 'SECRET-[0-9]{6}' }\n",
        json!({"a": ["mail bob@example.com", {"n": 4111111111111111u64}], "b": "SECRET-123456 ok", "c": "order 1234"}),
    );
    assert_eq!(
        doc,
        json!({"a": ["mail [EMAIL]", {"n": "[CREDIT_CARD]"}], "b": "[TICKET-SECRET] ok", "c": "order 1234"})
    );
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("pii", 3)]);
}

#[test]
fn refuse_stops_the_crossing_and_names_rule_and_path() {
    let (_, out, p) = run(
        "  rules:\n    - id: no-pw\n      refuse: [$..password]\n",
        json!({"users": [{"name": "a"}, {"password": "x"}]}),
    );
    assert!(out.blocks(&p));
    let r = out.refused.expect("refused");
    assert_eq!(
        (r.rule.as_str(), r.path.as_str()),
        ("no-pw", "$['users'][*]['password']")
    );
}

#[test]
fn allow_list_modes() {
    let input = json!({"items": [{"id": 1, "secret": "s"}], "extra": true});
    let allow = "  allow: ['$.items[*].id']\n";
    let (dropped, out, _) = run(allow, input.clone());
    assert_eq!(
        dropped,
        json!({"items": [{"id": 1}]}),
        "drop is the default"
    );
    assert_eq!(
        out.unknown_fields,
        ["$['items'][*]['secret']", "$['extra']"]
    );
    let (passed, out, p) = run(&format!("{allow}  unknown_fields: pass\n"), input.clone());
    assert_eq!(passed, input, "pass keeps them");
    assert_eq!(out.unknown_count, 2);
    assert!(!out.blocks(&p));
    let (_, out, p) = run(&format!("{allow}  unknown_fields: refuse\n"), input);
    assert!(out.blocks(&p));
}

#[test]
fn refuse_runs_before_the_allow_list_and_rules_run_in_order() {
    // The password is outside the allow-list, but refuse sees the payload as received.
    let (_, out, p) = run(
        "  allow: ['$.a']\n  rules:\n    - id: pw\n      refuse: [$..password]\n",
        json!({"a": 1, "password": "x"}),
    );
    assert!(out.blocks(&p));
    // mask then redact: redaction sees the masked value, so finds nothing.
    let (doc, out, p) = run(
        "  rules:\n    - id: m\n      mask: [$.t]\n    - id: r\n      redact: [$.t]\n",
        json!({"t": "bob@example.com"}),
    );
    assert_eq!(doc, json!({"t": "***@*******.***"}));
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("m", 1)]);
    // replace then hash: the hash is of the replacement.
    let (a, _, _) = run(
        "  rules:\n    - id: r\n      replace: [$.t]\n      with: x\n    - id: h\n      hash: [$.t]\n",
        json!({"t": "one"}),
    );
    let (b, _, _) = run(
        "  rules:\n    - id: r\n      replace: [$.t]\n      with: x\n    - id: h\n      hash: [$.t]\n",
        json!({"t": "two"}),
    );
    assert_eq!(a, b);
}

#[test]
fn monitor_mode_changes_nothing_and_reports_what_would_happen() {
    let p = policy(
        "policy: t\nmode: monitor\nbody:\n  allow: ['$.a']\n  rules:\n    - id: pw\n      refuse: [$.p]\n    - id: m\n      mask: [$.a]\n",
    );
    let input = json!({"a": "secret", "p": 1, "x": 2});
    let mut doc = input.clone();
    let out = p
        .apply(
            &mut doc,
            &Apply {
                hash_key: None,
                report: true,
            },
        )
        .expect("applies");
    assert_eq!(doc, input);
    assert!(
        out.refused.is_some() && !out.blocks(&p),
        "recorded, not enforced"
    );
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("pw", 1), ("m", 1)]);
    assert_eq!(out.unknown_count, 2, "p and x are outside the allow-list");
    let actions: Vec<&str> = out.report.iter().map(|a| a.action).collect();
    assert_eq!(actions, ["refuse", "drop", "drop", "mask"]);
}

#[test]
fn names_match_without_case_unless_exact() {
    let input = json!({"SSN": "1", "ſsn": "2", "Ssn": "3", "other": "4"});
    let (doc, _, _) = run(
        "  rules:\n    - id: d\n      drop: [$.ssn]\n",
        input.clone(),
    );
    assert_eq!(doc, json!({"other": "4"}));
    let (doc, _, _) = run(
        "  exact_names: true\n  rules:\n    - id: d\n      drop: [$.ssn]\n",
        input.clone(),
    );
    assert_eq!(doc, input, "no key is exactly 'ssn'");
}

#[test]
fn hash_rules_need_a_key() {
    let p = policy("policy: t\nbody:\n  rules:\n    - id: h\n      hash: [$.a]\n");
    let err = p
        .apply(&mut json!({"a": 1}), &Apply::default())
        .expect_err("no key");
    assert!(err.to_string().contains("secrets.hash_key"));
}

#[test]
fn strict_parsing_rejects_what_an_upstream_could_read_differently() {
    use customs::json::Bounds;
    use customs::policy::document::{Format, apply_bytes};
    let p = policy("policy: t\nbody:\n  rules:\n    - id: d\n      drop: [$.ssn]\n");
    let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
    let cases: [&[u8]; 8] = [
        br#"{"ssn":"078-05-1120","ssn":null}"#,
        br#"{"a":{"ssn":1,"ssn":2}}"#,
        br#"{"a":1}{"ssn":"x"}"#,
        b"{\"a\":\"\xff\"}",
        br#"{"a":"\ud800"}"#,
        br#"{"a":NaN}"#,
        b"\xef\xbb\xbf{}",
        deep.as_bytes(),
    ];
    for bytes in cases {
        let r = apply_bytes(
            &p,
            bytes,
            Format::Json,
            Bounds::depth(64),
            &Apply::default(),
        );
        assert!(r.is_err(), "accepted {:?}", String::from_utf8_lossy(bytes));
    }
    let ok = apply_bytes(
        &p,
        br#"{"n":18446744073709551616,"f":1.10,"ssn":"x","z":0}"#,
        Format::Json,
        Bounds::depth(64),
        &Apply::default(),
    );
    assert_eq!(
        ok.expect("valid").bytes,
        br#"{"n":18446744073709551616,"f":1.10,"z":0}"#
    );
}

#[test]
fn a_rule_whose_paths_overlap_acts_once_per_node() {
    // Hashing twice would give a pseudonym of the pseudonym.
    let once = run(
        "  rules:\n    - id: h\n      hash: ['$.user.email']\n",
        json!({"user": {"email": "jo@x.io"}}),
    );
    let (doc, out, p) = run(
        "  rules:\n    - id: h\n      hash: ['$.user.email', '$..email', '$.*.email']\n",
        json!({"user": {"email": "jo@x.io"}}),
    );
    assert_eq!(doc, once.0);
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("h", 1)]);
}

#[test]
fn later_rules_see_what_earlier_rules_did_below_and_above_them() {
    // r1 masks a field inside the object r2 then turns into text; r3 finds
    // nothing left to replace below it. Run together, as one after the other.
    let (doc, out, p) = run(
        "  rules:\n    - id: r1\n      mask: ['$.a.pin']\n    - id: r2\n      mask: ['$.a']\n      char: '#'\n    - id: r3\n      replace: ['$.a.pin']\n      with: 0\n",
        json!({"a": {"pin": "1234"}, "b": {"pin": "5678"}}),
    );
    // r2 masks letters and digits only: the stars r1 left show it ran first.
    assert_eq!(
        doc,
        json!({"a": "{\"###\":\"****\"}", "b": {"pin": "5678"}})
    );
    assert_eq!(out.actions(&p).collect::<Vec<_>>(), [("r1", 1), ("r2", 1)]);
}
