//! The file sink: appending, cutting back a torn write, rotating by size
//! and noticing a file removed or replaced.

use super::AuditError;
use super::blocking::blocking;
use super::log::Head;
use super::output::Output;
use super::resume::{first_link, last_link, newest_rotated_head};
use crate::audit::chain;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A log file, rotated by size.
pub(super) struct FileOutput {
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
    pub(super) fn open(path: PathBuf) -> Result<(Self, Head), AuditError> {
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
