//! The credential customs injects upstream, read from its secret files off the serving
//! threads: a crossing takes the value last read, and a read older than a second starts a
//! fresh one on a blocking thread, so a rotated secret is picked up without a restart and a
//! stuck file (a FIFO, a hung network mount) never stalls a shard. A secret file being
//! written in place keeps the value read before until it has settled, like the reload
//! watcher (see [`super::reload`]); a replaced or deleted file is read at once.

use super::reload;
use crate::config::secret::SecretTemplate;
use http::HeaderValue;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a secret file's content is trusted before it is read again.
const REFRESH: Duration = Duration::from_secs(1);
/// A read that has not finished after this long makes the credential unavailable.
const STUCK: Duration = Duration::from_secs(5);

/// What a read gave: the header value, or why there is none.
type Value = Result<HeaderValue, String>;

/// One integration's injected credential.
pub struct Credential {
    template: SecretTemplate,
    settle: Duration,
    state: Arc<Mutex<State>>,
}

struct State {
    value: Value,
    read_at: Instant,
    /// The secret files' inodes when `value` was read.
    inodes: Vec<Option<u64>>,
    /// When the read in flight started.
    reading: Option<Instant>,
}

impl Credential {
    /// Reads the secret now (the caller is off the serving threads: start or
    /// reload); later reads wait for in-place writes to settle for `settle`.
    pub fn new(template: &SecretTemplate, settle: Duration) -> Credential {
        let state = State {
            inodes: inodes(template),
            value: read(template),
            read_at: Instant::now(),
            reading: None,
        };
        Credential {
            template: template.clone(),
            settle,
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The value last read; starts a fresh read when it is over a second old.
    pub fn current(&self) -> Value {
        let mut state = self.state.lock().map_err(|_| "credential cache poisoned")?;
        let now = Instant::now();
        match state.reading {
            Some(since) if now.duration_since(since) >= STUCK => {
                return Err("the secret file could not be read in time".into());
            }
            None if now.duration_since(state.read_at) >= REFRESH => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    state.reading = Some(now);
                    let (template, shared) = (self.template.clone(), self.state.clone());
                    let (settle, before) = (self.settle, state.inodes.clone());
                    handle.spawn_blocking(move || {
                        let fresh = refresh(&template, settle, &before);
                        if let Ok(mut state) = shared.lock() {
                            if let Some((value, inodes)) = fresh {
                                state.value = value;
                                state.inodes = inodes;
                            }
                            state.read_at = Instant::now();
                            state.reading = None;
                        }
                    });
                }
            }
            _ => {}
        }
        state.value.clone()
    }
}

/// A fresh value and the inodes it was read from; `None` while a file that
/// is still the inode read `before` was modified less than `settle` ago.
fn refresh(
    template: &SecretTemplate,
    settle: Duration,
    before: &[Option<u64>],
) -> Option<(Value, Vec<Option<u64>>)> {
    let files: Vec<&Path> = template.files().collect();
    if reload::written_in_place_since(&files, before, settle) {
        return None;
    }
    let inodes = reload::inodes(&files);
    Some((read(template), inodes))
}

fn inodes(template: &SecretTemplate) -> Vec<Option<u64>> {
    reload::inodes(&template.files().collect::<Vec<_>>())
}

fn read(template: &SecretTemplate) -> Value {
    let text = template.resolve().map_err(|e| e.to_string())?;
    HeaderValue::from_str(&text).map_err(|_| "credential is not a valid header value".into())
}
