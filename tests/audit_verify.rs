//! The crossing log at library level (the CLI `customs audit verify` wraps
//! `audit::verify`): a log written by the `Auditor` across rotated files
//! verifies, and each kind of tampering is reported at the right file and
//! line. Also: the writer's behaviour when the log cannot be written.

use customs::audit::chain::{self, Fault};
use customs::audit::{self, Crossing, Direction, Event, VerifyError};
use customs::config::{AuditSettings, AuditSink, OnFailure};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// Crossing lines are ~700 bytes, so this gives three per file.
const ROTATE: u64 = 2400;
const LOG: &str = "crossings.jsonl";

fn settings(path: &Path, rotate_bytes: u64) -> AuditSettings {
    AuditSettings {
        sink: AuditSink::File(path.to_path_buf()),
        rotate_bytes,
        on_failure: OnFailure::Refuse,
    }
}

fn crossing(i: u64) -> Crossing {
    Crossing {
        ts: audit::timestamp(),
        request_id: format!("req-{i:04}"),
        integration: Some("acme-soc".into()),
        route: Some("incidents-read".into()),
        client: Some("servicenow-prod".into()),
        auth: Some("api_key"),
        method: "GET".into(),
        path: format!("/api/incidents/{i}"),
        status: 200,
        upstream_status: Some(200),
        outcome: "forwarded",
        mode: "enforce",
        reason: None,
        request: None,
        response: Some(Direction {
            policy: "incident-inbound".into(),
            policy_sha256: Some("ab".repeat(32)),
            bytes_in: 100 + i,
            bytes_out: 90,
            actions: BTreeMap::from([("card".into(), 1)]),
            unknown_fields: vec!["$.incidents[*].extra".into()],
            ..Direction::default()
        }),
        duration_us: 1000 + i,
    }
}

/// Writes crossings `from..to` from concurrent tasks, plus one event, then
/// closes the log by dropping the last handle.
async fn write_log(path: &Path, from: u64, to: u64) -> u64 {
    let (auditor, task) = audit::start(settings(path, ROTATE)).await.expect("start");
    let mut writes = tokio::task::JoinSet::new();
    for i in from..to {
        let auditor = auditor.clone();
        writes.spawn(async move { auditor.record(&crossing(i)).await });
    }
    auditor
        .event(Event::new("reload", None).with("result", "ok"))
        .await
        .expect("event queued");
    while let Some(done) = writes.join_next().await {
        done.expect("task").expect("record written");
    }
    drop(auditor);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the sync task ends when the last Auditor is dropped")
        .expect("sync task");
    to - from + 1
}

/// The files as the shell glob `crossings*.jsonl` lists them (byte order).
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().expect("name").to_string_lossy();
            name.starts_with("crossings") && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    files
}

/// A log of 30 crossings and 1 event over several files.
async fn fixture() -> (TempDir, Vec<PathBuf>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = write_log(&dir.path().join(LOG), 0, 30).await;
    let files = log_files(dir.path());
    assert!(
        files.len() >= 5 && files[..4].iter().all(|f| lines(f).len() >= 3),
        "expected at least three lines per rotated file: {files:?}"
    );
    (dir, files, n)
}

/// Copies the files into a fresh directory, to tamper with.
fn copy(files: &[PathBuf]) -> (TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let copies = files
        .iter()
        .map(|f| {
            let to = dir.path().join(f.file_name().expect("name"));
            fs::copy(f, &to).expect("copy");
            to
        })
        .collect();
    (dir, copies)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .split_inclusive('\n')
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.concat()).expect("write");
}

/// Asserts verify fails at `file`:`line` and returns the fault.
fn broken_at(files: &[PathBuf], file: &Path, line: usize) -> Fault {
    let err: VerifyError = audit::verify(files).expect_err("tampering detected");
    assert_eq!((err.file.as_path(), err.line), (file, line), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:{line}: ", file.display())),
        "{err}"
    );
    err.reason
}

