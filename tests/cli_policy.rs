//! `customs apply` and `customs check`, run as the built binary: outputs,
//! reports, exit codes and `file:line` diagnostics.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn customs(args: &[&str], dir: &Path, stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTOMS_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn customs");
    // A run that fails before reading its input (a config error) may close
    // stdin first: the broken pipe is its answer, not the test's failure.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).expect("write file");
}

const POLICY: &str = r#"policy: sample
mode: enforce
body:
  rules:
    - id: no-passwords
      refuse: [$..password]
    - id: card
      mask: [$..card_number]
      keep_last: 4
    - id: notes
      drop: [$.internal_notes]
    - id: text
      redact: [$.description]
"#;

#[test]
fn apply_prints_the_transformed_document_and_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "p.yaml", POLICY);
    let input = br#"{"card_number":"4111 1111 1111 1111","internal_notes":"x","description":"mail bob@example.com","n":18446744073709551616}"#;
    let out = customs(&["apply", "p.yaml", "--report"], dir.path(), input);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        r#"{"card_number":"**** **** **** 1111","description":"mail [EMAIL]","n":18446744073709551616}"#
    );
    let report = text(&out.stderr);
    assert!(report.contains("card\tmask\t$['card_number']"), "{report}");
    assert!(
        report.contains("notes\tdrop\t$['internal_notes']"),
        "{report}"
    );
    assert!(
        report.contains("text\tredact\t$['description']"),
        "{report}"
    );
}

#[test]
fn apply_exits_3_when_refused_and_prints_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "p.yaml", POLICY);
    write(dir.path(), "in.json", r#"{"user":{"password":"hunter2"}}"#);
    let out = customs(&["apply", "p.yaml", "in.json"], dir.path(), b"");
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(!text(&out.stderr).contains("hunter2"));
}

#[test]
fn apply_refuses_ambiguous_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "p.yaml", POLICY);
    for bad in [
        &br#"{"card_number":"4111111111111111","card_number":null}"#[..],
        br#"{"a":1}{"b":2}"#,
        b"\xff\xfe{}",
        b"",
    ] {
        let out = customs(&["apply", "p.yaml"], dir.path(), bad);
        assert_eq!(out.status.code(), Some(1), "input {:?}", text(bad));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn apply_handles_ndjson_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "p.yaml", POLICY);
    let input =
        b"{\"card_number\":\"4111111111111111\"}\n\n{\"description\":\"call +1 415 555 0134\"}\n";
    let out = customs(
        &["apply", "p.yaml", "--content-type", "application/x-ndjson"],
        dir.path(),
        input,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            r#"{"card_number":"************1111"}"#,
            r#"{"description":"call [PHONE]"}"#
        ]
    );
}

#[test]
fn monitor_mode_changes_nothing_but_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "p.yaml",
        &POLICY.replace("mode: enforce", "mode: monitor"),
    );
    let input = br#"{"card_number":"4111111111111111","password":"x"}"#;
    let out = customs(&["apply", "p.yaml", "--report"], dir.path(), input);
    assert!(
        out.status.success(),
        "monitor never refuses: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), text(input));
    let report = text(&out.stderr);
    assert!(report.contains("monitor mode"), "{report}");
    assert!(report.contains("no-passwords\trefuse"), "{report}");
    assert!(report.contains("card\tmask"), "{report}");
}

#[test]
fn hash_rules_without_a_key_fail_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "h.yaml",
        "policy: h\nbody:\n  rules:\n    - id: pseudo\n      hash: [$.email]\n",
    );
    let out = customs(&["apply", "h.yaml"], dir.path(), br#"{"email":"a@b.c"}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("secrets.hash_key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hash_rules_use_the_configs_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    write(
        &dir.path().join("policies"),
        "h.yaml",
        "policy: h\nbody:\n  rules:\n    - id: pseudo\n      hash: [$.email]\n",
    );
    write(dir.path(), "key", "k1\n");
    write(
        dir.path(),
        "customs.yaml",
        "listen: { address: 127.0.0.1:0 }\nsecrets: { hash_key: \"${file:key}\" }\n",
    );
    let out = customs(&["apply", "h"], dir.path(), br#"{"email":"a@b.c"}"#);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hashed = doc["email"].as_str().expect("string");
    assert_eq!(hashed.len(), 64);
    assert!(!text(&out.stdout).contains("a@b.c"));
}

#[test]
fn check_runs_every_policy_test_of_the_shipped_policies() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = customs(&["check", "--policies", "policies"], repo, b"");
    assert!(out.status.success(), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("0 errors"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_reports_each_mistake_with_file_line_and_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    write(
        p,
        "a.yaml",
        "policy: a\nbody:\n  rules:\n    - id: r1\n      drop: ['$.a[']\n    - id: r1\n      redact: []\n      detectors: [email, passport]\n      patterns: { bad: \"(unclosed\" }\n",
    );
    write(p, "e.yaml", "policy: d\n");
    write(
        p,
        "c.yaml",
        "policy: c\nbody:\n  rules:\n    - id: x\n      mask: [$.a]\n      colour: red\n",
    );
    write(
        p,
        "d.yaml",
        "policy: d\nbody:\n  rules:\n    - id: m\n      mask: [$.a]\ntests:\n  - name: wrong\n    input: {\"a\": \"xy\"}\n    expect: {\"a\": \"xy\"}\n",
    );
    write(
        p,
        "f.yaml",
        "# routes read `pass` as no policy\npolicy: pass\n",
    );
    let out = customs(&["check", "--policies", "."], p, b"");
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    for expected in [
        "f.yaml:2: policy name 'pass' is reserved",
        "a.yaml:5: invalid JSONPath '$.a['",
        "a.yaml:6: duplicate rule id 'r1'",
        "a.yaml:8: unknown detector 'passport'",
        "a.yaml:9:",
        "e.yaml:1: duplicate policy name 'd'",
        "c.yaml:6: unknown field `colour`",
        "d.yaml:7: policy 'd': test 'wrong' failed",
        "hint:",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

/// A policy's tests describe what it does when enforced: switching it to
/// monitor mode (as `check` itself suggests for a first rollout) keeps them
/// passing.
#[test]
fn policy_tests_hold_in_monitor_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tests = "tests:\n  - name: notes go\n    input: {\"internal_notes\": \"x\", \"id\": 1}\n    expect: {\"id\": 1}\n  - name: passwords are refused\n    input: {\"password\": \"hunter2\"}\n    expect_refused: true\n";
    let monitored = POLICY.replace("mode: enforce", "mode: monitor") + tests;
    write(dir.path(), "sample.yaml", &monitored);
    let out = customs(&["check", "--policies", "."], dir.path(), b"");
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("2 tests, 0 errors"),
        "{}",
        text(&out.stdout)
    );
}

/// A key the config names but cannot read is reported as such, not as a
/// missing setting.
#[test]
fn an_unreadable_hash_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "h.yaml",
        "policy: h\nbody:\n  rules:\n    - id: pseudo\n      hash: [$.email]\n",
    );
    write(
        dir.path(),
        "customs.yaml",
        "listen: { address: 127.0.0.1:0 }\nsecrets: { hash_key: \"${env:CUSTOMS_TEST_UNSET_KEY}\" }\n",
    );
    let out = customs(&["apply", "h.yaml"], dir.path(), br#"{"email":"a@b.c"}"#);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("CUSTOMS_TEST_UNSET_KEY is not set"), "{err}");
}
