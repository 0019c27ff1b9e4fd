//! Black-box harness for customs integration tests.
//!
//! - [`pki`]: a throw-away CA, server/client certificates, rustls configs.
//! - [`upstream`]: a recording upstream (hyper, or raw bytes for hostile cases).
//! - [`proxy`]: runs `customs serve` in a temp dir and waits for its `ready` line.
//! - [`client`]: HTTP/1.1, h2c and TLS requests returning a [`Reply`].
//! - [`raw`]: raw TCP/TLS exchanges and a small HTTP/1 response parser.
//!
//! Every helper is synchronous: async work runs on one shared runtime ([`rt`]),
//! so tests may be plain `#[test]` or `#[tokio::test]`. Never call these helpers
//! from a task that itself runs on [`rt`].
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod metrics;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod upstream;

pub use client::{Reply, Via, gzip, request, send, send_h2, send_tls};
pub use pki::{LOCAL, Pki, write_pem};
pub use proxy::{Proxy, ProxySetup};
pub use raw::{RawResponse, parse_responses, parse_status, raw_exchange, raw_exchange_tls};
pub use upstream::{Proto, RawStep, Recorded, Upstream, UpstreamOpts};

use std::future::Future;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// Upper bound for any single harness operation run on [`rt`].
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// The shared runtime that runs upstreams and client I/O.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("harness")
            .build()
            .expect("build harness runtime")
    });
    &RT
}

/// Runs `fut` on [`rt`] and waits for it (at most [`OP_TIMEOUT`]). Works from
/// sync tests and from inside other runtimes (it only blocks this thread).
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let task = rt().spawn(async move {
        let _ = tx.send(fut.await);
    });
    match rx.recv_timeout(OP_TIMEOUT) {
        Ok(out) => out,
        Err(e) => {
            task.abort();
            panic!("harness operation did not finish within {OP_TIMEOUT:?}: {e}");
        }
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must not hide data).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A config with one anonymous, internal integration `demo` (mount `/demo`)
/// in front of `{upstream}`, an admin listener and the audit log in `{dir}`.
/// `routes` are route lines, e.g. `"- { id: r, methods: [GET], path: /x, request: pass, response: pass }"`.
pub fn demo_config(routes: &[&str]) -> String {
    let head = r#"listen: { address: 127.0.0.1:0 }
admin: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
integrations:
"#;
    head.to_string() + &anonymous_integration("demo", routes)
}

/// One more anonymous, internal integration `name` in front of `{upstream}`, to append to
/// [`demo_config`].
pub fn anonymous_integration(name: &str, routes: &[&str]) -> String {
    let mut entry = format!(
        r#"  - name: {name}
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    anonymous: true
    upstream: {{ url: "{{upstream}}" }}
    routes:
"#
    );
    for route in routes {
        entry.push_str("      ");
        entry.push_str(route);
        entry.push('\n');
    }
    entry
}

/// A random hex string made for this run (tokens and keys are never literals in the repo).
pub fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex::encode(bytes)
}