#[tokio::test]
async fn library_verify_accepts_a_rotated_log_written_by_the_auditor() {
    let (_dir, files, n) = fixture().await;
    assert_eq!(audit::verify(&files), Ok(n));
    let (live, rotated) = files.split_last().expect("files");
    assert_eq!(
        live.file_name().expect("name"),
        LOG,
        "the glob lists the live file last"
    );
    for file in rotated {
        let size = fs::metadata(file).expect("meta").len();
        assert!(size <= ROTATE, "{} is {size} bytes", file.display());
        let first: serde_json::Value = serde_json::from_str(&lines(file)[0]).expect("json");
        let seq = first["seq"].as_u64().expect("seq");
        assert_eq!(file, &chain::rotated_name(live, seq), "named by first seq");
    }
    let summary = audit::verify_summary(&files).expect("intact");
    assert_eq!((summary.first_seq, summary.last_seq), (Some(1), Some(n)));
    let all: String = files.iter().flat_map(|f| lines(f)).collect();
    assert_eq!(
        all.matches(r#""event":"reload""#).count(),
        1,
        "events share the chain"
    );
    assert!(!all.contains("\n\n"));
}

#[tokio::test]
async fn library_verify_accepts_a_log_resumed_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LOG);
    let first = write_log(&path, 0, 4).await;
    let second = write_log(&path, 4, 9).await;
    let summary = audit::verify_summary(&log_files(dir.path())).expect("intact");
    assert_eq!(summary.records, first + second);
    assert_eq!(
        (summary.first_seq, summary.last_seq),
        (Some(1), Some(first + second))
    );
}

#[tokio::test]
async fn library_verify_accepts_a_log_whose_oldest_files_were_archived() {
    let (_dir, files, n) = fixture().await;
    let archived = (lines(&files[0]).len() + lines(&files[1]).len()) as u64;
    let summary = audit::verify_summary(&files[2..]).expect("anchored at the first given record");
    assert_eq!(summary.records, n - archived);
    assert_eq!(summary.first_seq, Some(archived + 1));
}

#[tokio::test]
async fn library_verify_detects_an_altered_field() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut l = lines(&files[1]);
    assert!(l[1].contains(r#""status":200"#));
    l[1] = l[1].replacen(r#""status":200"#, r#""status":403"#, 1);
    write_lines(&files[1], &l);
    assert_eq!(broken_at(&files, &files[1], 2), Fault::HashMismatch);
}

#[tokio::test]
async fn library_verify_detects_an_altered_record_rehashed_in_place() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut l = lines(&files[1]);
    l[1] = reseal_with(&l[1], "path", "/api/elsewhere");
    write_lines(&files[1], &l);
    assert_eq!(
        broken_at(&files, &files[1], 3),
        Fault::Prev,
        "the next record still names the old hash"
    );
}

/// Changes one field and recomputes the line's own hash, keeping seq/prev.
fn reseal_with(line: &str, key: &str, value: &str) -> String {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).expect("json");
    let seq = map
        .shift_remove("seq")
        .and_then(|v| v.as_u64())
        .expect("seq");
    let prev = map
        .shift_remove("prev")
        .expect("prev")
        .as_str()
        .expect("hex")
        .to_owned();
    map.shift_remove("hash");
    map.insert(key.into(), value.into());
    let fields = serde_json::to_vec(&map).expect("serialise");
    let sealed = chain::seal(seq, &prev, &fields).expect("seal");
    String::from_utf8(sealed.line).expect("utf-8")
}

#[tokio::test]
async fn library_verify_detects_a_removed_record() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut l = lines(&files[1]);
    l.remove(1);
    write_lines(&files[1], &l);
    assert!(matches!(broken_at(&files, &files[1], 2), Fault::Seq { .. }));
}

#[tokio::test]
async fn library_verify_detects_an_inserted_copy_of_a_record() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut l = lines(&files[1]);
    let copied = l[0].clone();
    l.insert(2, copied);
    write_lines(&files[1], &l);
    assert!(matches!(broken_at(&files, &files[1], 3), Fault::Seq { .. }));
}

#[tokio::test]
async fn library_verify_detects_two_swapped_records() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut l = lines(&files[1]);
    l.swap(1, 2);
    write_lines(&files[1], &l);
    assert!(matches!(broken_at(&files, &files[1], 2), Fault::Seq { .. }));
}

#[tokio::test]
async fn library_verify_detects_a_truncated_last_line() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let live = &files[files.len() - 1];
    let mut l = lines(live);
    let last = l.len();
    let half = l[last - 1].len() / 2;
    l[last - 1].truncate(half);
    write_lines(live, &l);
    assert_eq!(broken_at(&files, live, last), Fault::Truncated);
}

