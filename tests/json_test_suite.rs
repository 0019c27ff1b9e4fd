//! JSONTestSuite's `test_parsing` files (MIT, vendored with their licence under
//! `tests/data/JSONTestSuite/`) through both policy engines: every `n_` file refused, every
//! `y_` file accepted except the ones customs refuses on purpose ([`REFUSED_ON_PURPOSE`]), and
//! on `i_` files the engines agree. A refusal is the stream engine's own verdict too
//! (`stream::run` says `Bail::Invalid`, see `diff::compare`). Each file runs under a policy that touches nothing and
//! under a `redact` backstop over every string, as one JSON document and as NDJSON.

mod diff;

use customs::json::{Bounds, DEFAULT_MAX_ELEMENTS, MAX_DEPTH};
use customs::policy::document::Format;
use customs::policy::{Apply, Policy, compile};
use diff::Agreed;
use std::path::{Path, PathBuf};

/// `y_` files (valid JSON) customs refuses, and why (SPEC §2.2: a body another parser could
/// read differently is never forwarded).
const REFUSED_ON_PURPOSE: [(&str, &str); 3] = [
    (
        "y_object_duplicated_key.json",
        "duplicate key: parsers disagree on which value counts",
    ),
    (
        "y_object_duplicated_key_and_value.json",
        "duplicate key, even with the same value",
    ),
    (
        "y_object_escaped_null_in_key.json",
        "control character (NUL) in a key: C-backed upstreams truncate it",
    ),
];

const POLICIES: [(&str, &str); 2] = [
    (
        "untouched",
        "policy: untouched\nbody:\n  rules:\n    - { id: nothing, mask: ['$.no.such.path'] }\n",
    ),
    (
        "backstop",
        "policy: backstop\nbody:\n  rules:\n    - { id: pii, redact: [] }\n",
    ),
];

const BOUNDS: Bounds = Bounds {
    depth: MAX_DEPTH,
    elements: DEFAULT_MAX_ELEMENTS,
};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/JSONTestSuite/test_parsing");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() > 300,
        "the vendored corpus is incomplete: {} files",
        files.len()
    );
    files
}

fn policies() -> Vec<Policy> {
    POLICIES
        .iter()
        .map(|(name, yaml)| {
            compile(Path::new(name), yaml).unwrap_or_else(|d| panic!("{name}: {d:?}"))
        })
        .collect()
}

/// What the file's name and [`REFUSED_ON_PURPOSE`] say the JSON verdict must be.
fn expected(name: &str) -> Option<bool> {
    let on_purpose = REFUSED_ON_PURPOSE.iter().any(|(n, _)| *n == name);
    match &name[..2] {
        "y_" => Some(!on_purpose),
        "n_" => Some(false),
        _ => None,
    }
}

#[test]
fn every_file_gets_the_same_verdict_from_both_engines() {
    let policies = policies();
    let how = Apply::default();
    let mut wrong = Vec::new();
    let mut streamed = 0;
    let files = corpus();
    for (name, bytes) in &files {
        for policy in &policies {
            for format in [Format::Json, Format::Ndjson] {
                let agreed = match diff::compare(policy, bytes, format, BOUNDS, &how) {
                    Ok(agreed) => agreed,
                    Err(e) => {
                        wrong.push(format!("{name} ({}, {format:?}): {e}", policy.name));
                        continue;
                    }
                };
                streamed += u32::from(matches!(agreed, Agreed::Accepted { left: None, .. }));
                if format == Format::Json
                    && let Some(why) = verdict_error(name, &agreed)
                {
                    wrong.push(format!("{name} ({}): {why}", policy.name));
                }
            }
        }
    }
    eprintln!(
        "json_test_suite: {} files × {} policies × JSON/NDJSON, {streamed} answered by the \
         stream engine",
        files.len(),
        policies.len()
    );
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Why `agreed` is not the verdict the file's name calls for, if it is not.
fn verdict_error(name: &str, agreed: &Agreed) -> Option<String> {
    let accepted = matches!(agreed, Agreed::Accepted { .. });
    match expected(name) {
        Some(want) if want != accepted => Some(format!(
            "{} by both engines",
            if accepted { "accepted" } else { "refused" }
        )),
        _ => None,
    }
}
