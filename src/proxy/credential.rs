//! The credential customs injects upstream, read from its secret files off the serving
//! threads: a crossing takes the value last read, and a read older than a second starts a
//! fresh one on a blocking thread, so a rotated secret is picked up without a restart and a
//! stuck file (a FIFO, a hung network mount) never stalls a shard.

use crate::config::secret::SecretTemplate;
use http::HeaderValue;
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
    state: Arc<Mutex<State>>,
}

struct State {
    value: Value,
    read_at: Instant,
    /// When the read in flight started.
    reading: Option<Instant>,
}

impl Credential {
    /// Reads the secret now (the caller is off the serving threads: start or reload).
    pub fn new(template: &SecretTemplate) -> Credential {
        let state = State {
            value: read(template),
            read_at: Instant::now(),
            reading: None,
        };
        Credential {
            template: template.clone(),
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
                    handle.spawn_blocking(move || {
                        let value = read(&template);
                        if let Ok(mut state) = shared.lock() {
                            *state = State {
                                value,
                                read_at: Instant::now(),
                                reading: None,
                            };
                        }
                    });
                }
            }
            _ => {}
        }
        state.value.clone()
    }
}

fn read(template: &SecretTemplate) -> Value {
    let text = template.resolve().map_err(|e| e.to_string())?;
    HeaderValue::from_str(&text).map_err(|_| "credential is not a valid header value".into())
}
