//! Where sealed lines go ([`Output`]), and the stdout sink.

use super::blocking::blocking;
use std::fs::File;
use std::io::{self, Write};

/// Where sealed lines go.
pub(super) trait Output: Send {
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
pub(super) struct StdoutOutput;

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
