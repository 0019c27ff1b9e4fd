use super::sync::sync_beside;
use super::*;
use crate::audit::chain;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
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
