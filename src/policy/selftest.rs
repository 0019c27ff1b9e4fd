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

fn diff(want: &Value, got: &Value) -> String {
    format!("output differs\n    expected: {want}\n    got:      {got}")
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
