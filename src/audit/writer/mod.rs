//! The crossing log's writer. Whoever records a crossing seals and writes
//! it, on its own thread, under one lock that orders the chain: serialising
//! happens before the lock, `seq`/`prev`/`hash` and the `write(2)` to the
//! page cache inside it. On a listener shard the records of the crossings
//! finishing in the same turn share one `write` (`writer::batch`). A background
//! task `fsync`s and watches the file.
//!
//! Why not a writer task: the proxy runs one single-threaded runtime per
//! core (see `proxy::listener::shards`), and a queue to another thread costs
//! every crossing two cross-thread wake-ups (the send and the ack); measured
//! under load that took a quarter of `pass` throughput.
//!
//! # Durability
//!
//! A record is acknowledged once `write(2)` has put it in the OS page cache:
//! it survives a customs crash, and a machine crash or power loss loses at
//! most the records of about the last second. The file is `fsync`ed at most
//! [`SYNC_EVERY`] after a write, before each rotation and at shutdown. With
//! the stdout sink a record is acknowledged once written to fd 1; durability
//! is then the reader's business.
//!
//! # Failures
//!
//! A record that cannot be written is not part of the chain: the file is cut
//! back to the last whole record and the next record's `prev` is the last
//! *written* hash. [`Auditor::healthy`] is false from a failed write (or
//! `fsync`) until a later one succeeds, so the pipeline can refuse (503)
//! before forwarding when `on_failure: refuse`.
//!
//! # Rotation
//!
//! Before a write would take the file past `rotate_bytes` (0: never), the
//! file is `fsync`ed and renamed after its first `seq`
//! (`crossings.000000000001.jsonl`,
//! [`chain::rotated_name`](super::chain::rotated_name)) and a new file is
//! started; `seq` and `prev` carry over. A failed rotation is logged and
//! retried a second later; records keep going to the current file meanwhile.
//!
//! # Restart
//!
//! On start the chain resumes from the last line of the existing file (or,
//! when that is empty or missing, of the newest rotated file). A torn or
//! altered last line stops `start` with an error rather than extending a
//! broken chain; the stdout sink always starts a new chain at `seq` 1.
//!
//! # Shutdown
//!
//! [`Auditor::close`] (or dropping the last clone) `fsync`s and logs the
//! final `seq`/`hash`; later records fail with [`AuditError::Closed`].
//!
//! # Files
//!
//! - `mod.rs` — [`start`], the [`Auditor`] handle and [`AuditError`].
//! - `batch` — group commit: one `write` per turn of a listener shard.
//! - `log` — the chain state behind the lock: sealing, writing, rotating,
//!   `fsync`ing.
//! - `output` — where sealed lines go; the stdout sink.
//! - `file` — the file sink: appends, torn writes, rotation, a vanished file.
//! - `resume` — restart: the chain's head from the existing files.
//! - `sync` — the background task that `fsync`s and watches the file.
//! - `health` — what every handle can read without the lock.
//! - `blocking` — file work that may block, off the runtime's back.

use super::chain::Fault;
use super::{Crossing, Entry, Event};
use crate::config::{AuditSettings, AuditSink};
use file::FileOutput;
use health::Shared;
use log::{Head, Log};
use output::{Output, StdoutOutput};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use sync::keep;
use tokio::task::JoinHandle;

mod batch;
mod blocking;
mod file;
mod health;
mod log;
mod output;
mod resume;
mod sync;
/// Longest time a written record stays un-`fsync`ed.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Why the audit log could not take a record.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file (or its directory) could not be created or opened.
    #[error("cannot open audit log {}: {error}", path.display())]
    Open {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The existing log ends in a line that is not a valid record.
    #[error(
        "cannot resume audit log {}: last record: {reason}; check it with `customs audit verify` and move the damaged file aside",
        path.display()
    )]
    Resume {
        /// The file whose last line is bad.
        path: PathBuf,
        /// What is wrong with it.
        reason: Fault,
    },
    /// The record could not be written; it is not in the chain.
    #[error("audit log write failed: {0}")]
    Write(Arc<io::Error>),
    /// The record could not be serialised (a bug, not an I/O problem).
    #[error("audit record could not be serialised: {0}")]
    Serialize(String),
    /// The log was closed (shutdown).
    #[error("audit log is closed")]
    Closed,
}

/// Handle to the crossing log. Cheap to clone; the log closes when
/// [`Auditor::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Auditor {
    /// `None` once closed.
    log: Arc<Mutex<Option<Log>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("shared", &self.shared)
            .finish()
    }
}

