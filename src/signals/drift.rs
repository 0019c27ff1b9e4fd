//! `schema_drift` on routes whose policy has no allow-list: sampled bodies'
//! shapes (see [`crate::policy::shape`]) against the paths seen since start.
//!
//! - Sampling: at most one governed JSON body per integration, route and
//!   direction per `signals.drift_sample` (1 s by default) is walked; bodies
//!   that are empty or of a type the policy does not govern take no turn.
//!   `pass` bodies are never parsed, so drift is not observed on them;
//!   responses other than 2xx are not sampled (error bodies have shapes of
//!   their own).
//! - Baseline: while `signals.warmup` runs since start, and on the first
//!   sample of a route and direction whenever it comes, every new path is
//!   learned silently. After that, a sampled body's paths that were never
//!   seen are named (at most [`MAX_EVENT_PATHS`]) and handed to
//!   [`super::Signals::observe`] in the crossing's direction record, which
//!   raises the event and marks them seen under the usual rate limit; paths
//!   not reported yet come back with a later sample.
//! - Memory: at most [`MAX_SEEN_PATHS`] path hashes per integration, route
//!   and direction (hashes, not text: about 72 KiB when full); a full
//!   baseline stops reporting, as with allow-lists.
//! - Not counted: bodies the policy refuses or cannot parse (their crossing
//!   is already recorded as refused), and paths deeper than
//!   [`crate::policy::shape::MAX_DEPTH`] or beyond
//!   [`crate::policy::shape::MAX_PATHS`] distinct ones in one body.
//! - Maps keyed by ids (`{"users": {"u123": …}}`) have a new path per id:
//!   such routes drift on every new key until the baseline is full. Keys
//!   reach events only through [`crate::audit::redact`], as in
//!   `unknown_fields`: an id or a PII key is a placeholder there.
//!
//! The walk runs without the signals lock; each route and direction's
//! baseline has its own mutex, held only for set lookups and updates.

use super::{MAX_EVENT_PATHS, MAX_SEEN_PATHS};
use crate::policy::shape::{self, Distinct, PathSet};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What is known of one integration, route and direction's shape.
#[derive(Default)]
pub(super) struct Baseline {
    /// Path hashes seen since start (at most [`MAX_SEEN_PATHS`]).
    pub(super) known: PathSet,
    /// A sample has been learned: new paths from now on are drift.
    sampled: bool,
    /// No sample before this time.
    next_sample: Option<Instant>,
}

/// A baseline shared between the signal state and the probes.
pub(super) type Shared = Arc<Mutex<Baseline>>;

pub(super) fn lock(base: &Shared) -> MutexGuard<'_, Baseline> {
    base.lock().unwrap_or_else(|e| e.into_inner())
}

impl Baseline {
    /// Learns `hashes` while there is room.
    pub(super) fn learn(&mut self, hashes: impl IntoIterator<Item = u64>) {
        for h in hashes {
            if self.known.len() >= MAX_SEEN_PATHS {
                return;
            }
            self.known.insert(h);
        }
    }
}

/// One direction of a crossing: which body a probe samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller's body.
    Request,
    /// The upstream's body.
    Response,
}

impl Side {
    pub(super) fn index(self) -> usize {
        match self {
            Side::Request => 0,
            Side::Response => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// No document seen yet.
    Undecided,
    /// Another body was sampled too recently.
    Skipped,
    /// This body is the sample.
    Sampling {
        /// New paths are drift (else they are learned).
        report: bool,
    },
}

/// Samples one body's shape; from [`super::Signals::shape_probe`], fed every
/// parsed document of the body, then [`ShapeProbe::finish`]ed.
pub struct ShapeProbe {
    /// Whether this probe watches for drift (policies without allow-list).
    drift: bool,
    /// The discovery sample this body is, if its turn came.
    discovery: Option<crate::discovery::Sample>,
    base: Shared,
    every: Duration,
    warming: bool,
    now: Instant,
    turn: Turn,
    distinct: Distinct,
    /// Paths of this body the baseline did not know.
    new: Vec<u64>,
    /// The first of them, named (only when they are drift).
    named: Vec<(u64, String)>,
}

impl ShapeProbe {
    pub(super) fn new(
        base: Shared,
        every: Duration,
        warming: bool,
        now: Instant,
        drift: bool,
        discovery: Option<crate::discovery::Sample>,
    ) -> Self {
        ShapeProbe {
            drift,
            discovery,
            base,
            every,
            warming,
            now,
            turn: Turn::Undecided,
            distinct: Distinct::default(),
            new: Vec::new(),
            named: Vec::new(),
        }
    }

    /// Reads one document as received (before the policy changes it).
    pub fn document(&mut self, doc: &Value) {
        if let Some(sample) = &mut self.discovery {
            sample.document(doc);
        }
        if !self.drift {
            return;
        }
        if self.turn == Turn::Undecided {
            self.turn = self.take_turn();
        }
        let Turn::Sampling { report } = self.turn else {
            return;
        };
        let mut fresh = Vec::new();
        self.distinct.collect(doc, &mut fresh);
        {
            let base = lock(&self.base);
            fresh.retain(|h| !base.known.contains(h));
        }
        let room = MAX_EVENT_PATHS - self.named.len().min(MAX_EVENT_PATHS);
        if report && room > 0 && !fresh.is_empty() {
            // Text only for what is new: usually nothing.
            let wanted: PathSet = fresh.iter().copied().collect();
            self.named.extend(shape::name(doc, &wanted, room));
        }
        self.new.extend(fresh);
    }

    /// Whether this body is (or may still be) a sample, for discovery or drift. When it
    /// is not, the probe never samples it (the next turn only moves later), so it need
    /// not be shown the body and the body need not be parsed into a tree for it.
    pub fn due(&self) -> bool {
        self.discovery.is_some()
            || (self.drift
                && self.turn != Turn::Skipped
                && lock(&self.base).next_sample.is_none_or(|t| self.now >= t))
    }

    fn take_turn(&self) -> Turn {
        let mut base = lock(&self.base);
        if base.next_sample.is_some_and(|t| self.now < t) {
            return Turn::Skipped;
        }
        base.next_sample = Some(self.now + self.every);
        Turn::Sampling {
            report: !self.warming && base.sampled,
        }
    }

    /// Ends the sample: while the baseline forms, learns the new paths and
    /// returns nothing; after that, returns the named drift candidates
    /// (path hash, wildcarded path) for the crossing's direction record.
    pub fn finish(self) -> Vec<(u64, String)> {
        if let Some(sample) = self.discovery {
            sample.finish();
        }
        let Turn::Sampling { report } = self.turn else {
            return Vec::new();
        };
        let mut base = lock(&self.base);
        base.sampled = true;
        if report {
            return self.named;
        }
        base.learn(self.new);
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
