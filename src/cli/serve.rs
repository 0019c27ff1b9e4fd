//! `customs serve`: the proxy and the admin listener, until SIGTERM/Ctrl-C.

use anyhow::Context;
use customs::proxy::server;
use std::io::Write;
use std::process::ExitCode;
use tokio::sync::watch;

pub fn run(args: &super::ConfigArg) -> anyhow::Result<ExitCode> {
    // Requests run on the listener's own per-CPU threads (`proxy::listener::
    // shards`); this runtime only carries the admin listener, reloads, the
    // audit log's fsync and the daily signals.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: &super::ConfigArg) -> anyhow::Result<ExitCode> {
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("Stop signal received; draining in-flight requests.");
        let _ = stop.send(true);
    });
    server::serve(&args.config, shutdown, announce).await?;
    Ok(ExitCode::SUCCESS)
}

/// The readiness line scripts and tests wait for (ports may have been 0),
/// on stdout, or on stderr when the crossing log is written to stdout (a
/// line of ours there would break its chain).
fn announce(bound: server::Bound) {
    let mut line = format!("ready proxy={}", bound.proxy);
    if let Some(admin) = bound.admin {
        line.push_str(&format!(" admin={admin}"));
    }
    if bound.audit_on_stdout {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
