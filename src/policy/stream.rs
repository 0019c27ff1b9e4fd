//! The copy-through streaming engine: one forward pass over a body's bytes
//! that copies what the policy does not touch and rewrites what it selects.
//!
//! It is the fast path; the tree engine ([`super::Policy::apply`]) is the
//! reference. Whatever the stream engine cannot run with the tree engine's
//! exact semantics makes it [`Bail`], and the caller runs the tree engine on
//! the same bytes instead, so both always give the same answer.

use super::document::{Applied, Format};
use super::{Apply, Policy};
use crate::json::Bounds;

/// Why the stream engine gave no answer: the caller runs the tree engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bail {
    /// The input is not strict JSON (the tree engine says why).
    #[error("invalid JSON")]
    Invalid,
    /// Something the stream engine leaves to the tree engine.
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
    let _ = (policy, bytes, format, bounds, how);
    Err(Bail::Unsupported("not built yet"))
}
