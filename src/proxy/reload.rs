//! Live reload: SIGHUP, or a change to the config, a policy or a referenced
//! secret file, builds a complete new [`Runtime`] and swaps it in atomically.
//! In-flight requests finish on the snapshot they started with; a
//! configuration that does not validate never replaces the running one.
//!
//! Changes are found by polling file metadata twice a second rather than
//! with inotify: it also sees Kubernetes' symlink swaps and works on network
//! filesystems. A file caught half-written must never be loaded, so how a
//! file changed decides when the change applies:
//! - replaced atomically (a new inode under the same name: `rename(2)` of a
//!   finished temporary file, or the kubelet swapping a ConfigMap's `..data`
//!   symlink): at once, the new file is complete by construction;
//! - written in place, created or removed: once no watched file has changed
//!   for `reload.settle`, since `scp`, NFS and configuration management write
//!   a file in several steps, seconds apart.

use super::Runtime;
use super::server::Shared;
use crate::audit::Event;
use crate::config;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a reload may take to read and build the configuration.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often watched files are checked.
const POLL: Duration = Duration::from_millis(500);

/// Reloads on SIGHUP or file changes until `shutdown`. `hup` must be
/// registered before readiness is announced: SIGHUP's default action would
/// otherwise terminate the process. The files are looked at when this is
/// called, not when the task first runs: an edit made right after readiness
/// is a change.
pub fn watch(
    config_path: PathBuf,
    shared: Shared,
    mut hup: Hangup,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let mut loaded = Files::look(&shared.load().config.watched);
    async move {
        // The state last seen while waiting for in-place writes to settle.
        let mut unsettled: Option<(Files, Instant)> = None;
        let mut tick = tokio::time::interval(POLL);
        loop {
            let forced = tokio::select! {
                _ = shutdown.changed() => return,
                _ = recv(&mut hup) => true,
                _ = tick.tick() => false,
            };
            let config = shared.load().config.clone();
            let Some(now) = look_off_thread(&config.watched).await else {
                continue;
            };
            let trigger = if forced {
                "signal"
            } else {
                match loaded.change_to(&now) {
                    Change::None => {
                        unsettled = None;
                        continue;
                    }
                    Change::Replaced => "file replaced",
                    Change::InPlace => {
                        if !settled(&mut unsettled, now.clone(), config.reload_settle) {
                            continue;
                        }
                        "file change"
                    }
                }
            };
            unsettled = None;
            reload(&config_path, &shared, trigger).await;
            // Taken before the load: a write during the load is a change.
            let after = look_off_thread(&shared.load().config.watched).await;
            loaded = match after {
                Some(after) => now.then(after),
                None => now,
            };
        }
    }
}

/// [`Files::look`] on a blocking thread: a hung filesystem delays this
/// poll (bounded), never the runtime's other tasks.
async fn look_off_thread(paths: &[PathBuf]) -> Option<Files> {
    let paths = paths.to_vec();
    let look = tokio::task::spawn_blocking(move || Files::look(&paths));
    match tokio::time::timeout(LOAD_TIMEOUT, look).await {
        Ok(Ok(files)) => Some(files),
        _ => None,
    }
}

/// True once the watched files have looked like `now` for `settle`;
/// otherwise (re)starts the wait.
fn settled(unsettled: &mut Option<(Files, Instant)>, now: Files, settle: Duration) -> bool {
    match unsettled {
        Some((seen, since)) if *seen == now => since.elapsed() >= settle,
        _ => {
            if unsettled.is_none() {
                tracing::info!(
                    settle = ?settle,
                    "Watched files changed in place; reloading once they have not changed for the settle time (replace files atomically to reload at once)."
                );
            }
            *unsettled = Some((now, Instant::now()));
            false
        }
    }
}

/// How the watched files changed since they were loaded.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    None,
    /// Every changed file was replaced whole (new inode, same name).
    Replaced,
    /// Some file was written in place, created or removed.
    InPlace,
}

/// What a watched file looked like: enough to tell an in-place write from
/// an atomic replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Missing,
    Folder,
    File {
        dev: u64,
        ino: u64,
        len: u64,
        mtime: (i64, i64),
    },
}

/// Every watched file, and the policy files of watched folders, as they
/// look now. Symlinks are followed: a `..data` swap gives every file behind
/// it a new inode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Files(BTreeMap<PathBuf, Look>);

impl Files {
    fn look(paths: &[PathBuf]) -> Files {
        let mut files = BTreeMap::new();
        for path in paths {
            let look = look(path);
            if look == Look::Folder {
                for file in crate::policy::policy_files(path).unwrap_or_default() {
                    let look = self::look(&file);
                    files.insert(file, look);
                }
            }
            files.insert(path.clone(), look);
        }
        Files(files)
    }

