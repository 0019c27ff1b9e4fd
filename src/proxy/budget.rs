//! One budget for the body bytes all crossings hold in memory at once
//! (`limits.max_buffered_bytes`): governed bodies are read whole, so without it memory
//! grows with the number of callers (10,000 connections × 10 MiB). A body charges the
//! budget as its bytes arrive; when there is no room, it waits briefly for some, then the
//! crossing is refused (503 `overloaded`) instead of the host swapping or the proxy dying.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a body waits for room before its crossing is refused.
pub const WAIT: Duration = Duration::from_secs(2);

/// The shared budget, in bytes (kept across reloads; its size is read at start).
#[derive(Debug)]
pub struct Budget {
    room: Arc<Semaphore>,
    wait: Duration,
}

/// Bytes taken from the budget, given back when dropped.
#[derive(Debug, Default)]
pub struct Charge(Option<OwnedSemaphorePermit>);

/// The budget had no room within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize, wait: Duration) -> Budget {
        Budget {
            room: Arc::new(Semaphore::new(bytes.clamp(1, Semaphore::MAX_PERMITS))),
            wait,
        }
    }

    /// Adds `bytes` to `charge`, waiting up to the budget's wait for room.
    pub async fn charge(&self, charge: &mut Charge, bytes: usize) -> Result<(), Exhausted> {
        let Ok(n) = u32::try_from(bytes) else {
            return Err(Exhausted);
        };
        if n == 0 {
            return Ok(());
        }
        let taken = tokio::time::timeout(self.wait, self.room.clone().acquire_many_owned(n))
            .await
            .map_err(|_| Exhausted)?
            .map_err(|_| Exhausted)?;
        match &mut charge.0 {
            Some(held) => held.merge(taken),
            None => charge.0 = Some(taken),
        }
        Ok(())
    }

    /// Bytes free now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_wait_for_room_and_give_it_back_when_dropped() {
        let budget = Budget::new(100, Duration::from_millis(20));
        let mut first = Charge::default();
        budget.charge(&mut first, 60).await.expect("room");
        budget.charge(&mut first, 40).await.expect("room");
        let mut second = Charge::default();
        assert_eq!(budget.charge(&mut second, 1).await, Err(Exhausted));
        drop(first);
        assert_eq!(budget.available(), 100);
        budget.charge(&mut second, 100).await.expect("room again");
        assert_eq!(
            budget.charge(&mut Charge::default(), usize::MAX).await,
            Err(Exhausted)
        );
    }
}
