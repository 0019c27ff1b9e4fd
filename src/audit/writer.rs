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
//! (`crossings.000000000001.jsonl`, [`chain::rotated_name`]) and a new file
//! is started; `seq` and `prev` carry over. A failed rotation is logged and
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

use super::chain::{self, Fault};
use super::{Crossing, Entry, Event};
use crate::config::{AuditSettings, AuditSink};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::runtime::RuntimeFlavor;
use tokio::task::JoinHandle;

mod batch;

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

/// Health the log publishes to every handle without taking the lock.
#[derive(Debug)]
struct Shared {
    /// Wakes the sync task at close.
    closing: tokio::sync::Notify,
    open: AtomicBool,
    write_ok: AtomicBool,
    sync_ok: AtomicBool,
    written: AtomicU64,
    failures: AtomicU64,
}

impl Shared {
    /// A record that cannot be sealed: a bug, counted and reported.
    fn reject(&self, error: &str) -> AuditError {
        tracing::error!(error, "audit record not serialisable");
        self.failures.fetch_add(1, Ordering::Relaxed);
        AuditError::Serialize(error.to_owned())
    }

    fn new() -> Self {
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

/// Once per [`SYNC_EVERY`]: checks the file is still there and `fsync`s
/// what was written since the last sync. Holds only a weak handle, so it
/// never keeps the log open.
async fn keep(log: Weak<Mutex<Option<Log>>>, shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(SYNC_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.closing.notified() => return,
        }
        let Some(log) = log.upgrade() else { return };
        blocking(|| sync_beside(&log));
    }
}

/// Checks the file, then `fsync`s it through a second handle with the lock
/// released, so records go on being written meanwhile (outputs without such
/// a handle sync under the lock).
fn sync_beside(log: &Mutex<Option<Log>>) {
    let handle = {
        let mut guard = lock(log);
        let Some(log) = guard.as_mut() else { return };
        log.check_file();
        if !log.sync_pending() {
            return;
        }
        match log.out.sync_handle() {
            Some(handle) => {
                // Records written from here on are the next sync's.
                log.unsynced = false;
                handle
            }
            None => {
                log.sync();
                return;
            }
        }
    };
    let result = handle.and_then(|file| file.sync_data());
    if let Some(log) = lock(log).as_mut() {
        log.synced(result);
    }
}

/// Runs file work that may block for long (`fsync`, rename, a full pipe)
/// without holding up the other tasks of a multi-threaded runtime's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match runtime_flavor() {
        Some(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The flavour of the runtime the caller runs on, if any.
fn runtime_flavor() -> Option<RuntimeFlavor> {
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|h| h.runtime_flavor())
}

/// The last record written: where the chain continues.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    seq: u64,
    hash: String,
}