    fn change_to(&self, now: &Files) -> Change {
        if self == now {
            return Change::None;
        }
        let names = self.0.keys().chain(now.0.keys());
        let changed = names.filter(|n| self.0.get(*n) != now.0.get(*n));
        let mut change = Change::None;
        for name in changed {
            match (self.0.get(name), now.0.get(name)) {
                (Some(Look::File { dev, ino, .. }), Some(Look::File { dev: d, ino: i, .. }))
                    if (dev, ino) != (d, i) =>
                {
                    change = Change::Replaced;
                }
                _ => return Change::InPlace,
            }
        }
        change
    }

    /// `self` (taken before a load) for the files it knows, `after` for
    /// files the new configuration added: a write during the load is still
    /// a change afterwards.
    fn then(self, after: Files) -> Files {
        let before = self.0;
        let merged = after.0.into_iter().map(|(name, look)| {
            let look = before.get(&name).copied().unwrap_or(look);
            (name, look)
        });
        Files(merged.collect())
    }
}

fn look(path: &Path) -> Look {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Look::Folder,
        Ok(m) => Look::File {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        },
        Err(_) => Look::Missing,
    }
}

/// Loads, validates and swaps; on failure keeps the running snapshot.
pub async fn reload(config_path: &Path, shared: &Shared, trigger: &'static str) {
    let current = shared.load_full();
    // Files are read on a blocking thread: a slow or stuck filesystem delays the reload,
    // never the admin listener, signals or other tasks of this runtime.
    let (path, base) = (config_path.to_owned(), current.clone());
    let build = tokio::task::spawn_blocking(move || {
        let c = Arc::new(config::load(&path).map_err(Failure::from)?);
        Runtime::new(
            c,
            base.auditor.clone(),
            base.metrics.clone(),
            base.signals.clone(),
            base.shards(),
            base.offload.clone(),
            base.budget.clone(),
        )
        .map_err(|e| Failure::one(e.to_string()))
    });
    let result = match tokio::time::timeout(LOAD_TIMEOUT, build).await {
        Ok(Ok(built)) => built,
        Ok(Err(_)) => Err(Failure::one(
            "building the configuration failed unexpectedly".into(),
        )),
        Err(_) => Err(Failure::one(format!(
            "reading the configuration took over {}s",
            LOAD_TIMEOUT.as_secs()
        ))),
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
        Err(Failure { reason, problems }) => {
            current.metrics.reloads.with_label_values(&["error"]).inc();
            tracing::error!(trigger, %reason, "Reload failed; the running configuration stays.");
            let _ = current
                .auditor
                .event(event.with("result", "error").with("problems", problems))
                .await;
        }
    }
}

/// Why a reload failed: the text for the log and how many problems it holds.
struct Failure {
    reason: String,
    problems: usize,
}

impl Failure {
    fn one(reason: String) -> Failure {
        Failure {
            reason,
            problems: 1,
        }
    }
}

impl From<crate::diag::Diagnostics> for Failure {
    fn from(d: crate::diag::Diagnostics) -> Failure {
        Failure {
            problems: d.0.len(),
            reason: d.to_string(),
        }
    }
}

/// The inode of each file (`None` when it cannot be read).
pub(crate) fn inodes(files: &[&Path]) -> Vec<Option<u64>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| m.ino()))
        .collect()
}

/// Whether one of `files`, still the inode it was (`inodes`), was modified
/// less than `settle` ago: written in place, perhaps not finished yet.
pub(crate) fn written_in_place_since(
    files: &[&Path],
    inodes: &[Option<u64>],
    settle: Duration,
) -> bool {
    files.iter().zip(inodes).any(|(file, was)| {
        let Ok(m) = std::fs::metadata(file) else {
            return false;
        };
        let recent = m
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < settle);
        *was == Some(m.ino()) && recent
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn looked(dir: &Path) -> Files {
        Files::look(&[dir.join("a.yaml"), dir.join("policies")])
    }

    #[test]
    fn a_rename_is_a_replacement_and_a_write_in_place_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
        std::fs::write(dir.path().join("a.yaml"), "one").expect("write");
        std::fs::write(dir.path().join("policies/p.yaml"), "one").expect("write");
        let start = looked(dir.path());
        assert_eq!(start.change_to(&looked(dir.path())), Change::None);

        std::fs::write(dir.path().join("policies/p.yaml"), "two!").expect("write");
        assert_eq!(start.change_to(&looked(dir.path())), Change::InPlace);

        let start = looked(dir.path());
        std::fs::write(dir.path().join(".a.tmp"), "three").expect("write");
        std::fs::rename(dir.path().join(".a.tmp"), dir.path().join("a.yaml")).expect("mv");
        assert_eq!(start.change_to(&looked(dir.path())), Change::Replaced);

        // A new policy file, even renamed into place, waits to settle.
        let start = looked(dir.path());
        std::fs::write(dir.path().join("policies/q.yml"), "new").expect("write");
        assert_eq!(start.change_to(&looked(dir.path())), Change::InPlace);
        // Files the loader ignores are not watched.
        let start = looked(dir.path());
        std::fs::write(dir.path().join("policies/.q.yml.swp"), "x").expect("write");
        assert_eq!(start.change_to(&looked(dir.path())), Change::None);
    }
}
