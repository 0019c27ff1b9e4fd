//! The health the log publishes to every [`Auditor`](super::Auditor) handle
//! without taking the lock: open, last write and `fsync` ok, counters.

use super::AuditError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Health the log publishes to every handle without taking the lock.
#[derive(Debug)]
pub(super) struct Shared {
    /// Wakes the sync task at close.
    pub(super) closing: tokio::sync::Notify,
    pub(super) open: AtomicBool,
    pub(super) write_ok: AtomicBool,
    pub(super) sync_ok: AtomicBool,
    pub(super) written: AtomicU64,
    pub(super) failures: AtomicU64,
}

impl Shared {
    /// A record that cannot be sealed: a bug, counted and reported.
    pub(super) fn reject(&self, error: &str) -> AuditError {
        tracing::error!(error, "audit record not serialisable");
        self.failures.fetch_add(1, Ordering::Relaxed);
        AuditError::Serialize(error.to_owned())
    }

    pub(super) fn new() -> Self {
        Shared {
            closing: tokio::sync::Notify::new(),
            open: AtomicBool::new(true),
            write_ok: AtomicBool::new(true),
            sync_ok: AtomicBool::new(true),
            written: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }
}