impl Head {
    fn genesis() -> Self {
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

/// The chain state and the output, behind the [`Auditor`]'s lock.
struct Log {
    out: Box<dyn Output>,
    head: Head,
    rotate_bytes: u64,
    shared: Arc<Shared>,
    unsynced: bool,
    rotation_failed: Option<Instant>,
}

impl Log {
    fn new(out: Box<dyn Output>, head: Head, rotate_bytes: u64, shared: Arc<Shared>) -> Self {
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
    fn append_all<F: AsRef<[u8]>>(&mut self, batch: &[F]) -> Vec<Result<(), AuditError>> {
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
    fn sync(&mut self) -> bool {
        if !self.sync_pending() {
            return true;
        }
        let result = blocking(|| self.out.sync());
        self.synced(result)
    }

    /// Whether anything written is not yet durable (or the last sync failed).
    fn sync_pending(&self) -> bool {
        self.unsynced || !self.shared.sync_ok.load(Ordering::Acquire)
    }

    /// Takes note of an `fsync`'s result; true when it succeeded.
    fn synced(&mut self, result: io::Result<()>) -> bool {
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
    fn check_file(&mut self) {
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

/// Where sealed lines go.
trait Output: Send {
    /// Bytes in the current file.
    fn len(&self) -> u64;
    /// Appends whole lines; on error nothing of `bytes` stays (or nothing
    /// more is appended until it is cut back). `first_seq` is the first
    /// line's `seq`, which names the file when it is rotated.
    fn append(&mut self, bytes: &[u8], first_seq: u64) -> io::Result<()>;
    /// Makes appended lines durable.
    fn sync(&mut self) -> io::Result<()>;
    /// A second handle to `fsync` without the log's lock, where there is
    /// one.
    fn sync_handle(&self) -> Option<io::Result<File>> {
        None
    }
    /// Whether this output rotates at all.
    fn rotates(&self) -> bool;
    /// Renames the (synced) current file to its rotated name, starts a new one.
    fn rotate(&mut self) -> io::Result<()>;
    /// Errs (and recovers) when the file was removed or replaced.
    fn check(&mut self) -> io::Result<()>;
}

/// Standard output: never rotated, synced by flushing.
struct StdoutOutput;

impl Output for StdoutOutput {
    fn len(&self) -> u64 {
        0
    }
    fn append(&mut self, bytes: &[u8], _first_seq: u64) -> io::Result<()> {
        // A pipe whose reader is slow blocks here.
        blocking(|| {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        })
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn rotates(&self) -> bool {
        false
    }
    fn rotate(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn check(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A log file, rotated by size.
struct FileOutput {
    path: PathBuf,
    /// `None` after a rotation or a vanished file, until the next append.
    file: Option<File>,
    len: u64,
    /// `seq` of the file's first line; `None` while the file is empty.
    first_seq: Option<u64>,
    /// A failed write may have left a partial line past `len`.
    torn: bool,
    /// Devices and pipes are neither truncated nor rotated.
    regular: bool,
}

impl FileOutput {
    /// Opens (creating it and its directories) and finds the chain's head.
    fn open(path: PathBuf) -> Result<(Self, Head), AuditError> {
        let open_err = |error| AuditError::Open {
            path: path.clone(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(open_err)?;
        }
        let file = open_append(&path, false).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        let regular = meta.is_file();
        let len = if regular { meta.len() } else { 0 };
        let (head, first_seq) = if len > 0 {
            let resume_err = |reason| AuditError::Resume {
                path: path.clone(),
                reason,
            };
            let last = last_link(&file, len).map_err(resume_err)?;
            let first = first_link(&file).map_err(resume_err)?;
            (
                Head {
                    seq: last.seq,
                    hash: last.hash,
                },
                Some(first.seq),
            )
        } else {
            (newest_rotated_head(&path)?, None)
        };
        let out = Self {
            path,
            file: Some(file),
            len,
            first_seq,
            torn: false,
            regular,
        };
        Ok((out, head))
    }
}

impl Output for FileOutput {
    fn len(&self) -> u64 {
        self.len
    }

    fn append(&mut self, bytes: &[u8], first_seq: u64) -> io::Result<()> {
        if self.file.is_none() {
            // A fresh file only: appending to one we did not resume would fork the chain.
            self.file = Some(open_append(&self.path, true)?);
            (self.len, self.first_seq, self.torn) = (0, None, false);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("audit log file not open"));
        };
        if self.torn {
            file.set_len(self.len)?;
            self.torn = false;
        }
        // A FIFO or a terminal blocks while its reader is slow; a regular file does not.
        let written = if self.regular {
            file.write_all(bytes)
        } else {
            blocking(|| file.write_all(bytes))
        };
        if let Err(e) = written {
            // ENOSPC mid-write leaves half a line: cut back to the last whole record.
            self.torn = self.regular && file.set_len(self.len).is_err();
            return Err(e);
        }
        self.len += bytes.len() as u64;
        self.first_seq.get_or_insert(first_seq);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) if self.regular => file.sync_data(),
            _ => Ok(()),
        }
    }

    fn sync_handle(&self) -> Option<io::Result<File>> {
        let file = self.file.as_ref().filter(|_| self.regular)?;
        Some(file.try_clone())
    }

    fn rotates(&self) -> bool {
        self.regular
    }

    fn rotate(&mut self) -> io::Result<()> {
        let Some(first_seq) = self.first_seq else {
            return Ok(());
        };
        let target = chain::rotated_name(&self.path, first_seq);
        // rename(2) would silently replace an existing file.
        if fs::symlink_metadata(&target).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", target.display()),
            ));
        }
        fs::rename(&self.path, &target)?;
        (self.file, self.len, self.first_seq, self.torn) = (None, 0, None, false);
        sync_dir(&self.path);
        self.file = Some(open_append(&self.path, true)?);
        Ok(())
    }

    fn check(&mut self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.regular || same_file(file, &self.path)? {
            return Ok(());
        }
        (self.file, self.len, self.first_seq, self.torn) = (None, 0, None, false);
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} was removed or replaced", self.path.display()),
        ))
    }
}

/// Opens for appending (and reading, to resume), creating the file.
fn open_append(path: &Path, fresh: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    if fresh {
        options.create_new(true);
    } else {
        options.create(true);
    }
    options.open(path)
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}

/// Makes a rename durable. Best effort: not every platform can open a directory.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(error = %e, dir = %dir.display(), "could not fsync the audit directory after rotation");
    }
}

/// The chain's head from the newest rotated file next to `path`, or genesis.
fn newest_rotated_head(path: &Path) -> Result<Head, AuditError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let open_err = |error| AuditError::Open {
        path: dir.to_path_buf(),
        error,
    };
    let mut newest: Option<String> = None;
    for entry in fs::read_dir(dir).map_err(open_err)? {
        let name = entry
            .map_err(open_err)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if chain::is_rotated_name(&base, &name) && newest.as_ref().is_none_or(|n| name > *n) {
            newest = Some(name);
        }
    }
    let Some(name) = newest else {
        return Ok(Head::genesis());
    };
    let rotated = dir.join(name);
    let resume_err = |reason| AuditError::Resume {
        path: rotated.clone(),
        reason,
    };
    let file = File::open(&rotated).map_err(|error| AuditError::Open {
        path: rotated.clone(),
        error,
    })?;
    let len = file
        .metadata()
        .map_err(|e| resume_err(Fault::Unreadable(e.to_string())))?
        .len();
    let last = last_link(&file, len).map_err(resume_err)?;
    Ok(Head {
        seq: last.seq,
        hash: last.hash,
    })
}