#[tokio::test]
async fn library_verify_detects_a_record_moved_to_another_file() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut from = lines(&files[1]);
    let mut to = lines(&files[3]);
    to.insert(0, from.remove(1));
    write_lines(&files[1], &from);
    write_lines(&files[3], &to);
    assert!(matches!(broken_at(&files, &files[1], 2), Fault::Seq { .. }));
}

#[tokio::test]
async fn library_verify_ignores_file_boundaries_when_the_sequence_is_unchanged() {
    // Moving a file's last record to the start of the next file keeps every
    // record in its place in the chain: nothing was altered or reordered.
    let (_dir, files, n) = fixture().await;
    let (_copy, files) = copy(&files);
    let mut from = lines(&files[1]);
    let mut to = lines(&files[2]);
    to.insert(0, from.pop().expect("a line"));
    write_lines(&files[1], &from);
    write_lines(&files[2], &to);
    assert_eq!(audit::verify(&files), Ok(n));
}

#[tokio::test]
async fn library_verify_detects_files_given_out_of_order_or_missing() {
    let (_dir, files, _) = fixture().await;
    let mut swapped = files.clone();
    swapped.swap(1, 2);
    assert!(matches!(
        broken_at(&swapped, &files[2], 1),
        Fault::Seq { .. }
    ));
    let mut gap = files.clone();
    gap.remove(2);
    assert!(matches!(broken_at(&gap, &files[3], 1), Fault::Seq { .. }));
}

#[tokio::test]
async fn library_verify_reports_an_unreadable_file() {
    let (dir, mut files, _) = fixture().await;
    files.insert(1, dir.path().join("absent.jsonl"));
    let err = audit::verify(&files).expect_err("missing file");
    assert_eq!((err.file.as_path(), err.line), (files[1].as_path(), 0));
    assert!(matches!(err.reason, Fault::Unreadable(_)), "{err}");
}

#[tokio::test]
async fn library_start_fails_when_the_log_directory_is_a_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("audit");
    fs::write(&not_a_dir, b"").expect("file");
    let err = audit::start(settings(&not_a_dir.join(LOG), ROTATE))
        .await
        .expect_err("start fails");
    assert!(matches!(err, audit::AuditError::Open { .. }), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn library_start_fails_in_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).expect("dir");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).expect("chmod");
    if fs::write(ro.join("probe"), b"").is_ok() {
        // Root (CAP_DAC_OVERRIDE) ignores permissions; the regular-file
        // parent test above covers `start` failing for root.
        eprintln!("skipped: running with privileges that ignore directory permissions");
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).expect("chmod back");
        return;
    }
    let result = audit::start(settings(&ro.join(LOG), ROTATE)).await;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).expect("chmod back");
    let err = result.expect_err("start fails");
    assert!(matches!(err, audit::AuditError::Open { .. }), "{err}");
}

#[tokio::test]
async fn library_record_fails_and_auditor_is_unhealthy_when_writes_fail() {
    // /dev/full opens but every write fails with ENOSPC, for root too.
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let (auditor, task) = audit::start(settings(full, ROTATE)).await.expect("opens");
    assert!(auditor.healthy());
    let err = auditor.record(&crossing(1)).await.expect_err("write fails");
    assert!(matches!(err, audit::AuditError::Write(_)), "{err}");
    assert!(!auditor.healthy());
    assert_eq!((auditor.records_written(), auditor.failures()), (0, 1));
    let err = auditor
        .record(&crossing(2))
        .await
        .expect_err("still failing");
    assert!(matches!(err, audit::AuditError::Write(_)), "{err}");
    assert_eq!(auditor.failures(), 2);
    drop(auditor);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("writer exits")
        .expect("writer task");
}

#[tokio::test]
async fn cli_verify_reports_an_overlong_line_without_holding_it() {
    let (_dir, files, _) = fixture().await;
    let (_copy, files) = copy(&files);
    let live = &files[files.len() - 1];
    let mut l = lines(live);
    l.insert(1, "x".repeat(chain::MAX_LINE_BYTES * 8));
    write_lines(live, &l);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["audit", "verify"])
        .args(&files)
        .output()
        .expect("run audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let want = format!("{}:2: line longer than", live.display());
    assert!(text.contains(&want), "{text}");
    assert!(text.len() < 1000, "the report does not echo the line");
}
