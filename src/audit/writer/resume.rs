//! Restart: where the chain continues, from the last line of the live file
//! or of the newest rotated file.

use super::AuditError;
use super::log::Head;
use crate::audit::chain::{self, Fault};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The chain's head from the newest rotated file next to `path`, or genesis.
pub(super) fn newest_rotated_head(path: &Path) -> Result<Head, AuditError> {
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
pub(super) fn last_link(mut file: &File, len: u64) -> Result<chain::Link, Fault> {
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
pub(super) fn first_link(mut file: &File) -> Result<chain::Link, Fault> {
    let unreadable = |e: io::Error| Fault::Unreadable(e.to_string());
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut line = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut line)
        .map_err(unreadable)?;
    let line = line.strip_suffix(b"\n").ok_or(Fault::Truncated)?;
    chain::check_line(line)
}
