//! Recent activity per integration, for the workbench page: crossings and
//! crossings not forwarded per minute over the last hour, and the last
//! signals raised. From customs' own counting, in memory, bounded (an hour
//! of minutes per integration, [`MAX_RECENT`] signals in all).

use serde::Serialize;
use std::collections::VecDeque;

/// Minutes kept per integration.
pub const MINUTES: usize = 60;
/// Signals kept, all integrations together.
pub const MAX_RECENT: usize = 200;

/// One integration's last hour, one slot per minute.
#[derive(Debug, Clone, Default)]
pub(super) struct Hour {
    /// Minute (since the process started) of the newest slot.
    newest: u64,
    /// `[crossings, not forwarded]` per minute, newest last.
    slots: VecDeque<[u64; 2]>,
}

impl Hour {
    /// Counts one crossing in `minute`.
    pub(super) fn count(&mut self, minute: u64, forwarded: bool) {
        self.advance(minute);
        if let Some(slot) = self.slots.back_mut() {
            slot[0] += 1;
            slot[1] += u64::from(!forwarded);
        }
    }

    fn advance(&mut self, minute: u64) {
        if self.slots.is_empty() {
            self.newest = minute;
            self.slots.push_back([0; 2]);
            return;
        }
        let gap = minute.saturating_sub(self.newest).min(MINUTES as u64);
        for _ in 0..gap {
            self.slots.push_back([0; 2]);
        }
        self.newest = self.newest.max(minute);
        while self.slots.len() > MINUTES {
            self.slots.pop_front();
        }
    }

    /// The last hour as of `minute`, oldest first, always [`MINUTES`] slots.
    pub(super) fn as_of(&self, minute: u64) -> Vec<[u64; 2]> {
        let mut copy = self.clone();
        copy.advance(minute);
        let mut out = vec![[0; 2]; MINUTES - copy.slots.len().min(MINUTES)];
        out.extend(copy.slots);
        out
    }
}

/// A signal raised, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// When (RFC 3339).
    pub ts: String,
    /// The signal kind.
    pub kind: &'static str,
    /// The integration concerned.
    pub integration: Option<String>,
}

/// One integration's activity, as served at `/ui/api/activity`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Integration name.
    pub integration: String,
    /// `[crossings, not forwarded]` per minute over the last hour, oldest first.
    pub minutes: Vec<[u64; 2]>,
    /// Signals raised for it, newest first.
    pub signals: Vec<Recent>,
}

/// Keeps the newest [`MAX_RECENT`] signals.
pub(super) fn remember(recent: &mut VecDeque<Recent>, r: Recent) {
    if recent.len() >= MAX_RECENT {
        recent.pop_front();
    }
    recent.push_back(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_minutes_oldest_first_gaps_as_zeros() {
        let mut h = Hour::default();
        h.count(10, true);
        h.count(10, false);
        h.count(12, true);
        let hour = h.as_of(12);
        assert_eq!(hour.len(), MINUTES);
        assert_eq!(&hour[MINUTES - 3..], &[[2, 1], [0, 0], [1, 0]]);
        let later = h.as_of(12 + MINUTES as u64);
        assert!(
            later.iter().all(|s| *s == [0, 0]),
            "an hour later all is gone"
        );
        h.count(500, true);
        assert_eq!(h.as_of(500)[MINUTES - 1], [1, 0]);
        assert_eq!(h.as_of(500).iter().map(|s| s[0]).sum::<u64>(), 1);
    }
}
