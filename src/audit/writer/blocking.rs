//! File work that may block, run without stalling the caller's runtime.

use tokio::runtime::RuntimeFlavor;

/// Runs file work that may block for long (`fsync`, rename, a full pipe)
/// without holding up the other tasks of a multi-threaded runtime's worker.
pub(super) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match runtime_flavor() {
        Some(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The flavour of the runtime the caller runs on, if any.
pub(super) fn runtime_flavor() -> Option<RuntimeFlavor> {
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|h| h.runtime_flavor())
}
