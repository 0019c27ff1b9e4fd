//! Thread per core: the proxy listener is served by one single-threaded
//! tokio runtime per shard, each accepting on its own handle of the same
//! socket, the way nginx runs a worker process per core. A connection, its
//! requests and the pooled upstream connections they use stay on the thread
//! that accepted it, so a crossing never waits for a cross-thread wake-up or
//! a work-stealing hand-off. On the load benchmark this made `pass` about
//! 10 % cheaper than one work-stealing runtime (README, "Performance").
//!
//! The cost: a connection never moves, so one shard can be busy while
//! another idles. Busy shards accept less (both are woken for each new
//! connection; the one that gets to `accept` first takes it), which evens
//! out new connections but not long-lived ones.

use super::{ConnInfo, ListenerOptions, Shard, serve_shard};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};

/// Serves `listener` on `count` shard threads until `shutdown` fires; each
/// shard then drains its own connections (see [`super::serve`]). Returns once
/// every shard has stopped.
///
/// # Errors
/// When a shard's runtime, thread or socket handle cannot be created.
pub async fn serve<H, F>(
    listener: std::net::TcpListener,
    count: usize,
    opts: ListenerOptions,
    handler: H,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    listener.set_nonblocking(true)?;
    let limit = Arc::new(Semaphore::new(
        opts.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut stopped = Vec::with_capacity(count);
    for index in 0..count.max(1) {
        let socket = listener.try_clone()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done, finished) = oneshot::channel::<()>();
        let (opts, handler, shutdown, limit) = (
            opts.clone(),
            handler.clone(),
            shutdown.clone(),
            limit.clone(),
        );
        std::thread::Builder::new()
            .name(format!("customs-shard-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(socket) {
                        Ok(listener) => {
                            let shard = Shard {
                                index,
                                listener,
                                limit,
                            };
                            serve_shard(shard, opts, handler, shutdown, drain).await;
                        }
                        Err(error) => tracing::error!(index, %error, "shard cannot listen"),
                    }
                });
                drop(done);
            })?;
        stopped.push(finished);
    }
    for finished in stopped {
        // The sender is only ever dropped: when its thread ends, however.
        let _ = finished.await;
    }
    Ok(())
}
