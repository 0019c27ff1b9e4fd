//! The chain state behind the lock: sealing records onto the head, writing
//! them in one `write` per file, rotating by size and `fsync`ing.

use super::blocking::blocking;
use super::health::Shared;
use super::output::Output;
use super::{AuditError, SYNC_EVERY};
use crate::audit::chain;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The last record written: where the chain continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) seq: u64,
    pub(super) hash: String,
}

impl Head {
    pub(super) fn genesis() -> Self {
        Self {
            seq: 0,
            hash: chain::GENESIS.to_owned(),
        }
    }
}

/// Sealed lines waiting for one write.
#[derive(Default)]
struct Segment {
    bytes: Vec<u8>,
    /// Positions of its records in the batch.
    members: Vec<usize>,
    first_seq: Option<u64>,
    last: Option<Head>,
}

/// The chain state and the output, behind the [`Auditor`](super::Auditor)'s lock.
pub(super) struct Log {
    pub(super) out: Box<dyn Output>,
    pub(super) head: Head,
    rotate_bytes: u64,
    pub(super) shared: Arc<Shared>,
    pub(super) unsynced: bool,
    rotation_failed: Option<Instant>,
}

impl Log {
    pub(super) fn new(
        out: Box<dyn Output>,
        head: Head,
        rotate_bytes: u64,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            out,
            head,
            rotate_bytes,
            shared,
            unsynced: false,
            rotation_failed: None,
        }
    }

    /// Seals `batch` as the next records, in order, and writes them with
    /// one `write` (one per file when a rotation falls between two).
    /// Returns each record's result.
    pub(super) fn append_all<F: AsRef<[u8]>>(
        &mut self,
        batch: &[F],
    ) -> Vec<Result<(), AuditError>> {
        let mut results = Vec::with_capacity(batch.len());
        let mut seg = Segment::default();
        for fields in batch {
            let fields = fields.as_ref();
            let mut sealed = self.seal(&seg, fields);
            if let Ok((_, s)) = &sealed
                && self.rotation_due(seg.bytes.len(), s.line.len())
            {
                self.flush(&mut seg, &mut results);
                self.rotate();
                // Sealed on the segment's tip; after the flush the head may differ.
                sealed = self.seal(&seg, fields);
            }
            match sealed {
                Ok((seq, s)) => {
                    seg.bytes.extend_from_slice(&s.line);
                    seg.members.push(results.len());
                    seg.first_seq.get_or_insert(seq);
                    seg.last = Some(Head { seq, hash: s.hash });
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(self.shared.reject(&e.to_string()))),
            }
        }
        self.flush(&mut seg, &mut results);
        results
    }

    /// Seals `fields` as the record after the segment's last (or the head).
    fn seal(&self, seg: &Segment, fields: &[u8]) -> Result<(u64, chain::Sealed), chain::SealError> {
        let tip = seg.last.as_ref().unwrap_or(&self.head);
        let seq = tip.seq + 1;
        chain::seal(seq, &tip.hash, fields).map(|s| (seq, s))
    }

    /// Writes the segment; on success it becomes the head, on failure none
    /// of it is in the chain and its members' results say so.
    fn flush(&mut self, seg: &mut Segment, results: &mut [Result<(), AuditError>]) {
        let seg = std::mem::take(seg);
        let (Some(first_seq), Some(last)) = (seg.first_seq, seg.last) else {
            return;
        };
        let count = seg.members.len() as u64;
        match self.out.append(&seg.bytes, first_seq) {
            Ok(()) => {
                self.head = last;
                self.unsynced = true;
                self.shared.written.fetch_add(count, Ordering::Relaxed);
                self.shared.write_ok.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, records = count, "audit log write failed");
                self.shared.write_ok.store(false, Ordering::Release);
                self.shared.failures.fetch_add(count, Ordering::Relaxed);
                let e = Arc::new(e);
                for i in seg.members {
                    results[i] = Err(AuditError::Write(Arc::clone(&e)));
                }
            }
        }
    }

    /// Whether adding `line` bytes after `pending` would pass
    /// `rotate_bytes`. A file holding nothing yet takes the line whatever
    /// its size.
    fn rotation_due(&self, pending: usize, line: usize) -> bool {
        let used = self.out.len() + pending as u64;
        self.rotate_bytes > 0
            && self.out.rotates()
            && self
                .rotation_failed
                .is_none_or(|at| at.elapsed() >= SYNC_EVERY)
            && used > 0
            && used + line as u64 > self.rotate_bytes
    }

    /// Syncs, then moves the file aside; on failure keeps appending to it
    /// and retries after [`SYNC_EVERY`].
    fn rotate(&mut self) {
        let result = if self.sync() {
            blocking(|| self.out.rotate())
        } else {
            Err(io::Error::other("fsync before rotation failed"))
        };
        match result {
            Ok(()) => {
                self.rotation_failed = None;
                tracing::info!(seq = self.head.seq, hash = %self.head.hash, "audit log rotated");
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit log rotation failed; still appending to the current file");
                self.rotation_failed = Some(Instant::now());
            }
        }
    }

    /// `fsync`s what was written since the last sync (or retries a failed
    /// one); true when everything written is durable.
    pub(super) fn sync(&mut self) -> bool {
        if !self.sync_pending() {
            return true;
        }
        let result = blocking(|| self.out.sync());
        self.synced(result)
    }

    /// Whether anything written is not yet durable (or the last sync failed).
    pub(super) fn sync_pending(&self) -> bool {
        self.unsynced || !self.shared.sync_ok.load(Ordering::Acquire)
    }

    /// Takes note of an `fsync`'s result; true when it succeeded.
    pub(super) fn synced(&mut self, result: io::Result<()>) -> bool {
        match &result {
            Ok(()) => self.unsynced = false,
            Err(e) => {
                tracing::error!(error = %e, "audit log fsync failed");
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                // Whatever it should have covered is still to be synced.
                self.unsynced = true;
            }
        }
        self.shared.sync_ok.store(result.is_ok(), Ordering::Release);
        result.is_ok()
    }

    /// Notices a log file deleted or replaced under us (records written to
    /// an unlinked file are lost to readers); new records go to a new file.
    pub(super) fn check_file(&mut self) {
        if let Err(e) = self.out.check() {
            tracing::error!(error = %e, "audit log file was removed or replaced; new records go to a new file (the chain shows the gap)");
            self.shared.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Log {
    /// Closing: the last `fsync`, and the head to keep for verification.
    fn drop(&mut self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared.closing.notify_one();
        if !self.sync() {
            tracing::error!("audit log closed with unsynced records");
        }
        tracing::info!(seq = self.head.seq, hash = %self.head.hash, "audit log closed");
    }
}
