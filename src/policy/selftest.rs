//! Runs the tests embedded in policy files (`check`).

use super::transform::HashKey;
use super::{Apply, Mode, Policy, PolicySet};
use crate::diag::Diagnostic;
use serde_json::Value;

/// Key for `hash` rules in embedded tests: fixed, so expected pseudonyms in
/// tests are stable and never equal the ones a deployment produces.
pub const TEST_HASH_KEY: &[u8] = b"customs-policy-tests";

/// A failed embedded test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    /// Test name.
    pub name: String,
    /// Line of the test in the policy file.
    pub line: u64,
    /// What went wrong.
    pub message: String,
}

/// Runs every embedded test; returns (tests run, failures). Tests describe
/// what the policy does when enforced, so a policy in monitor mode runs
/// them enforced: switching the mode never breaks them.
pub fn run_tests(policy: &Policy) -> (usize, Vec<TestFailure>) {
    let key = HashKey::new(TEST_HASH_KEY);
    let how = Apply {
        hash_key: Some(&key),
        report: false,
    };
    let failures = policy
        .tests
        .iter()
        .filter_map(|t| {
            let mut doc = t.input.clone();
            let message = match (policy.apply_in(Mode::Enforce, &mut doc, &how), &t.expect) {
                (Err(e), _) => e.to_string(),
                (Ok(out), None) if out.refused.is_some() => return None,
                (Ok(_), None) => "expected the crossing to be refused, but it passed".into(),
                (Ok(out), Some(_)) if out.refused.is_some() => {
                    let r = out.refused.map(|r| r.rule).unwrap_or_default();
                    format!("refused by rule '{r}', expected an output")
                }
                (Ok(_), Some(want)) if *want == doc => return None,
                (Ok(_), Some(want)) => diff(want, &doc),
            };
            Some(TestFailure {
                name: t.name.clone(),
                line: t.line,
                message,
            })
        })
        .collect();
    (policy.tests.len(), failures)
}

/// Longest excerpt (bytes) of a value a failing test prints: a 50 MB `got` stays readable.
const EXCERPT_CHARS: usize = 200;

/// Where the outputs first differ, with short excerpts of both sides there.
fn diff(want: &Value, got: &Value) -> String {
    let (at, want, got) = first_difference(want, got, "$".to_string());
    format!(
        "output differs at {at}\n    expected: {}\n    got:      {}",
        excerpt(want),
        excerpt(got)
    )
}

fn first_difference<'v>(
    want: &'v Value,
    got: &'v Value,
    at: String,
) -> (String, &'v Value, &'v Value) {
    let inner = match (want, got) {
        (Value::Object(w), Value::Object(g)) if w.len() == g.len() => w
            .iter()
            .find(|(k, v)| g.get(*k) != Some(*v))
            .and_then(|(k, v)| Some((format!("[{}]", Value::String(k.clone())), v, g.get(k)?))),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .position(|(a, b)| a != b)
            .map(|i| (format!("[{i}]"), &w[i], &g[i])),
        _ => None,
    };
    match inner {
        Some((step, w, g)) => first_difference(w, g, at + &step),
        None => (at, want, got),
    }
}

/// The JSON text of `v`, serialised only up to [`EXCERPT_CHARS`] bytes.
fn excerpt(v: &Value) -> String {
    let mut out = Capped(Vec::with_capacity(EXCERPT_CHARS));
    // The writer refuses bytes past the cap: the error only means "cut".
    let cut = serde_json::to_writer(&mut out, v).is_err();
    let text = String::from_utf8_lossy(&out.0);
    if cut {
        format!("{}…", text.trim_end_matches('\u{fffd}'))
    } else {
        text.into_owned()
    }
}

/// A buffer that takes at most [`EXCERPT_CHARS`] bytes.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = EXCERPT_CHARS - self.0.len();
        if room == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let n = room.min(bytes.len());
        self.0.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the embedded tests of every policy, in name order: how many ran,
/// and a diagnostic per failure.
pub fn run_all_tests(set: &PolicySet) -> (usize, Vec<Diagnostic>) {
    let mut policies: Vec<&Policy> = set.by_name.values().map(|p| p.as_ref()).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    let mut total = 0;
    let mut diags = Vec::new();
    for p in policies {
        let (n, failures) = run_tests(p);
        total += n;
        diags.extend(failures.into_iter().map(|f| {
            let msg = format!(
                "policy '{}': test '{}' failed: {}",
                p.name, f.name, f.message
            );
            Diagnostic::error(&p.source, f.line, msg)
        }));
    }
    (total, diags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failing_test_names_the_first_difference_with_short_excerpts() {
        let big = "x".repeat(1 << 20);
        let want = json!({"a": 1, "b": [1, {"c": "ok"}]});
        let got = json!({"a": 1, "b": [1, {"c": big}]});
        let msg = diff(&want, &got);
        assert!(
            msg.starts_with("output differs at $[\"b\"][1][\"c\"]"),
            "{msg}"
        );
        assert!(msg.len() < 2 * EXCERPT_CHARS + 100, "{} bytes", msg.len());
        assert!(msg.contains("expected: \"ok\""), "{msg}");
    }
}
