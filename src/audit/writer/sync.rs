//! The background task: once per [`SYNC_EVERY`] it checks the log file is
//! still there and `fsync`s what was written, beside the lock.

use super::blocking::blocking;
use super::health::Shared;
use super::log::Log;
use super::{SYNC_EVERY, lock};
use std::sync::{Arc, Mutex, Weak};

/// Once per [`SYNC_EVERY`]: checks the file is still there and `fsync`s
/// what was written since the last sync. Holds only a weak handle, so it
/// never keeps the log open.
pub(super) async fn keep(log: Weak<Mutex<Option<Log>>>, shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(SYNC_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.closing.notified() => return,
        }
        let Some(log) = log.upgrade() else { return };
        blocking(|| sync_beside(&log));
    }
}

/// Checks the file, then `fsync`s it through a second handle with the lock
/// released, so records go on being written meanwhile (outputs without such
/// a handle sync under the lock).
pub(super) fn sync_beside(log: &Mutex<Option<Log>>) {
    let handle = {
        let mut guard = lock(log);
        let Some(log) = guard.as_mut() else { return };
        log.check_file();
        if !log.sync_pending() {
            return;
        }
        match log.out.sync_handle() {
            Some(handle) => {
                // Records written from here on are the next sync's.
                log.unsynced = false;
                handle
            }
            None => {
                log.sync();
                return;
            }
        }
    };
    let result = handle.and_then(|file| file.sync_data());
    if let Some(log) = lock(log).as_mut() {
        log.synced(result);
    }
}
