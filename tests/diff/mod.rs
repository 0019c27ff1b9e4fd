//! One body through both policy engines, and whether they agree: the tree engine
//! (`Choice::Tree`, the reference), `Choice::Auto` (the stream engine where it answers), and the
//! stream engine's own verdict (`stream::run`).
//!
//! Shared by the differential tests (`tests/engine_diff.rs`, `tests/json_test_suite.rs`) and the
//! fuzz targets (`tests/fuzz/src/lib.rs` includes this file), so it needs nothing but customs.
#![allow(dead_code)]

use customs::json::Bounds;
use customs::policy::document::{Applied, Choice, DocumentError, Engine, Format, apply_bytes_with};
use customs::policy::stream::{self, Bail};
use customs::policy::{Apply, Policy};
use std::fmt::Write as _;

/// The share of eligible generated cases the stream engine must answer itself:
/// bodies the tree engine accepts without a refusal, under enforce-mode policies without
/// filters or negative indices, run without `report`.
pub const MIN_STREAM_SHARE: f64 = 0.5;

/// What the engines said about one body, when they agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreed {
    /// Governed.
    Accepted {
        /// Why the stream engine left the body to the tree engine (`None`: it answered).
        left: Option<&'static str>,
        /// Some rule or the allow-list acted on a node.
        acted: bool,
        /// A `refuse` rule, `unknown_fields: refuse` or `embedded_json: refuse` fired.
        refused: bool,
    },
    /// Refused as not strict JSON, by the stream engine's own verdict too.
    Invalid,
    /// The policy could not run (a `hash` rule without a key).
    NotRun,
}

/// Runs `bytes` through both engines. `Err` describes the disagreement, input included.
pub fn compare(
    policy: &Policy,
    bytes: &[u8],
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
) -> Result<Agreed, String> {
    let tree = apply_bytes_with(policy, bytes, format, bounds, how, Choice::Tree);
    let auto = apply_bytes_with(policy, bytes, format, bounds, how, Choice::Auto);
    let direct = stream::run(policy, bytes, format, bounds, how);
    let fail = |what: &str| Err(report(what, bytes, &tree, &auto, &direct));
    if let Err(what) = same(tree.as_ref().ok(), auto.as_ref().ok()) {
        return fail(&format!("Auto differs from Tree: {what}"));
    }
    if let (Err(t), Err(a)) = (&tree, &auto)
        && t.to_string() != a.to_string()
    {
        return fail("Auto refuses for another reason than Tree");
    }
    if tree.as_ref().is_ok_and(|t| t.engine != Engine::Tree) {
        return fail("Choice::Tree answered with another engine");
    }
    let auto_streamed = auto.as_ref().is_ok_and(|a| a.engine == Engine::Stream);
    match (&tree, &direct) {
        (Ok(t), Ok(s)) => {
            if s.engine != Engine::Stream || !auto_streamed {
                return fail("stream::run answered but Auto did not use it");
            }
            if let Err(what) = same(Some(t), Some(s)) {
                return fail(&format!("stream::run differs from Tree: {what}"));
            }
            Ok(accepted(t, None))
        }
        _ if auto_streamed => fail("Auto used the stream engine but stream::run bailed"),
        (Ok(_), Err(Bail::Invalid)) => fail("stream::run calls a body invalid that Tree accepts"),
        (Ok(t), Err(Bail::Unsupported(why))) => Ok(accepted(t, Some(why))),
        (Err(e), Ok(_)) => fail(&format!("stream::run answered where Tree refused ({e})")),
        (Err(DocumentError::Apply(_)), Err(_)) => Ok(Agreed::NotRun),
        // `Unsupported` promises valid input: every bail checks the whole body first.
        (Err(e), Err(Bail::Unsupported(why))) => fail(&format!(
            "stream::run left a body Tree refuses ({e}) to the tree engine ({why}) instead of \
             calling it invalid"
        )),
        (Err(_), Err(Bail::Invalid)) => Ok(Agreed::Invalid),
    }
}

fn accepted(applied: &Applied, left: Option<&'static str>) -> Agreed {
    let outcome = &applied.outcome;
    Agreed::Accepted {
        left,
        acted: outcome.counts.iter().any(|n| *n > 0) || outcome.unknown_count > 0,
        refused: outcome.refused.is_some(),
    }
}

/// Whether two answers are the same: verdict, bytes and outcome.
fn same(a: Option<&Applied>, b: Option<&Applied>) -> Result<(), &'static str> {
    match (a, b) {
        (Some(a), Some(b)) if a.bytes != b.bytes => Err("output bytes"),
        (Some(a), Some(b)) if a.outcome != b.outcome => Err("outcome"),
        (Some(_), Some(_)) | (None, None) => Ok(()),
        _ => Err("verdict"),
    }
}

/// The disagreement, with the input and each engine's answer.
fn report(
    what: &str,
    bytes: &[u8],
    tree: &Result<Applied, DocumentError>,
    auto: &Result<Applied, DocumentError>,
    direct: &Result<Applied, Bail>,
) -> String {
    let mut text = format!("{what}\n  input:  {}\n", shown(bytes));
    for (name, answer) in [
        ("tree", describe(tree)),
        ("auto", describe(auto)),
        ("stream", describe(direct)),
    ] {
        let _ = writeln!(text, "  {name:<7} {answer}");
    }
    text
}

fn describe<E: std::fmt::Display>(answer: &Result<Applied, E>) -> String {
    match answer {
        Ok(a) => format!("{:?} {} {:?}", a.engine, shown(&a.bytes), a.outcome),
        Err(e) => format!("refused: {e}"),
    }
}

/// Bytes as a Rust byte-string literal, cut at 4 KiB.
pub fn shown(bytes: &[u8]) -> String {
    const MAX: usize = 4096;
    let cut = &bytes[..bytes.len().min(MAX)];
    let more = if bytes.len() > MAX { "…" } else { "" };
    format!("b\"{}\"{more}", cut.escape_ascii())
}