/// Opens the log and starts its sync task. With a file sink, creates
/// missing parent directories, opens the file and resumes its chain.
///
/// Must be called within a tokio runtime. The returned handle finishes once
/// the log is closed ([`Auditor::close`] or the last clone dropped).
///
/// # Errors
/// [`AuditError::Open`] when the file cannot be opened or created,
/// [`AuditError::Resume`] when its last line is not a valid record.
pub async fn start(settings: AuditSettings) -> Result<(Auditor, JoinHandle<()>), AuditError> {
    let (out, head): (Box<dyn Output>, Head) = match settings.sink {
        AuditSink::Stdout => (Box::new(StdoutOutput), Head::genesis()),
        AuditSink::File(path) => {
            let (file, head) = tokio::task::spawn_blocking(move || FileOutput::open(path))
                .await
                .map_err(|_| AuditError::Closed)??;
            (Box::new(file), head)
        }
    };
    tracing::info!(seq = head.seq, hash = %head.hash, "audit log opened");
    let shared = Arc::new(Shared::new());
    let log = Log::new(out, head, settings.rotate_bytes, Arc::clone(&shared));
    let auditor = Auditor {
        log: Arc::new(Mutex::new(Some(log))),
        shared,
    };
    let task = tokio::spawn(keep(Arc::downgrade(&auditor.log), auditor.shared.clone()));
    Ok((auditor, task))
}

impl Auditor {
    /// Appends one crossing; returns once it is written to the OS.
    ///
    /// # Errors
    /// [`AuditError::Write`] when it could not be written (it is then not
    /// in the chain), [`AuditError::Closed`] after [`Auditor::close`].
    pub async fn record(&self, rec: &Crossing) -> Result<(), AuditError> {
        self.append(Entry::Crossing(rec)).await
    }

    /// Appends one event, in the same chain.
    ///
    /// # Errors
    /// As [`Auditor::record`].
    pub async fn event(&self, ev: Event) -> Result<(), AuditError> {
        self.append(Entry::Event(&ev)).await
    }

    /// Appends one crossing at once, without waiting for the thread's
    /// batch: for a crossing whose task is going away (the caller left), so
    /// that its record cannot be lost with a task spawned to write it.
    ///
    /// # Errors
    /// As [`Auditor::record`].
    pub fn record_now(&self, rec: &Crossing) -> Result<(), AuditError> {
        self.append_now(Entry::Crossing(rec))
    }

    /// Appends one event at once, from code that cannot wait (a drop).
    ///
    /// # Errors
    /// As [`Auditor::record`].
    pub fn event_now(&self, ev: Event) -> Result<(), AuditError> {
        self.append_now(Entry::Event(&ev))
    }

    fn append_now(&self, entry: Entry<'_>) -> Result<(), AuditError> {
        let fields = self.fields(entry)?;
        self.write_now(fields)
    }

    async fn append(&self, entry: Entry<'_>) -> Result<(), AuditError> {
        let fields = self.fields(entry)?;
        if batch::available() {
            batch::append(&self.log, fields).await
        } else {
            self.write_now(fields)
        }
    }

    /// Serialised outside the lock: only sealing and the write are ordered.
    fn fields(&self, entry: Entry<'_>) -> Result<Vec<u8>, AuditError> {
        entry
            .to_fields()
            .map_err(|e| self.shared.reject(&e.to_string()))
    }

    fn write_now(&self, fields: Vec<u8>) -> Result<(), AuditError> {
        write_now(&self.log, &[fields])
            .pop()
            .unwrap_or(Err(AuditError::Closed))
    }

    /// Closes the log: `fsync`s and logs the final `seq`/`hash`; later
    /// records fail with [`AuditError::Closed`]. `serve` calls it once the
    /// listeners have drained.
    pub fn close(&self) {
        let log = lock(&self.log).take();
        drop(log);
    }

    /// False after a write or `fsync` failed (until a later one succeeds),
    /// or once the log is closed.
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.shared.write_ok.load(Ordering::Acquire)
            && self.shared.sync_ok.load(Ordering::Acquire)
            && self.shared.open.load(Ordering::Acquire)
    }

    /// Records (crossings and events) written since start.
    #[must_use]
    pub fn records_written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Records that could not be written, plus failed `fsync`s and a
    /// vanished log file: each is an alertable failure.
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }
}

/// Seals and writes `batch` under the lock; each record's result.
fn write_now<F: AsRef<[u8]>>(log: &Mutex<Option<Log>>, batch: &[F]) -> Vec<Result<(), AuditError>> {
    match lock(log).as_mut() {
        Some(log) => log.append_all(batch),
        None => batch.iter().map(|_| Err(AuditError::Closed)).collect(),
    }
}

/// The log stays usable after a panic elsewhere while it was held: every
/// append either completed or left the head where it was.
fn lock(log: &Mutex<Option<Log>>) -> MutexGuard<'_, Option<Log>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
