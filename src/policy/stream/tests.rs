//! The stream engine against the tree engine on the cases where they could part: every answer
//! must be the tree engine's (bytes and outcome), or a bail.

use super::*;
use crate::json::Bounds;
use crate::policy::document::{Choice, apply_bytes_with};
use crate::policy::transform::HashKey;
use crate::policy::{Policy, compile};
use std::path::Path;

fn policy(yaml: &str) -> Policy {
    compile(Path::new("t.yaml"), yaml).unwrap_or_else(|d| panic!("{d:?}"))
}

/// A policy of these rules (YAML list items, one per line).
fn rules(rules: &[&str]) -> Policy {
    let mut yaml = String::from("policy: t\nbody:\n  rules:\n");
    for r in rules {
        yaml.push_str(&format!("    - {r}\n"));
    }
    policy(&yaml)
}

const BOUNDS: Bounds = Bounds {
    depth: 64,
    elements: 100_000,
};

fn key() -> HashKey {
    HashKey::new(b"k")
}

/// What the stream engine said, after checking it against the tree engine.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Answered,
    Bailed(&'static str),
    Invalid,
}

fn compare_as(p: &Policy, input: &[u8], format: Format, bounds: Bounds) -> Said {
    let key = key();
    let how = Apply {
        hash_key: Some(&key),
        report: false,
    };
    let tree = apply_bytes_with(p, input, format, bounds, &how, Choice::Tree);
    let stream = run(p, input, format, bounds, &how);
    let shown = String::from_utf8_lossy(input);
    match (tree, stream) {
        (Ok(t), Ok(s)) => {
            assert_eq!(
                String::from_utf8_lossy(&s.bytes),
                String::from_utf8_lossy(&t.bytes),
                "bytes of {shown}"
            );
            assert_eq!(s.outcome, t.outcome, "outcome of {shown}");
            assert_eq!(s.engine, Engine::Stream);
            Said::Answered
        }
        (Ok(_), Err(Bail::Unsupported(why))) => Said::Bailed(why),
        (Ok(_), Err(Bail::Invalid)) => panic!("stream calls valid {shown} invalid"),
        (Err(e), Ok(_)) => panic!("stream accepts {shown}, tree refuses: {e}"),
        (Err(_), Err(Bail::Invalid)) => Said::Invalid,
        (Err(e), Err(b)) => panic!("{shown}: tree {e}, stream {b} (not Invalid)"),
    }
}

fn compare(p: &Policy, input: &str) -> Said {
    compare_as(p, input.as_bytes(), Format::Json, BOUNDS)
}

fn answers(p: &Policy, input: &str) {
    assert_eq!(compare(p, input), Said::Answered, "{input}");
}

fn nothing() -> Policy {
    rules(&["{ id: none, mask: ['$.no.such.path'] }"])
}

#[test]
fn copies_documents_as_serde_json_writes_them() {
    let p = nothing();
    for doc in [
        r#" { "a" : [ 1 , 2.50 , -0 , 1E2 , 1e5 , 1.5e-3 , 2E+1 , 18446744073709551616 , -9223372036854775809 ] } "#,
        r#"{"s":"plain","e":"a\"b\\c\/d\b\f\n\r\t\u0001\u001f\u007f","u":"\u00e9\ud83d\ude00\uFFFF"}"#,
        "{\"raw\":\"é😀\u{7f}\",\"k\\u0065y\":true,\"n\":null,\"f\":false}",
        r#"[[],{},[{}],"",0,-1,1.0,1e-400,123456789012345678901234567890]"#,
        "\"just a string\"",
        "  42 ",
        r#"{"$serde_json::private::Number":"5","$serde_json::private::RawValue":1}"#,
        "[\"\\u2028\\u2029\",\"\u{2028}\"]",
    ] {
        answers(&p, doc);
    }
}

