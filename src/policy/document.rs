//! Policies over payload bytes: strict parse, apply, re-serialise. JSON
//! documents and NDJSON (one document per line) take the same path.

use super::{Apply, ApplyError, Outcome, Policy};
use crate::json::{self, Bounds, JsonError};
use serde_json::Value;

/// How a payload is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document.
    Json,
    /// One JSON document per line.
    Ndjson,
}

/// Why a payload could not be governed. Messages never contain payload data.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The payload is not strict JSON.
    #[error("{0}")]
    Json(#[from] JsonError),
    /// Line `line` of an NDJSON payload is not strict JSON.
    #[error("line {line}: {source}")]
    NdjsonLine {
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        source: JsonError,
    },
    /// The policy could not run.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Which engine produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The copy-through stream engine ([`super::stream`]).
    Stream,
    /// The tree engine: parse into a `Value`, apply, serialise.
    Tree,
}

/// Which engine [`apply_bytes_with`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The stream engine where it can answer, else the tree engine.
    Auto,
    /// The tree engine only (the reference).
    Tree,
}

/// The transformed payload and what was done to it.
#[derive(Debug)]
pub struct Applied {
    /// Re-serialised payload (compact JSON; NDJSON keeps one line per document).
    pub bytes: Vec<u8>,
    /// Actions, counts, refusal.
    pub outcome: Outcome,
    /// The engine that produced this answer.
    pub engine: Engine,
}

/// Parses `bytes` strictly, applies `policy` and re-serialises. When the
/// outcome blocks the crossing, `bytes` is empty: nothing may be sent.
pub fn apply_bytes(
    policy: &Policy,
    bytes: &[u8],
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
) -> Result<Applied, DocumentError> {
    apply_bytes_with(policy, bytes, format, bounds, how, Choice::Auto)
}

/// [`apply_bytes`] with a choice of engine: both give the same answer.
pub fn apply_bytes_with(
    policy: &Policy,
    bytes: &[u8],
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
    choice: Choice,
) -> Result<Applied, DocumentError> {
    let streams = matches!(policy.engine, super::stream::Assignment::Stream(_));
    if choice == Choice::Auto
        && streams
        && let Ok(applied) = super::stream::run(policy, bytes, format, bounds, how)
    {
        return Ok(applied);
    }
    apply_bytes_seen(policy, bytes, format, bounds, how, &mut |_| {})
}

/// [`apply_bytes`], showing each parsed document to `seen` as received,
/// before the policy changes it (drift detection reads its shape).
pub fn apply_bytes_seen(
    policy: &Policy,
    bytes: &[u8],
    format: Format,
    bounds: Bounds,
    how: &Apply<'_>,
    seen: &mut dyn FnMut(&Value),
) -> Result<Applied, DocumentError> {
    match format {
        Format::Json => {
            let mut doc = json::parse_bounded(bytes, bounds)?;
            seen(&doc);
            let outcome = policy.apply(&mut doc, how)?;
            let bytes = if outcome.blocks(policy) {
                Vec::new()
            } else {
                to_vec(&doc, bytes.len())
            };
            Ok(Applied {
                bytes,
                outcome,
                engine: Engine::Tree,
            })
        }
        Format::Ndjson => apply_ndjson(policy, bytes, bounds, how, seen),
    }
}

fn apply_ndjson(
    policy: &Policy,
    bytes: &[u8],
    bounds: Bounds,
    how: &Apply<'_>,
    seen: &mut dyn FnMut(&Value),
) -> Result<Applied, DocumentError> {
    let mut docs = json::parse_ndjson(bytes, bounds)
        .map_err(|(line, source)| DocumentError::NdjsonLine { line, source })?;
    let mut total = Outcome {
        counts: vec![0; policy.rules.len()],
        ..Outcome::default()
    };
    for doc in &mut docs {
        seen(doc);
        total.merge(policy.apply(doc, how)?);
        if total.blocks(policy) {
            return Ok(Applied {
                bytes: Vec::new(),
                outcome: total,
                engine: Engine::Tree,
            });
        }
    }
    Ok(Applied {
        bytes: json::to_ndjson(&docs),
        outcome: total,
        engine: Engine::Tree,
    })
}

/// Serialises `doc` into a buffer the size of the input: policies mostly shrink documents, so
/// this saves the growth copies of a buffer that starts small.
fn to_vec(doc: &Value, input_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input_len);
    // Serialising a Value cannot fail: keys are strings and numbers are valid.
    match serde_json::to_writer(&mut out, doc) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}
