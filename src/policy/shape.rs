//! Document shapes, for `schema_drift` on routes whose policy has no
//! allow-list (see [`crate::signals`]).
//!
//! The shape of a document is the set of wildcarded paths of its object
//! members, in the format of the crossing records' `unknown_fields`:
//! `$['incidents'][*]['customer']['tier']`. Key names only, array indices
//! folded into `[*]`, never a value; array elements and the root are not
//! members and have no path of their own.
//!
//! Cost: one walk of the parsed document, hashing each member's path
//! incrementally from its parent's hash (the path module's word-at-a-time
//! hash, no allocation). Text is built only for the paths the caller asks to
//! name, in a second walk that runs only when something is new. Bounded: at
//! most [`MAX_DEPTH`] levels and [`MAX_PATHS`] distinct paths per body. The
//! hash starts from a per-process random state, so a partner cannot
//! precompute a name that collides with a known path and hides a new field.

use super::path::{Fx, Location};
use serde_json::Value;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Levels below which members are not visited.
pub const MAX_DEPTH: usize = 64;
/// Distinct paths collected per body (one document or an NDJSON stream).
pub const MAX_PATHS: usize = 4096;

/// The hash of member `key` below a node whose hash is `parent`. The tags
/// keep `a.b` apart from `ab` and from `a[*]b`; the hash takes each write's
/// length, so key boundaries cannot shift.
fn key_hash(parent: u64, key: &str) -> u64 {
    let mut h = Fx::resume(parent);
    h.write_u8(1);
    h.write(key.as_bytes());
    h.finish()
}

fn element_hash(parent: u64) -> u64 {
    let mut h = Fx::resume(parent);
    h.write_u8(2);
    h.finish()
}

/// What a [`visit`] callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep walking.
    Continue,
    /// Stop the whole walk.
    Stop,
}

/// Calls `f` with the path hash and location of every object member of
/// `doc` (repeats included, depth first), down to [`MAX_DEPTH`]. Returns
/// false when `f` stopped the walk or members lay deeper than the bound.
pub fn visit(doc: &Value, f: &mut dyn FnMut(u64, &Location<'_>) -> Flow) -> bool {
    let mut walk = Walk { f, complete: true };
    walk.node(doc, &Location::root(), Fx::default().finish(), 0)
        .is_ok()
        && walk.complete
}

struct Walk<'f> {
    f: &'f mut dyn FnMut(u64, &Location<'_>) -> Flow,
    complete: bool,
}

/// `Err` stops the walk.
type Step = Result<(), ()>;

impl Walk<'_> {
    fn node(&mut self, v: &Value, loc: &Location<'_>, hash: u64, depth: usize) -> Step {
        match v {
            Value::Object(map) if depth < MAX_DEPTH => {
                for (key, child) in map {
                    let h = key_hash(hash, key);
                    let here = loc.key(key);
                    if (self.f)(h, &here) == Flow::Stop {
                        return Err(());
                    }
                    self.node(child, &here, h, depth + 1)?;
                }
            }
            Value::Array(items) if depth < MAX_DEPTH => {
                let h = element_hash(hash);
                for (i, item) in items.iter().enumerate() {
                    // Scalars have no members: skip the frame.
                    if item.is_object() || item.is_array() {
                        self.node(item, &loc.index(i), h, depth + 1)?;
                    }
                }
            }
            Value::Object(map) if !map.is_empty() => self.complete = false,
            Value::Array(items) if !items.is_empty() => self.complete = false,
            _ => {}
        }
        Ok(())
    }
}

/// A `u64` that is already a hash needs no second one.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; hash anything else anyway.
        let mut h = Fx::resume(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of path hashes.
pub type PathSet = HashSet<u64, BuildHasherDefault<PreHashed>>;

/// The distinct paths of one body, collected across its documents.
#[derive(Default)]
pub struct Distinct {
    seen: PathSet,
    /// Set when a bound cut the collection short.
    pub truncated: bool,
}

impl Distinct {
    /// Appends to `out` the hashes of `doc`'s paths that earlier documents
    /// of this body did not have, in walk order (bounded by [`MAX_PATHS`]).
    pub fn collect(&mut self, doc: &Value, out: &mut Vec<u64>) {
        let seen = &mut self.seen;
        let complete = visit(doc, &mut |h, _| {
            if seen.contains(&h) {
                return Flow::Continue;
            }
            if seen.len() >= MAX_PATHS {
                return Flow::Stop;
            }
            seen.insert(h);
            out.push(h);
            Flow::Continue
        });
        self.truncated |= !complete;
    }
}

/// The wildcarded paths of `doc` whose hashes are in `wanted`, at most
/// `limit` of them, in walk order, with their hashes.
pub fn name(doc: &Value, wanted: &PathSet, limit: usize) -> Vec<(u64, String)> {
    let mut named: Vec<(u64, String)> = Vec::new();
    if limit == 0 || wanted.is_empty() {
        return named;
    }
    visit(doc, &mut |h, loc| {
        if wanted.contains(&h) && !named.iter().any(|(n, _)| *n == h) {
            named.push((h, loc.wildcarded()));
        }
        if named.len() >= limit.min(wanted.len()) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    named
}

#[cfg(test)]
mod tests;
