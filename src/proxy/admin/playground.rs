//! The policy playground behind `/ui`: a policy of the running config (or a
//! pasted one) applied to a pasted document by the engine `serve` and
//! `apply` use, enforced, with the rule behind every change and the result of
//! the policy's own tests. `hash` rules use the test key
//! ([`policy::TEST_HASH_KEY`]), never `secrets.hash_key`: the page must not
//! become a way to compute the pseudonyms that cross.

use crate::config::Config;
use crate::json::{self, Bounds};
use crate::policy::transform::HashKey;
use crate::policy::{self, Apply, Mode, Policy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// What the page asks.
#[derive(Deserialize)]
struct Ask {
    /// A policy of the running config, by name.
    policy: Option<String>,
    /// Or a policy file's text.
    policy_text: Option<String>,
    /// The JSON document.
    document: String,
}

/// What the page shows.
#[derive(Serialize, Default)]
struct Answer {
    policy: String,
    mode: &'static str,
    /// The document as it would cross (absent when refused).
    output: Option<Value>,
    /// Every action, with its rule and RFC 9535 path.
    changes: Vec<Change>,
    /// The refusing rule and path, when the crossing would be refused.
    refused: Option<Change>,
    tests_run: usize,
    test_failures: Vec<Failure>,
    /// Why nothing could run (policy does not compile, document is not JSON).
    error: Option<String>,
}

#[derive(Serialize)]
struct Change {
    rule: String,
    path: String,
    action: &'static str,
}

#[derive(Serialize)]
struct Failure {
    name: String,
    line: u64,
    message: String,
}

/// One policy as the page lists it.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    file: String,
    mode: &'static str,
    rules: Vec<(&'a str, &'static str)>,
    tests: usize,
}

/// The running config's policies, sorted by name.
pub fn policies(config: &Config) -> String {
    let mut list: Vec<Listed<'_>> = config
        .policies
        .by_name
        .values()
        .map(|p| Listed {
            name: &p.name,
            file: p.source.display().to_string(),
            mode: mode_name(p.mode),
            rules: p
                .rules
                .iter()
                .map(|r| (r.id.as_str(), r.action.name()))
                .collect(),
            tests: p.tests.len(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(b.name));
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Answers one playground request (always 200: errors are part of the answer).
pub fn apply(rt: &crate::proxy::Runtime, body: &[u8]) -> String {
    let answer = serde_json::from_slice::<Ask>(body)
        .map_err(|e| format!("the request is not understood: {e}"))
        .and_then(|ask| run(&rt.config, &ask));
    let answer = answer.unwrap_or_else(|error| Answer {
        error: Some(error),
        ..Answer::default()
    });
    serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into())
}

fn run(config: &Config, ask: &Ask) -> Result<Answer, String> {
    let policy = pick(config, ask)?;
    let limits = config.limits;
    let bounds = Bounds {
        depth: limits.max_json_depth,
        elements: limits.max_json_elements,
    };
    let mut doc = json::parse_bounded(ask.document.as_bytes(), bounds)
        .map_err(|e| format!("the document is not strict JSON, so it would be refused: {e}"))?;
    let key = HashKey::new(policy::TEST_HASH_KEY);
    let how = Apply {
        hash_key: Some(&key),
        report: true,
    };
    let outcome = policy
        .apply_in(Mode::Enforce, &mut doc, &how)
        .map_err(|e| e.to_string())?;
    let (tests_run, failures) = policy::run_tests(&policy);
    Ok(Answer {
        policy: policy.name.clone(),
        mode: mode_name(policy.mode),
        output: outcome.refused.is_none().then_some(doc),
        changes: outcome.report.into_iter().map(change).collect(),
        refused: outcome.refused.map(|r| Change {
            rule: r.rule,
            path: r.path,
            action: "refuse",
        }),
        tests_run,
        test_failures: failures
            .into_iter()
            .map(|f| Failure {
                name: f.name,
                line: f.line,
                message: f.message,
            })
            .collect(),
        error: None,
    })
}

fn pick(config: &Config, ask: &Ask) -> Result<Arc<Policy>, String> {
    if let Some(text) = &ask.policy_text {
        return policy::compile(Path::new("pasted policy"), text)
            .map(Arc::new)
            .map_err(|d| crate::diag::Diagnostics(d).to_string());
    }
    let name = ask.policy.as_deref().unwrap_or_default();
    config
        .policies
        .get(name)
        .cloned()
        .ok_or_else(|| format!("no policy named '{name}' in the running config"))
}

fn change(a: policy::ActionTaken) -> Change {
    Change {
        rule: a.rule,
        path: a.path,
        action: a.action,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Monitor => "monitor",
    }
}
