//! The `serve` process: load, bind, announce readiness, run until told to
//! stop, drain. The running [`Runtime`] sits behind an `ArcSwap` so a reload
//! swaps it atomically; each request holds the snapshot it started with.

use super::budget::{self, Budget};
use super::listener::{ListenerOptions, Rejections, shards};
use super::offload::Offload;
use super::{Runtime, RuntimeError, admin, pipeline, reload, tls};
use crate::audit;
use crate::config;
use crate::diag::Diagnostics;
use crate::metrics::Metrics;
use crate::signals::{self, Signals};
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

impl From<Diagnostics> for ServeError {
    fn from(d: Diagnostics) -> ServeError {
        ServeError::Config(d)
    }
}

/// How long in-flight requests may run on after a stop signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid. Not a `source`: the diagnostics are the
    /// message, and a report printing the chain would show them twice.
    #[error("invalid configuration:\n{0}")]
    Config(Diagnostics),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Listener TLS files are unusable.
    #[error("listener TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// An upstream could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The crossing log cannot be opened.
    #[error("audit log: {0}")]
    Audit(#[from] audit::AuditError),
    /// The listener cannot be handed to its shard threads.
    #[error("cannot start the listener threads: {0}")]
    Shards(std::io::Error),
    /// The policy threads cannot be started.
    #[error("cannot start the policy threads: {0}")]
    Offload(std::io::Error),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Addresses actually bound (ports may have been 0 in the config).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The proxy listener.
    pub proxy: SocketAddr,
    /// The admin listener.
    pub admin: Option<SocketAddr>,
    /// The crossing log writes to stdout: nothing else may.
    pub audit_on_stdout: bool,
}

/// The live snapshot, swapped whole on reload.
pub type Shared = Arc<ArcSwap<Runtime>>;

/// Runs the proxy until `shutdown` turns true; `ready` is called once every
/// listener is bound and everything is loaded.
pub async fn serve(
    config_path: &Path,
    shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    let config = Arc::new(config::load(config_path)?);
    let (auditor, audit_task) = audit::start(config.audit.clone()).await?;
    let audit_closer = auditor.clone();
    let metrics = Arc::new(Metrics::new(&config)?);
    let shards = config.workers;
    let offload =
        Offload::start(shards, metrics.policy_jobs.clone()).map_err(ServeError::Offload)?;
    let shared: Shared = Arc::new(ArcSwap::from_pointee(Runtime::new(
        config.clone(),
        auditor,
        metrics,
        Arc::new(Signals::new()),
        shards,
        Arc::new(offload),
        Arc::new(Budget::new(config.limits.max_buffered_bytes, budget::WAIT)),
    )?));
    let proxy_listeners =
        shards::bind(config.listen, shards).map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let admin_listener = match config.admin {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let bound = Bound {
        proxy: proxy_listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(config.listen),
        admin: admin_listener
            .as_ref()
            .map(|l| local_addr(l, config.listen)),
        audit_on_stdout: config.audit.sink == config::AuditSink::Stdout,
    };
    let limits = &config.limits;
    let opts = ListenerOptions {
        tls: config.tls.as_ref().map(tls::server_config).transpose()?,
        max_connections: limits.max_connections,
        header_read_timeout: limits.header_timeout,
        handshake_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        write_timeout: limits.write_timeout,
        rejections: Rejections::new(shared.load().metrics.protocol_errors.clone()),
    };
    let admin_task =
        admin_listener.map(|l| tokio::spawn(admin::serve(l, shared.clone(), shutdown.clone())));
    let hup = reload::hangup_signal();
    tokio::spawn(reload::watch(
        config_path.to_path_buf(),
        shared.clone(),
        hup,
        shutdown.clone(),
    ));
    let daily = tokio::spawn(signals::daily(shared.clone(), shutdown.clone()));
    ready(bound);
    tracing::info!(proxy = %bound.proxy, "customs is serving.");
    let handler = move |req, conn| {
        let rt = shared.load_full();
        pipeline::handle(rt, conn, req)
    };
    // Fails only while starting the shards; the process then exits.
    shards::serve(proxy_listeners, opts, handler, shutdown, DRAIN)
        .await
        .map_err(ServeError::Shards)?;
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    let _ = daily.await;
    close_audit(audit_closer, audit_task).await;
    Ok(())
}

/// Closes the crossing log (a final `fsync`) and waits for its sync task,
/// once every shard has stopped and written its last records.
async fn close_audit(auditor: audit::Auditor, task: tokio::task::JoinHandle<()>) {
    auditor.close();
    drop(auditor);
    if tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .is_err()
    {
        tracing::error!("audit writer did not finish within 10 s; queued records may be lost");
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn local_addr(l: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(fallback)
}
