//! Thread per core: the proxy listener is served by one single-threaded
//! tokio runtime per shard, the way nginx runs a worker process per core.
//! A connection, its requests and the pooled upstream connections they use
//! stay on the thread that accepted it, so a crossing never waits for a
//! cross-thread wake-up or a work-stealing hand-off (README, "Performance").
//!
//! Each shard listens on its own socket bound to the same address with
//! `SO_REUSEPORT`, so the kernel spreads new connections evenly. (Shards
//! racing to `accept` on one shared socket let one of them take a whole
//! burst of connections.) The cost: a connection never moves, so a shard
//! busy with heavy crossings does not hand its others to an idle one.

use super::{ConnInfo, ListenerOptions, ReplyBody, Shard, serve_shard};
use http::{Request, Response};
use hyper::body::Incoming;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, oneshot, watch};

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT`, the first
/// one to `addr` as given (its port may be 0), the others to the address it
/// got. Must be called within a tokio runtime; the sockets are handed over
/// to the shards by [`serve`].
///
/// # Errors
/// When a socket cannot be created or bound.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let first = listen(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count.max(1) {
        listeners.push(listen(bound)?);
    }
    Ok(listeners)
}

fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// Serves each of `listeners` (from [`bind`]) on a shard thread of its own
/// until `shutdown` fires; each shard then drains its own connections (see
/// [`super::serve`]). Returns once every shard has stopped.
///
/// # Errors
/// When a shard's runtime or thread cannot be created.
pub async fn serve<H, F, B>(
    listeners: Vec<std::net::TcpListener>,
    opts: ListenerOptions,
    handler: H,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ReplyBody,
{
    let limit = Arc::new(Semaphore::new(
        opts.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut stopped = Vec::with_capacity(listeners.len());
    for (index, socket) in listeners.into_iter().enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_shard_listens_on_the_address_the_first_got() {
        let listeners = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 3).expect("bind");
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr"))
            .collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
    }
}