#[test]
fn refuses_what_the_strict_parser_refuses() {
    let p = nothing();
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let long_number = format!("1{}", "0".repeat(400));
    for doc in [
        "",
        "  ",
        "\u{feff}{}",
        r#"{"a":NaN}"#,
        r#"{"a":1,}"#,
        "[1,]",
        "{'a':1}",
        "[01]",
        "[+1]",
        "[.5]",
        "[1.]",
        "[1e]",
        "\"tab\there\"",
        r#"{"a":1}{"b":2}"#,
        "1 2",
        r#"{"a":1} x"#,
        r#""\ud800""#,
        r#""\udc00x""#,
        r#""\ud800\u0041""#,
        r#""\x""#,
        r#""\u12G4""#,
        "1e400",
        "[-1E+400]",
        &long_number,
        r#"{"ssn":1,"ssn":2}"#,
        r#"{"a":{"b":[{"x":1,"y":2,"x":3}]}}"#,
        r#"{"ssn":1,"s\u0073n":2}"#,
        r#"{"ss\u0000n":1}"#,
        r#"{"a\nb":1}"#,
        &deep,
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        "tru",
        "nul",
        "[true false]",
        "\"unterminated",
        "{\"a\":\"b\"",
    ] {
        assert_eq!(compare(&p, doc), Said::Invalid, "{doc:?}");
    }
    assert_eq!(
        compare_as(&p, b"\"\xff\"", Format::Json, BOUNDS),
        Said::Invalid
    );
    assert_eq!(
        compare_as(&p, b"{\"a\xc0\xaf\":1}", Format::Json, BOUNDS),
        Said::Invalid
    );
}

#[test]
fn finds_duplicate_keys_in_large_objects_too() {
    let p = nothing();
    let mut members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    answers(&p, &format!("{{{}}}", members.join(",")));
    members.push("\"k\\u0031\":0".to_owned());
    assert_eq!(
        compare(&p, &format!("{{{}}}", members.join(","))),
        Said::Invalid
    );
}

#[test]
fn depth_and_element_bounds_are_the_tree_engines() {
    let p = nothing();
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let tight = Bounds {
        depth: 3,
        elements: 4,
    };
    assert_eq!(
        compare_as(&p, nested(3).as_bytes(), Format::Json, tight),
        Said::Answered
    );
    assert_eq!(
        compare_as(&p, nested(4).as_bytes(), Format::Json, tight),
        Said::Invalid
    );
    assert_eq!(
        compare_as(&p, b"[1,2,3]", Format::Json, tight),
        Said::Answered
    );
    assert_eq!(
        compare_as(&p, b"[1,2,3,4]", Format::Json, tight),
        Said::Invalid
    );
    assert_eq!(
        compare_as(&p, b"[1]\n[2]\n", Format::Ndjson, tight),
        Said::Answered
    );
    assert_eq!(
        compare_as(&p, b"[1]\n[2]\n[3]\n", Format::Ndjson, tight),
        Said::Invalid
    );
    let wide = Bounds {
        depth: 1000,
        elements: 1000,
    };
    let max = crate::json::MAX_DEPTH;
    assert_eq!(
        compare_as(&p, nested(max).as_bytes(), Format::Json, wide),
        Said::Answered
    );
    assert_eq!(
        compare_as(&p, nested(max + 1).as_bytes(), Format::Json, wide),
        Said::Invalid
    );
}

#[test]
fn ndjson_lines_take_the_same_path() {
    let p = rules(&[
        "{ id: m, mask: ['$.card'], keep_last: 2 }",
        "{ id: r, redact: [] }",
    ]);
    for body in [
        "{\"card\":\"4111\",\"t\":\"mail a@b.io\"}\n\n  \r\n[2]\r\n3",
        "",
        "\n\n",
        "{\"card\":1}\n{\"card\":2}\n",
    ] {
        assert_eq!(
            compare_as(&p, body.as_bytes(), Format::Ndjson, BOUNDS),
            Said::Answered,
            "{body:?}"
        );
    }
    for bad in ["{\"a\":\n1}\n", "{\"a\":1}\n{\"a\":1,\"a\":2}\n", "[1]\n[2"] {
        assert_eq!(
            compare_as(&p, bad.as_bytes(), Format::Ndjson, BOUNDS),
            Said::Invalid,
            "{bad:?}"
        );
    }
}

