//! Reading the files customs is configured from: only regular files, with a size limit, and
//! never waiting on a writer. A FIFO, a socket or `/dev/zero` put in place of a config,
//! policy, certificate or secret file is an error, not a hang or an endless read.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest config or policy file read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Largest certificate, key or CA bundle read.
pub const MAX_PEM_BYTES: u64 = 4 << 20;
/// Largest secret file read.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A FIFO, device, socket or directory.
    #[error("not a regular file")]
    NotRegular,
    /// Over the limit.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
}

/// The bytes of the regular file at `path` (symlinks followed), at most `limit` of them.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the check: read one byte past the limit to tell.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read_bytes`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|_| ReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "abc").expect("write");
        assert_eq!(read_text(&file, 3).expect("read"), "abc");
        assert!(matches!(
            read_text(&file, 2),
            Err(ReadError::TooLarge { limit: 2 })
        ));
        assert!(matches!(
            read_text(dir.path(), 10),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_bytes(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular)
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(matches!(read_text(&fifo, 10), Err(ReadError::NotRegular)));
        }
        std::fs::write(&file, [0xff, 0xfe]).expect("write");
        assert!(matches!(read_text(&file, 10), Err(ReadError::NotText)));
    }
}
