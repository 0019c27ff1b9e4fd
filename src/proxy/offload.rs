//! Heavy policy work off the listener shards. A shard serves every
//! connection it accepted on one thread, so a large body under a detector
//! policy (~10 µs per KB) would hold up every other crossing on that shard,
//! light `pass` ones included. Bodies at or over [`OFFLOAD_MIN`] bytes are
//! governed by a fixed set of policy threads (one per worker) that take jobs
//! first come, first served; the shard goes on serving meanwhile. Smaller
//! bodies stay inline, where the hand-over would cost more than the work.

use prometheus::IntGauge;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Bodies from this size on are governed by the policy threads.
pub const OFFLOAD_MIN: usize = 4 * 1024;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
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
    waiting: IntGauge,
}

impl Offload {
    /// Starts `threads` policy threads (at least one); `waiting` tracks
    /// the jobs queued for them.
    pub fn start(threads: usize, waiting: IntGauge) -> std::io::Result<Offload> {
        let queue = Arc::new(Queue::default());
        for n in 0..threads.max(1) {
            let (queue, waiting) = (queue.clone(), waiting.clone());
            std::thread::Builder::new()
                .name(format!("customs-policy-{n}"))
                .spawn(move || work(&queue, &waiting))?;
        }
        Ok(Offload { queue, waiting })
    }

    /// Runs `job` on a policy thread; `None` when it panicked or the pool
    /// is closed. A job whose waiter is gone by its turn is skipped.
    pub async fn run<T, F>(&self, job: F) -> Option<T>
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
        {
            let mut state = self.queue.lock();
            if state.closed {
                return None;
            }
            state.jobs.push_back(job);
            self.waiting.inc();
        }
        self.queue.ready.notify_one();
        rx.await.ok()
    }
}

impl Drop for Offload {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.queue.lock();
            state.closed = true;
            std::mem::take(&mut state.jobs)
        };
        self.waiting.sub(dropped.len() as i64);
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
                if let Some(job) = state.jobs.pop_front() {
                    waiting.dec();
                    break job;
                }
                state = queue
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A panicking policy fails its own crossing (the waiter sees `None`
        // and refuses it), never the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a policy job panicked; its crossing is refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        let waiting = IntGauge::new("waiting", "test").expect("gauge");
        let pool = Offload::start(2, waiting.clone()).expect("threads");
        let name = pool.run(|| std::thread::current().name().map(str::to_owned));
        let name = name.await.flatten().expect("a named thread");
        assert!(name.starts_with("customs-policy-"), "{name}");
        let panicked: Option<()> = pool.run(|| panic!("policy bug")).await;
        assert_eq!(panicked, None);
        for n in 0..8u64 {
            assert_eq!(pool.run(move || n * 2).await, Some(n * 2));
        }
        assert_eq!(waiting.get(), 0);
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_work() {
        let pool = Offload::start(1, IntGauge::new("w", "test").expect("gauge")).expect("threads");
        pool.queue.lock().closed = true;
        assert_eq!(pool.run(|| 1).await, None);
    }
}