/// The last line of a file of `len` bytes, checked. Reads backwards in
/// growing windows so a large file costs one small read.
fn last_link(mut file: &File, len: u64) -> Result<chain::Link, Fault> {
    let unreadable = |e: io::Error| Fault::Unreadable(e.to_string());
    let mut window = len.min(64 * 1024);
    loop {
        let mut buf =
            vec![0; usize::try_from(window).map_err(|e| Fault::Unreadable(e.to_string()))?];
        file.seek(SeekFrom::Start(len - window))
            .map_err(unreadable)?;
        file.read_exact(&mut buf).map_err(unreadable)?;
        let body = buf.strip_suffix(b"\n").ok_or(Fault::Truncated)?;
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => return chain::check_line(&body[i + 1..]),
            None if window == len => return chain::check_line(body),
            None => window = (window * 2).min(len),
        }
    }
}

/// The first line of a non-empty file, checked.
fn first_link(mut file: &File) -> Result<chain::Link, Fault> {
    let unreadable = |e: io::Error| Fault::Unreadable(e.to_string());
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut line = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut line)
        .map_err(unreadable)?;
    let line = line.strip_suffix(b"\n").ok_or(Fault::Truncated)?;
    chain::check_line(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::task::Poll;

    /// In-memory output: one buffer per file, failing on demand.
    #[derive(Clone, Default)]
    struct Mem {
        files: Arc<Mutex<Vec<Vec<u8>>>>,
        fail: Arc<AtomicBool>,
        fail_sync: Arc<AtomicBool>,
        syncs: Arc<AtomicU64>,
        writes: Arc<AtomicU64>,
    }

    impl Mem {
        fn files(&self) -> Vec<Vec<u8>> {
            self.files.lock().expect("lock").clone()
        }
    }

    impl Output for Mem {
        fn len(&self) -> u64 {
            self.files
                .lock()
                .expect("lock")
                .last()
                .map_or(0, |f| f.len() as u64)
        }
        fn append(&mut self, bytes: &[u8], _first_seq: u64) -> io::Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("disk full"));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut files = self.files.lock().expect("lock");
            match files.last_mut() {
                Some(f) => f.extend_from_slice(bytes),
                None => files.push(bytes.to_vec()),
            }
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            if self.fail_sync.load(Ordering::SeqCst) {
                return Err(io::Error::other("EIO"));
            }
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn rotates(&self) -> bool {
            true
        }
        fn rotate(&mut self) -> io::Result<()> {
            self.files.lock().expect("lock").push(Vec::new());
            Ok(())
        }
        fn check(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new())
    }

    fn event_of(n: u64) -> Event {
        let detail = BTreeMap::from([("n".to_owned(), n.into())]);
        Event {
            ts: "t".into(),
            event: "reload",
            integration: None,
            detail,
        }
    }

    fn event(n: u64) -> Vec<u8> {
        Entry::Event(&event_of(n)).to_fields().expect("serialises")
    }

    /// Appends events `ns` as one batch; returns each one's result.
    fn append(log: &mut Log, ns: &[u64]) -> Vec<Result<(), AuditError>> {
        let batch: Vec<Vec<u8>> = ns.iter().map(|&n| event(n)).collect();
        log.append_all(&batch)
    }

    /// Checks every line and the links between them; returns (seq, n).
    fn chain_of(bytes: &[u8]) -> Vec<(u64, u64)> {
        let mut prev = None::<chain::Link>;
        let mut out = Vec::new();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").expect("whole line");
            let link = chain::check_line(line).expect("valid line");
            if let Some(p) = &prev {
                assert_eq!((link.seq, &link.prev), (p.seq + 1, &p.hash), "chained");
            }
            let value: serde_json::Value = serde_json::from_slice(line).expect("json");
            out.push((link.seq, value["n"].as_u64().expect("n")));
            prev = Some(link);
        }
        out
    }

    #[test]
    fn records_are_chained_in_order_and_split_at_rotation() {
        let mem = Mem::default();
        let mut log = Log::new(Box::new(mem.clone()), Head::genesis(), 450, shared());
        let acks = append(&mut log, &[1, 2, 3, 4, 5]);
        assert!(acks.iter().all(Result::is_ok));
        let files = mem.files();
        assert_eq!(files.len(), 3, "two ~200-byte lines per 450-byte file");
        assert!(files.iter().all(|f| f.len() <= 450));
        let all: Vec<u8> = files.concat();
        assert_eq!(chain_of(&all), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
        assert_eq!(log.shared.written.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn failed_write_is_not_in_the_chain_and_health_recovers() {
        let mem = Mem::default();
        let mut log = Log::new(Box::new(mem.clone()), Head::genesis(), 0, shared());
        assert!(append(&mut log, &[1, 2]).iter().all(Result::is_ok));

        mem.fail.store(true, Ordering::SeqCst);
        let acks = append(&mut log, &[3]);
        assert!(matches!(acks[0], Err(AuditError::Write(_))));
        assert!(!log.shared.write_ok.load(Ordering::SeqCst));
        assert_eq!(log.shared.failures.load(Ordering::SeqCst), 1);

        mem.fail.store(false, Ordering::SeqCst);
        assert!(append(&mut log, &[4]).iter().all(Result::is_ok));
        assert!(log.shared.write_ok.load(Ordering::SeqCst));
        assert_eq!(chain_of(&mem.files().concat()), [(1, 1), (2, 2), (3, 4)]);
    }

    #[test]
    fn one_line_larger_than_rotate_bytes_gets_a_file_of_its_own() {
        let mem = Mem::default();
        let mut log = Log::new(Box::new(mem.clone()), Head::genesis(), 10, shared());
        assert!(append(&mut log, &[1, 2]).iter().all(Result::is_ok));
        assert_eq!(mem.files().len(), 2);
        assert_eq!(chain_of(&mem.files().concat()), [(1, 1), (2, 2)]);
    }

    #[test]
    fn failed_fsync_makes_the_log_unhealthy_until_one_succeeds() {
        let mem = Mem::default();
        let mut log = Log::new(Box::new(mem.clone()), Head::genesis(), 0, shared());
        assert!(append(&mut log, &[1]).iter().all(Result::is_ok));
        mem.fail_sync.store(true, Ordering::SeqCst);
        assert!(!log.sync());
        assert!(!log.shared.sync_ok.load(Ordering::SeqCst));
        assert_eq!(log.shared.failures.load(Ordering::SeqCst), 1);
        mem.fail_sync.store(false, Ordering::SeqCst);
        assert!(log.sync(), "retried although nothing new was written");
        assert!(log.shared.sync_ok.load(Ordering::SeqCst));
    }

    fn auditor(mem: &Mem) -> Auditor {
        let log = Log::new(Box::new(mem.clone()), Head::genesis(), 0, shared());
        Auditor {
            shared: Arc::clone(&log.shared),
            log: Arc::new(Mutex::new(Some(log))),
        }
    }

    #[tokio::test]
    async fn close_syncs_and_refuses_later_records() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        for n in 1..=2 {
            auditor.event(event_of(n)).await.expect("written");
        }
        assert!(auditor.healthy());
        auditor.close();
        assert_eq!(chain_of(&mem.files().concat()), [(1, 1), (2, 2)]);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1);
        assert!(matches!(
            auditor.event(event_of(3)).await,
            Err(AuditError::Closed)
        ));
        assert!(!auditor.healthy());
    }

    #[tokio::test]
    async fn dropping_the_last_handle_syncs() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        auditor.event(event_of(1)).await.expect("written");
        let clone = auditor.clone();
        drop(auditor);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 0, "a clone lives on");
        drop(clone);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn background_sync_covers_what_was_written() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        auditor.event(event_of(1)).await.expect("written");
        sync_beside(&auditor.log);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1, "synced under the lock");
        sync_beside(&auditor.log);
        assert_eq!(mem.syncs.load(Ordering::SeqCst), 1, "nothing new to sync");

        let dir = tempfile::tempdir().expect("tempdir");
        let log = Mutex::new(Some(file_log(&dir.path().join("c.jsonl"), 0)));
        let append = |n| lock(&log).as_mut().map(|l| append(l, &[n]));
        append(1);
        sync_beside(&log);
        let guard = lock(&log);
        let log = guard.as_ref().expect("open");
        assert!(!log.sync_pending(), "synced beside the lock");
        assert!(log.shared.sync_ok.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn records_of_one_turn_go_out_in_one_write() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 1..=5 {
            let auditor = auditor.clone();
            tasks.spawn(async move { auditor.event(event_of(n)).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("written");
        }
        assert_eq!(mem.writes.load(Ordering::SeqCst), 1);
        let mut ns: Vec<u64> = chain_of(&mem.files().concat())
            .iter()
            .map(|l| l.1)
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_leader_dropped_while_waiting_still_writes_its_batch() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        {
            let mut leader = std::pin::pin!(auditor.event(event_of(1)));
            // One poll: queued, and yielding for the rest of the turn.
            let polled = std::future::poll_fn(|cx| Poll::Ready(leader.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "still waiting");
            assert!(mem.files().concat().is_empty());
        } // the leader is dropped here
        assert_eq!(chain_of(&mem.files().concat()), [(1, 1)]);
    }

    #[test]
    fn concurrent_records_form_one_chain() {
        let mem = Mem::default();
        let auditor = auditor(&mem);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let auditor = &auditor;
                scope.spawn(move || {
                    for i in 0..50 {
                        write_now(&auditor.log, &[event(t * 1000 + i)])
                            .pop()
                            .expect("one result")
                            .expect("written");
                    }
                });
            }
        });
        let chain = chain_of(&mem.files().concat());
        assert_eq!(chain.len(), 200);
        assert!(
            chain
                .iter()
                .enumerate()
                .all(|(i, &(seq, _))| seq == i as u64 + 1)
        );
    }

    fn file_log(path: &Path, rotate_bytes: u64) -> Log {
        let (out, head) = FileOutput::open(path.to_path_buf()).expect("opens");
        Log::new(Box::new(out), head, rotate_bytes, shared())
    }

    #[test]
    fn file_resumes_from_live_file_then_from_newest_rotated_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/crossings.jsonl");
        let mut log = file_log(&path, 0);
        assert!(append(&mut log, &[1, 2, 3]).iter().all(Result::is_ok));
        drop(log);

        let mut log = file_log(&path, 450);
        assert_eq!(log.head.seq, 3);
        assert!(append(&mut log, &[4, 5, 6]).iter().all(Result::is_ok));
        drop(log);
        let rotated = chain::rotated_name(&path, 1);
        assert!(
            rotated.exists(),
            "the resumed file was rotated under its first seq"
        );

        // Crash between rename and the first write: no live file.
        fs::remove_file(&path).ok();
        let log = file_log(&path, 450);
        let newest = fs::read(chain::rotated_name(&path, 4)).expect("second rotated file");
        assert_eq!(log.head.seq, chain_of(&newest).last().expect("lines").0);
    }

    #[test]
    fn torn_last_line_stops_resume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("crossings.jsonl");
        let mut log = file_log(&path, 0);
        assert!(append(&mut log, &[1]).iter().all(Result::is_ok));
        drop(log);
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(br#"{"seq":2,"prev":"#).expect("write");
        let Err(err) = FileOutput::open(path) else {
            panic!("resumed past a torn line");
        };
        assert!(
            matches!(
                err,
                AuditError::Resume {
                    reason: Fault::Truncated,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn vanished_file_is_counted_and_a_new_one_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("crossings.jsonl");
        let mut log = file_log(&path, 0);
        assert!(append(&mut log, &[1, 2]).iter().all(Result::is_ok));
        fs::remove_file(&path).expect("remove");
        log.check_file();
        assert_eq!(log.shared.failures.load(Ordering::SeqCst), 1);
        assert!(append(&mut log, &[3]).iter().all(Result::is_ok));
        let text = fs::read(&path).expect("new file");
        assert_eq!(chain_of(&text), [(3, 3)]);
    }
}
