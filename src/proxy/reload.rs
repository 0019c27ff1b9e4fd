//! Live reload: SIGHUP, or a change to the config, a policy or a referenced
//! secret file, builds a complete new [`Runtime`] and swaps it in atomically.
//! In-flight requests finish on the snapshot they started with; a
//! configuration that does not validate never replaces the running one.
//!
//! Changes are found by polling file metadata (mtime, size) twice a second
//! rather than with inotify: it also sees Kubernetes' symlink swaps and works
//! on network filesystems. A change is applied once two polls agree, so a file
//! caught half-written is not loaded.

use super::Runtime;
use super::server::Shared;
use crate::audit::Event;
use crate::config;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::watch;

/// How long a reload may take to read and build the configuration.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often watched files are checked.
const POLL: Duration = Duration::from_millis(500);

/// Reloads on SIGHUP or file changes until `shutdown`. `hup` must be
/// registered before readiness is announced: SIGHUP's default action would
/// otherwise terminate the process. The files are fingerprinted when this
/// is called, not when the task first runs: an edit made right after
/// readiness is a change.
pub fn watch(
    config_path: PathBuf,
    shared: Shared,
    mut hup: Hangup,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let mut loaded = fingerprint(&shared.load().config.watched);
    async move {
        let mut seen = loaded;
        let mut tick = tokio::time::interval(POLL);
        loop {
            let forced = tokio::select! {
                _ = shutdown.changed() => return,
                _ = recv(&mut hup) => true,
                _ = tick.tick() => false,
            };
            let now = fingerprint(&shared.load().config.watched);
            let settled = now == seen;
            seen = now;
            if forced || (settled && now != loaded) {
                reload(
                    &config_path,
                    &shared,
                    if forced { "signal" } else { "file change" },
                )
                .await;
                loaded = fingerprint(&shared.load().config.watched);
                seen = loaded;
            }
        }
    }
}

/// Loads, validates and swaps; on failure keeps the running snapshot.
pub async fn reload(config_path: &Path, shared: &Shared, trigger: &'static str) {
    let current = shared.load_full();
    // Files are read on a blocking thread: a slow or stuck filesystem delays the reload,
    // never the admin listener, signals or other tasks of this runtime.
    let (path, base) = (config_path.to_owned(), current.clone());
    let build = tokio::task::spawn_blocking(move || {
        let c = Arc::new(config::load(&path).map_err(|d| d.to_string())?);
        Runtime::new(
            c,
            base.auditor.clone(),
            base.metrics.clone(),
            base.signals.clone(),
            base.shards(),
            base.offload.clone(),
            base.budget.clone(),
        )
        .map_err(|e| e.to_string())
    });
    let result = match tokio::time::timeout(LOAD_TIMEOUT, build).await {
        Ok(Ok(built)) => built,
        Ok(Err(_)) => Err("building the configuration failed unexpectedly".to_string()),
        Err(_) => Err(format!(
            "reading the configuration took over {}s",
            LOAD_TIMEOUT.as_secs()
        )),
    };
    let event = Event::new("reload", None).with("trigger", trigger);
    match result {
        Ok(rt) => {
            rt.metrics.set_expiries(&rt.config);
            shared.store(Arc::new(rt));
            current.metrics.reloads.with_label_values(&["ok"]).inc();
            tracing::info!(trigger, "Configuration reloaded.");
            let _ = current.auditor.event(event.with("result", "ok")).await;
        }
        Err(reason) => {
            current.metrics.reloads.with_label_values(&["error"]).inc();
            tracing::error!(trigger, %reason, "Reload failed; the running configuration stays.");
            let problems = reason.lines().filter(|l| !l.starts_with("  hint")).count();
            let _ = current
                .auditor
                .event(event.with("result", "error").with("problems", problems))
                .await;
        }
    }
}

/// A hash of the metadata of every watched file (and the entries of watched
/// folders); missing files hash as missing.
fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for path in paths {
        path.hash(&mut h);
        meta(path, &mut h);
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut names: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            for name in names {
                name.hash(&mut h);
                meta(&name, &mut h);
            }
        }
    }
    h.finish()
}

fn meta(path: &Path, h: &mut DefaultHasher) {
    match std::fs::metadata(path) {
        Ok(m) => {
            m.len().hash(h);
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            mtime.hash(h);
        }
        Err(_) => 0u8.hash(h),
    }
}

/// The SIGHUP stream, if the platform gives one.
pub type Hangup = Option<tokio::signal::unix::Signal>;

/// Registers the SIGHUP handler.
pub fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

async fn recv(hup: &mut Hangup) {
    match hup {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
