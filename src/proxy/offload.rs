//! Heavy policy work off the listener shards. A shard serves every
//! connection it accepted on one thread, so a large body under a detector
//! policy (~10 µs per KB) would hold up every other crossing on that shard,
//! light `pass` ones included. Bodies at or over [`OFFLOAD_MIN`] bytes, and
//! compressed ones (their size says nothing of the work), are governed by a
//! fixed set of policy threads (one per worker); the shard goes on serving
//! meanwhile. Jobs wait in one lane per integration and the threads take
//! the lanes in turn (first come, first served within a lane), so one
//! integration sending huge bodies delays another's by at most one job per
//! thread, not by its whole backlog. Smaller bodies stay inline, where the
//! hand-over would cost more than the work.

use prometheus::{IntCounter, IntGauge};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Bodies from this size on are governed by the policy threads.
pub const OFFLOAD_MIN: usize = 4 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// The pool's metric series.
#[derive(Clone)]
pub struct PoolMeters {
    /// Jobs handed to the policy threads.
    pub jobs: IntCounter,
    /// Jobs waiting for a policy thread.
    pub waiting: IntGauge,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    /// Lanes with jobs, in turn order: (lane, its jobs in arrival order).
    lanes: VecDeque<(usize, VecDeque<Job>)>,
    closed: bool,
}

impl State {
    fn push(&mut self, lane: usize, job: Job) {
        match self.lanes.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, jobs)) => jobs.push_back(job),
            None => self.lanes.push_back((lane, VecDeque::from([job]))),
        }
    }

    /// The next lane's first job; the lane goes to the back of the turn order.
    fn pop(&mut self) -> Option<Job> {
        let (lane, mut jobs) = self.lanes.pop_front()?;
        let job = jobs.pop_front();
        if !jobs.is_empty() {
            self.lanes.push_back((lane, jobs));
        }
        job
    }

    fn waiting(&self) -> usize {
        self.lanes.iter().map(|(_, jobs)| jobs.len()).sum()
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and panics are caught: never poisoned.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The policy threads. Dropping it lets them finish their current job and
/// exit; queued jobs are dropped, which their waiters see as a failure.
pub struct Offload {
    queue: Arc<Queue>,
    meters: PoolMeters,
}

impl Offload {
    /// Starts `threads` policy threads (at least one).
    pub fn start(threads: usize, meters: PoolMeters) -> std::io::Result<Offload> {
        // Built first, so a failed spawn drops it and stops the others.
        let pool = Offload {
            queue: Arc::new(Queue::default()),
            meters,
        };
        for n in 0..threads.max(1) {
            let (queue, waiting) = (pool.queue.clone(), pool.meters.waiting.clone());
            std::thread::Builder::new()
                .name(format!("customs-policy-{n}"))
                .spawn(move || work(&queue, &waiting))?;
        }
        Ok(pool)
    }

    /// Runs `job` on a policy thread, queued in `lane` (the integration's
    /// index); `None` when it panicked or was dropped unrun. A job whose
    /// waiter is gone by its turn is skipped.
    pub async fn run<T, F>(&self, lane: usize, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(job());
            }
        });
        self.queue.lock().push(lane, job);
        self.meters.jobs.inc();
        self.meters.waiting.inc();
        self.queue.ready.notify_one();
        rx.await.ok()
    }
}

impl Drop for Offload {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.queue.lock();
            state.closed = true;
            self.meters.waiting.sub(state.waiting() as i64);
            std::mem::take(&mut state.lanes)
        };
        drop(dropped);
        self.queue.ready.notify_all();
    }
}

fn work(queue: &Queue, waiting: &IntGauge) {
    loop {
        let job = {
            let mut state = queue.lock();
            loop {
                if state.closed {
                    return;
                }
                if let Some(job) = state.pop() {
                    waiting.dec();
                    break job;
                }
                state = queue
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A panicking job fails its own waiter (it sees `None`), never the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a policy job panicked; its crossing is refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn meters() -> PoolMeters {
        PoolMeters {
            jobs: IntCounter::new("jobs", "test").expect("counter"),
            waiting: IntGauge::new("waiting", "test").expect("gauge"),
        }
    }

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        let meters = meters();
        let pool = Offload::start(2, meters.clone()).expect("threads");
        let name = pool.run(0, || std::thread::current().name().map(str::to_owned));
        let name = name.await.flatten().expect("a named thread");
        assert!(name.starts_with("customs-policy-"), "{name}");
        let panicked: Option<()> = pool.run(0, || panic!("policy bug")).await;
        assert_eq!(panicked, None);
        for n in 0..8u64 {
            assert_eq!(pool.run(0, move || n * 2).await, Some(n * 2));
        }
        assert_eq!((meters.jobs.get(), meters.waiting.get()), (10, 0));
    }

    /// A caller that leaves while its job waits costs no policy work.
    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        let meters = meters();
        let pool = Offload::start(1, meters.clone()).expect("threads");
        let (started, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        let (started_tx, started_rx) = started;
        let (release_tx, release_rx) = release;
        let blocker = pool.run(0, move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        });
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::join!(blocker, async {
            started_rx.recv().expect("the blocker runs");
            // Polled once (queued behind the blocker), then abandoned.
            tokio::select! {
                biased;
                _ = pool.run(0, move || flag.store(true, Ordering::SeqCst)) => {
                    panic!("ran while the only thread was blocked")
                }
                () = std::future::ready(()) => {}
            }
            assert_eq!(meters.waiting.get(), 1);
            release_tx.send(()).expect("release");
        });
        // The queue is first come, first served: this one runs after the skipped one.
        assert_eq!(pool.run(0, || 7).await, Some(7));
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job never ran");
        assert_eq!(meters.waiting.get(), 0);
    }

    /// One lane's backlog does not hold up another lane's job.
    #[tokio::test]
    async fn lanes_take_turns() {
        let pool = Offload::start(1, meters()).expect("threads");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let order = Arc::new(Mutex::new(Vec::new()));
        // In a lane of its own, so the turn order below is the same whether the thread
        // took it before or after the others were queued.
        let blocker = pool.run(9, move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        });
        let job = |lane: usize, name: &'static str| {
            let order = order.clone();
            pool.run(lane, move || order.lock().expect("order").push(name))
        };
        let (a1, a2, a3, b1) = (job(0, "a1"), job(0, "a2"), job(0, "a3"), job(1, "b1"));
        tokio::join!(blocker, a1, a2, a3, b1, async {
            started_rx.recv().expect("the blocker runs");
            release_tx.send(()).expect("release");
        });
        assert_eq!(*order.lock().expect("order"), ["a1", "b1", "a2", "a3"]);
    }
}
