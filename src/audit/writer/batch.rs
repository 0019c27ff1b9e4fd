//! Group commit on a listener shard: the records of the crossings that
//! finish in the same turn of a single-threaded runtime go out in one
//! `write`, about a third of the system calls under load.
//!
//! The first record of a turn leads: it yields once, so the shard's other
//! ready tasks queue theirs, then seals and writes them all and acks each.
//! It yields by waking itself, which puts it behind the tasks already ready
//! on the shard; `tokio::task::yield_now` would defer it past a poll of the
//! I/O driver, one more `epoll_wait` per batch.
//! Everything happens on one thread, so acking costs no system call. A
//! leader dropped while it waits (its crossing cancelled) still writes the
//! batch, from its guard. Tasks of a multi-threaded runtime may move between
//! threads at the yield, so they write at once instead ([`available`]).

use super::blocking::runtime_flavor;
use super::log::Log;
use super::{AuditError, write_now};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::oneshot;

/// A record waiting for this thread's batch write.
struct Queued {
    log: Arc<Mutex<Option<Log>>>,
    fields: Vec<u8>,
    ack: oneshot::Sender<Result<(), AuditError>>,
}

/// This thread's batch: whether a leader is waiting, and what it will write.
#[derive(Default)]
struct Pending {
    led: bool,
    queued: Vec<Queued>,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// Whether the caller runs on a single-threaded runtime, where a batch
/// stays on its thread.
pub(super) fn available() -> bool {
    runtime_flavor() == Some(RuntimeFlavor::CurrentThread)
}

/// Queues `fields` for this turn's batch write and waits for its result.
pub(super) async fn append(
    log: &Arc<Mutex<Option<Log>>>,
    fields: Vec<u8>,
) -> Result<(), AuditError> {
    let (ack, done) = oneshot::channel();
    let leads = PENDING.with_borrow_mut(|p| {
        p.queued.push(Queued {
            log: Arc::clone(log),
            fields,
            ack,
        });
        !std::mem::replace(&mut p.led, true)
    });
    if leads {
        let turn = Turn;
        behind_ready_tasks().await;
        drop(turn);
    }
    done.await.map_err(|_| AuditError::Closed)?
}

/// Returns once the tasks ready on this thread now have run.
async fn behind_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// Writes the batch when the leader is done waiting, or dropped.
struct Turn;

impl Drop for Turn {
    fn drop(&mut self) {
        let queued = PENDING.with_borrow_mut(|p| {
            p.led = false;
            std::mem::take(&mut p.queued)
        });
        let mut queued = queued.into_iter().peekable();
        // Normally one log; tests run several on one thread.
        while let Some(first) = queued.next() {
            let log = Arc::clone(&first.log);
            let mut group = vec![first];
            while let Some(next) = queued.next_if(|q| Arc::ptr_eq(&q.log, &log)) {
                group.push(next);
            }
            let (fields, acks): (Vec<_>, Vec<_>) =
                group.into_iter().map(|q| (q.fields, q.ack)).unzip();
            for (ack, result) in acks.into_iter().zip(write_now(&log, &fields)) {
                // A caller that went away still has its record written.
                let _ = ack.send(result);
            }
        }
    }
}