#[test]
fn value_actions_on_leaves_of_every_kind() {
    let p = rules(&[
        "{ id: m, mask: ['$.m[*]'], keep_last: 2 }",
        "{ id: r, replace: ['$.r[*]'], with: {\"x\": [1, \"é\"]} }",
        "{ id: h, hash: ['$.h[*]'] }",
    ]);
    answers(
        &p,
        r#"{"m":["4111 1111",1234.50,true,null,"\u00e9t\u00e9 42",1E3],"r":[1,"a",null],"h":["a@b.io",12,-0,false,1e2]}"#,
    );
}

#[test]
fn later_rules_see_earlier_rules_effects_on_a_node() {
    let p = rules(&[
        "{ id: m, mask: ['$.a', '$.b'] }",
        "{ id: h, hash: ['$.a'] }",
        "{ id: r, replace: ['$.b'], with: 7 }",
        "{ id: x, redact: ['$.c'] }",
        "{ id: m2, mask: ['$.c'], keep_first: 3 }",
    ]);
    answers(
        &p,
        r#"{"a":"secret","b":"x","c":"mail jane@example.com now"}"#,
    );
}

#[test]
fn a_grouped_rule_acts_once_per_node() {
    let p = rules(&["{ id: m, mask: ['$.a[*].b', '$..b', '$.a[0].b'] }"]);
    answers(&p, r#"{"a":[{"b":"xy"},{"b":"zz"}],"b":"q"}"#);
}

#[test]
fn drops_remove_members_and_elements_and_count_once() {
    let p = rules(&[
        "{ id: d, drop: ['$.a[*].x', '$..gone', '$.list[*]'] }",
        "{ id: m, mask: ['$..x', '$..y'] }",
    ]);
    answers(
        &p,
        r#"{"a":[{"x":1,"y":2},{"y":3,"gone":{"x":4}}],"gone":[1],"list":[1,{"x":2}],"x":"kept"}"#,
    );
}

#[test]
fn rules_before_a_drop_act_inside_it_and_rules_after_never_see_it() {
    let p = rules(&[
        "{ id: early, redact: ['$..note'] }",
        "{ id: d, drop: ['$.a'] }",
        "{ id: late, mask: ['$..note'] }",
        "{ id: back, redact: [] }",
    ]);
    answers(
        &p,
        r#"{"a":{"note":"mail a@b.io","deep":{"note":"x 4111111111111111"}},"b":{"note":"c@d.io"}}"#,
    );
}

#[test]
fn a_drop_path_counts_what_an_earlier_path_of_the_same_rule_removed_inside() {
    // `$.a.b` goes first, then `$.a`: two removals.
    let p = rules(&["{ id: d, drop: ['$.a.b', '$.a'] }"]);
    answers(&p, r#"{"a":{"b":1,"c":2},"z":0}"#);
    let p = rules(&["{ id: d, drop: ['$.a', '$.a.b'] }"]);
    answers(&p, r#"{"a":{"b":1,"c":2},"z":0}"#);
}

#[test]
fn deep_redact_counts_each_selected_container_that_changed() {
    let p = rules(&[
        "{ id: c, redact: ['$.c[*]', '$..inner'], detectors: [email] }",
        "{ id: all, redact: ['$..*'] }",
    ]);
    answers(
        &p,
        r#"{"c":[{"e":"a@b.io","n":1,"inner":{"e":"x@y.io"}},{"e":"none"},["q@r.io",4111111111111111]],"t":"4111 1111 1111 1111"}"#,
    );
}

#[test]
fn redact_finds_data_in_numbers_in_every_form() {
    let p = rules(&["{ id: r, redact: [] }"]);
    answers(
        &p,
        r#"{"a":4111111111111111,"b":4.111111111111111e15,"c":41111111111111110E-1,"d":12.5,"e":[1700000000.0]}"#,
    );
}

#[test]
fn a_key_a_redact_rule_would_rename_goes_to_the_tree_engine() {
    let p = rules(&["{ id: r, redact: [] }"]);
    assert!(matches!(
        compare(&p, r#"{"a":{"jane@example.com":1}}"#),
        Said::Bailed(_)
    ));
    let p = rules(&["{ id: r, redact: ['$.a'] }"]);
    assert!(matches!(
        compare(&p, r#"{"a":{"b":{"jane@example.com":1}}}"#),
        Said::Bailed(_)
    ));
    // Outside every redact rule's scope a key is only a key.
    answers(&p, r#"{"a":1,"b":{"jane@example.com":"x"}}"#);
}

#[test]
fn value_actions_on_containers_go_to_the_tree_engine() {
    let p = rules(&["{ id: m, mask: ['$.a'] }"]);
    assert!(matches!(compare(&p, r#"{"a":{"b":1}}"#), Said::Bailed(_)));
    answers(&p, r#"{"a":"b"}"#);
}

#[test]
fn a_container_replacement_is_answered_unless_a_later_rule_looks_into_it() {
    // Later rules that act on the node itself, or on everything in the document from the
    // root, see the new value whole.
    let p = rules(&[
        "{ id: r, replace: ['$.a', '$.b'], with: {\"k\": \"jane@example.com\"} }",
        "{ id: root, redact: ['$'] }",
        "{ id: h, hash: ['$.a'] }",
    ]);
    answers(&p, r#"{"a":"x","b":"y","c":"z"}"#);
    // `..*` goes on below the new value: the tree engine answers.
    let p = rules(&[
        "{ id: r, replace: ['$.a'], with: {\"b\": \"jane@example.com\"} }",
        "{ id: all, redact: [] }",
    ]);
    assert!(matches!(compare(&p, r#"{"a":"x"}"#), Said::Bailed(_)));
    let p = rules(&[
        "{ id: r, replace: ['$.a'], with: {\"b\": \"x\"} }",
        "{ id: m, mask: ['$.a.b'] }",
    ]);
    assert!(matches!(compare(&p, r#"{"a":"x"}"#), Said::Bailed(_)));
}

#[test]
fn refusals_go_to_the_tree_engine_and_invalid_stays_invalid() {
    let p = rules(&["{ id: no, refuse: ['$..password'] }"]);
    assert!(matches!(
        compare(&p, r#"{"a":[{"password":1}]}"#),
        Said::Bailed(_)
    ));
    answers(&p, r#"{"a":[{"pass":1}]}"#);
    // A refusal early in an invalid body: still invalid.
    assert_eq!(compare(&p, r#"{"password":1,"x":tru}"#), Said::Invalid);
    let p = policy("policy: t\nbody:\n  embedded_json: refuse\n");
    assert!(matches!(
        compare(&p, r#"{"a":" {\"p\":1} "}"#),
        Said::Bailed(_)
    ));
    answers(&p, r#"{"a":"{not json}","b":"[1"}"#);
}

#[test]
fn names_fold_as_the_tree_engine_folds_them() {
    let p = rules(&["{ id: m, mask: ['$..ssn'] }"]);
    answers(
        &p,
        r#"{"SSN":"1","ſsn":"2","ｓｓｎ":"3","s\u0053n":"4","x":{"Ssn":5}}"#,
    );
    let p = policy(
        "policy: t\nbody:\n  exact_names: true\n  rules:\n    - { id: m, mask: ['$..ssn'] }\n",
    );
    answers(&p, r#"{"SSN":"1","ssn":"2"}"#);
}

fn allow(list: &[&str], unknown: &str, extra: &[&str]) -> Policy {
    let mut yaml = String::from("policy: t\nbody:\n  allow:\n");
    for a in list {
        yaml.push_str(&format!("    - '{a}'\n"));
    }
    yaml.push_str(&format!("  unknown_fields: {unknown}\n"));
    if !extra.is_empty() {
        yaml.push_str("  rules:\n");
        for r in extra {
            yaml.push_str(&format!("    - {r}\n"));
        }
    }
    policy(&yaml)
}

#[test]
fn the_allow_list_prunes_and_reports_as_the_tree_engine() {
    let doc = r#"{"incidents":[{"id":{"x":1},"title":"t","secret":"s","customer":{"a":{"b":[1]}}},5,[1]],"export":"full","n":{"deep":{"x":1}}}"#;
    for unknown in ["drop", "pass"] {
        let p = allow(
            &[
                "$.incidents[*].id",
                "$.incidents[*].title",
                "$.incidents[*].customer..*",
                "$.n.deep",
            ],
            unknown,
            &[
                "{ id: all, redact: [] }",
                "{ id: m, mask: ['$..x', '$..secret'] }",
            ],
        );
        answers(&p, doc);
        answers(&p, "5");
        answers(&p, "[]");
    }
    let p = allow(&["$.a"], "refuse", &[]);
    assert!(matches!(compare(&p, doc), Said::Bailed(_)));
    answers(&p, r#"{"a":1}"#);
}

#[test]
fn unknown_paths_are_capped_and_listed_in_document_order() {
    let p = allow(&["$.keep"], "drop", &[]);
    let members: Vec<String> = (0..50)
        .map(|i| format!("\"u{i}\":[{{\"x\":{i}}}]"))
        .collect();
    answers(&p, &format!("{{\"keep\":1,{}}}", members.join(",")));
}

#[test]
fn positions_after_removals_run_on_the_tree_engine() {
    let p = rules(&[
        "{ id: d, drop: ['$.a[*].x'] }",
        "{ id: m, mask: ['$.a[0]'] }",
    ]);
    assert!(matches!(p.engine, Assignment::Stream(_)));
    answers(&p, r#"{"a":["s",{"x":1}]}"#);
    for (paths, why) in [
        (
            vec!["{ id: d, drop: ['$.a[1]'] }", "{ id: m, mask: ['$.a[0]'] }"],
            "selects by position",
        ),
        (
            vec!["{ id: d, drop: ['$.a[0]', '$.a[1]'] }"],
            "selects by position",
        ),
        (vec!["{ id: m, mask: ['$.a[-1]'] }"], "negative index"),
        (vec!["{ id: m, mask: ['$.a[::-1]'] }"], "length"),
        (vec!["{ id: m, mask: ['$.a[?@.x == 1]'] }"], "filter"),
    ] {
        let p = rules(&paths);
        match &p.engine {
            Assignment::Tree(reason) => assert!(reason.contains(why), "{reason}"),
            Assignment::Stream(_) => panic!("{paths:?} must run on the tree engine"),
        }
    }
    let p = rules(&["{ id: m, mask: ['$.a[1:3]', '$.a[0]'] }"]);
    answers(&p, r#"{"a":["a","b","c","d"]}"#);
    let p = allow(&["$.a[0]"], "drop", &["{ id: m, mask: ['$.a[0]'] }"]);
    assert!(matches!(p.engine, Assignment::Tree(_)));
}

#[test]
fn monitor_mode_reports_and_missing_keys_bail() {
    let p = policy("policy: t\nmode: monitor\nbody:\n  rules:\n    - { id: m, mask: ['$.a'] }\n");
    assert!(matches!(p.engine, Assignment::Tree(_)));
    let p = rules(&["{ id: h, hash: ['$.a'] }"]);
    let how = Apply::default();
    assert_eq!(
        run(&p, b"{\"a\":1}", Format::Json, BOUNDS, &how).err(),
        Some(Bail::Unsupported("a hash rule without a key"))
    );
    assert_eq!(
        run(&p, b"{\"a\":1", Format::Json, BOUNDS, &how).err(),
        Some(Bail::Invalid)
    );
}

#[test]
fn the_repository_policies_run_on_the_stream_engine() {
    let bytes = serde_json::to_vec(&crate::demo::export(64 * 1024)).expect("export");
    for name in [
        "incident-inbound",
        "incident-outbound",
        "hr-records",
        "payment-data",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("policies")
            .join(format!("{name}.yaml"));
        let p = crate::policy::load_file(&path).expect("policy");
        let said = compare_as(&p, &bytes, Format::Json, BOUNDS);
        if name.starts_with("incident") {
            assert_eq!(said, Said::Answered, "{name}");
        }
        for test in &p.tests {
            let input = serde_json::to_vec(&test.input).expect("input");
            compare_as(&p, &input, Format::Json, BOUNDS);
        }
    }
}

/// A small deterministic generator (xorshift), so the random cases below are the same on
/// every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.below(items.len())]
    }

    fn value(&mut self, depth: usize) -> String {
        const KEYS: [&str; 10] = [
            "a",
            "b",
            "ssn",
            "SSN",
            "note",
            "x",
            "s\\u0073n",
            "card",
            "id",
            "ｓｓｎ",
        ];
        const LEAVES: [&str; 14] = [
            "1",
            "-0",
            "1E2",
            "4111111111111111",
            "12.50",
            "true",
            "null",
            "\"plain\"",
            "\"mail jane@example.com\"",
            "\"4111 1111 1111 1111\"",
            "\"a\\u00e9\\n\"",
            "\"078-05-1120\"",
            "4.111111111111111e15",
            "\"\"",
        ];
        match (depth, self.below(4)) {
            (0, _) | (_, 0) => self.pick(&LEAVES).to_owned(),
            (_, 1) => {
                let n = self.below(4);
                let items: Vec<String> = (0..n).map(|_| self.value(depth - 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let n = self.below(5);
                let mut used = Vec::new();
                let mut members = Vec::new();
                for _ in 0..n {
                    let key = self.pick(&KEYS);
                    // Keys equal after unescaping are duplicates: keep one.
                    let plain = key.replace("\\u0073", "s");
                    if used.contains(&plain) {
                        continue;
                    }
                    used.push(plain);
                    members.push(format!("\"{key}\":{}", self.value(depth - 1)));
                }
                format!("{{{}}}", members.join(","))
            }
        }
    }

    fn policy(&mut self) -> String {
        const PATHS: [&str; 12] = [
            "$.a",
            "$..ssn",
            "$.a[*]",
            "$..*",
            "$.b.note",
            "$..note",
            "$.a.x",
            "$[*].card",
            "$.a[0]",
            "$.b[1:3]",
            "$['a','b'].id",
            "$..[0]",
        ];
        const ACTIONS: [&str; 6] = ["drop", "mask", "replace", "hash", "redact", "redact"];
        let mut yaml = String::from("policy: t\nbody:\n");
        if self.below(3) == 0 {
            yaml.push_str("  allow:\n");
            for _ in 0..1 + self.below(3) {
                yaml.push_str(&format!("    - '{}'\n", self.pick(&PATHS)));
            }
            let unknown = self.pick(&["drop", "pass"]);
            yaml.push_str(&format!("  unknown_fields: {unknown}\n"));
        }
        yaml.push_str("  rules:\n");
        for i in 0..1 + self.below(4) {
            let action = self.pick(&ACTIONS);
            let n = 1 + self.below(2);
            let paths: Vec<String> = (0..n).map(|_| format!("'{}'", self.pick(&PATHS))).collect();
            let extra = match action {
                "replace" => ", with: {\"r\": \"jane@example.com\"}",
                "mask" => ", keep_last: 2",
                _ => "",
            };
            if action == "redact" && self.below(3) == 0 {
                yaml.push_str(&format!("    - {{ id: r{i}, redact: [] }}\n"));
            } else {
                yaml.push_str(&format!(
                    "    - {{ id: r{i}, {action}: [{}]{extra} }}\n",
                    paths.join(", ")
                ));
            }
        }
        yaml
    }
}

/// Random policies (every action, wildcards, `..`, unions, indices, slices, allow-lists) on
/// random documents. `SEED` and `ROUNDS` in the environment run other and more cases.
#[test]
fn random_documents_and_policies_agree() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut g = Gen(seed);
    let (mut answered, mut total) = (0, 0);
    for _ in 0..rounds {
        let yaml = g.policy();
        let Ok(p) = compile(Path::new("t.yaml"), &yaml) else {
            continue;
        };
        for _ in 0..8 {
            let doc = g.value(4);
            total += 1;
            let said = std::panic::catch_unwind(|| compare(&p, &doc))
                .unwrap_or_else(|_| panic!("policy:\n{yaml}"));
            if said == Said::Answered {
                answered += 1;
            }
        }
    }
    assert!(
        answered * 3 > total,
        "the stream engine answered {answered} of {total}"
    );
}
