//! The copy-through streaming engine: one forward pass over a body's bytes
//! that copies what the policy does not touch and rewrites what it selects.
//!
//! It is the fast path; the tree engine ([`super::Policy::apply`]) is the
//! reference. Whatever the stream engine cannot run with the tree engine's
//! exact semantics makes it [`Bail`], and the caller runs the tree engine on
//! the same bytes instead, so both always give the same answer.
//!
//! - Policies are assigned to an engine when they are compiled ([`Assignment`], see
//!   [`plan`] for what goes to the tree engine and why).
//! - The pass validates exactly what `json::parse_bounded` validates (grammar, UTF-8, escapes
//!   and surrogates, control characters in keys, duplicate keys at any depth, numbers that
//!   overflow a double, depth and element bounds, trailing data); its tokens are in [`scan`].
//! - Output is what the tree engine writes: serde_json's compact form, which keeps key order
//!   and number text (exponents spelled `e+`/`e-`) and re-escapes strings canonically. A string
//!   without a backslash is therefore copied as it is; one with escapes is decoded and written
//!   by serde_json.
//! - Refusals (a `refuse` rule, `unknown_fields: refuse`, `embedded_json: refuse`) bail: the
//!   tree engine runs refuse rules in file order and reports the first rule's match, which one
//!   forward pass does not know. Nothing of the body is released either way.

mod engine;
mod plan;
mod scan;
#[cfg(test)]
mod tests;

pub use plan::{Assignment, Plan, assign};

use super::document::{Applied, Engine, Format};
use super::{Action, Apply, Outcome, Policy};
use crate::json::{Bounds, is_json_ws};
use engine::{Stop, Walk};

/// Why the stream engine gave no answer: the caller runs the tree engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bail {
    /// The input is not strict JSON (the tree engine says why).
    #[error("invalid JSON")]
    Invalid,
    /// Something the stream engine leaves to the tree engine. The input is valid JSON
    /// within the bounds: every bail checks the whole body first.
    #[error("left to the tree engine: {0}")]
    Unsupported(&'static str),
}

/// Runs `policy` over `bytes` in one pass. Never returns partial output:
/// either the whole answer or a [`Bail`].
pub fn run(
    policy: &Policy,
    bytes: &[u8],
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
) -> Result<Applied, Bail> {
    let text = std::str::from_utf8(bytes).map_err(|_| Bail::Invalid)?;
    let why = match &policy.engine {
        Assignment::Tree(_) => "the policy is assigned to the tree engine",
        Assignment::Stream(plan) => match unsupported(policy, how) {
            Some(why) => why,
            None => match walk(plan, policy, text, format, bounds, how) {
                Ok(applied) => return Ok(applied),
                Err(Stop::Invalid) => return Err(Bail::Invalid),
                Err(Stop::Bail(why)) => why,
            },
        },
    };
    // `Unsupported` promises valid input: check the whole body, policy aside.
    let plain = Apply::default();
    match walk(&Plan::empty(), policy, text, format, bounds, &plain) {
        Err(Stop::Invalid) => Err(Bail::Invalid),
        _ => Err(Bail::Unsupported(why)),
    }
}

/// What this run asks for that the stream engine leaves to the tree engine.
fn unsupported(policy: &Policy, how: &Apply<'_>) -> Option<&'static str> {
    if how.report {
        return Some("a report of every action (apply --report)");
    }
    let hashes = policy
        .rules
        .iter()
        .any(|r| matches!(r.action, Action::Hash));
    if hashes && how.hash_key.is_none() {
        return Some("a hash rule without a key");
    }
    None
}

fn walk(
    plan: &Plan,
    policy: &Policy,
    text: &str,
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
) -> Result<Applied, Stop> {
    let mut walk = Walk::new(plan, policy, how.hash_key, bounds, text.len());
    let outcome = match format {
        Format::Json => walk.document(text)?,
        Format::Ndjson => {
            let mut total = Outcome {
                counts: vec![0; policy.rules.len()],
                ..Outcome::default()
            };
            for line in text.split('\n') {
                if line.bytes().all(is_json_ws) {
                    continue;
                }
                total.merge(walk.document(line)?);
                walk.out.push(b'\n');
            }
            total
        }
    };
    Ok(Applied {
        bytes: walk.out,
        outcome,
        engine: Engine::Stream,
    })
}
