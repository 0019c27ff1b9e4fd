//! The accept loop. Each connection (TCP, or TLS with h2/http1.1 chosen by
//! ALPN; plain TCP also speaks h2c by prior knowledge) is served by hyper's
//! auto builder with the protections hyper leaves to its caller: timers
//! (without one, `header_read_timeout` is silently inert), a TLS handshake
//! deadline, a connection cap, the HTTP/1 framing sniffer, and a graceful
//! drain on shutdown. HTTP/1 upgrades are enabled, but only the pipeline
//! decides to switch (see [`super::tunnel`]): when it does, it hands the
//! tunnel to the connection task, which runs it under the same connection
//! permit and closes it on shutdown.

use super::auth::PeerCert;
use super::sniff::{self, Verdicts};
use super::tls;
use crate::metrics::ProtocolError;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown, Watcher};
pub use rejected::Rejections;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Most concurrent HTTP/2 streams per connection.
const H2_MAX_STREAMS: u32 = 256;
/// HTTP/2 PING interval, and how long an answer may take before the
/// connection is considered dead.
const H2_KEEPALIVE: Duration = Duration::from_secs(30);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause after a failed `accept` (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Per-connection facts handed to every request of the connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// The remote address.
    pub peer: SocketAddr,
    /// The listener shard (thread) serving the connection.
    pub shard: usize,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The verified client certificate, when the client presented one.
    pub peer_cert: Option<PeerCert>,
    /// HTTP/1 framing verdicts: take one per request (see [`sniff`]).
    pub framing: Arc<Verdicts>,
    /// Requests started and open, for the first-request and idle deadlines.
    activity: Arc<Activity>,
    /// The tunnel to run once hyper has switched protocols.
    tunnel: TunnelSlot,
}

/// A tunnel: copies bytes between two upgraded connections until it ends.
pub type Tunnel = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The requests of one connection: how many started, how many are open, and when the
/// connection last went idle.
#[derive(Debug)]
struct Activity {
    started: AtomicU64,
    open: AtomicUsize,
    /// Milliseconds from `epoch` to when the last open request ended.
    idle_since: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Counts a request as open until the guard is dropped (answered or abandoned).
    fn begin(self: &Arc<Self>) -> OpenRequest {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenRequest(self.clone())
    }

    /// How long the connection has had no open request; `None` while one is open.
    fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since.load(Ordering::Relaxed));
        Some(self.epoch.elapsed().saturating_sub(since))
    }
}

struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        self.0.idle_since.store(now, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a handler may answer with: any body hyper can send, whole or streamed.
pub trait ReplyBody:
    Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + Unpin + 'static
{
}

impl<B> ReplyBody for B where
    B: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static
{
}

/// A response body that keeps its request counted as open until it is sent.
struct Tracked<B> {
    inner: B,
    _open: OpenRequest,
}

impl<B: ReplyBody> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Holds the connection's tunnel from the handler's 101 until hyper has
/// written it and handed over the connection.
#[derive(Default)]
struct TunnelSlot(Mutex<Option<Tunnel>>);

impl std::fmt::Debug for TunnelSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelSlot")
    }
}

impl TunnelSlot {
    fn take(&self) -> Option<Tunnel> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl ConnInfo {
    /// Runs `tunnel` once this connection has switched protocols (the
    /// handler answers 101). The connection task runs it, so it holds the
    /// connection permit and is closed on shutdown.
    pub fn hand_over(&self, tunnel: Tunnel) {
        *self.tunnel.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(tunnel);
    }
}

/// How the listener serves connections.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// TLS config; plain TCP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Most connections open at once; further clients wait in the backlog.
    pub max_connections: usize,
    /// Deadline for a complete HTTP/1 request head; also bounds idle
    /// keep-alive connections and, on a new connection, the wait for the
    /// first request head or the HTTP/2 preface.
    pub header_read_timeout: Duration,
    /// Deadline for the TLS handshake.
    pub handshake_timeout: Duration,
    /// A connection without open requests is closed (HTTP/2: GOAWAY) after this long.
    pub idle_timeout: Duration,
    /// A connection whose writes make no progress for this long is closed.
    pub write_timeout: Duration,
    /// Where connections the HTTP layer refused are counted.
    pub rejections: Rejections,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            tls: None,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            rejections: Rejections::default(),
        }
    }
}

/// Serves connections until `shutdown` fires, then stops accepting and waits
/// (up to `drain`) for in-flight requests to finish.
///
/// `shutdown` fires when it turns `true` or its sender is dropped. HTTP/1
/// connections finish their in-flight request and close; HTTP/2 connections
/// send GOAWAY and finish their open streams. Connections still open after
/// `drain` are cut.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    opts: ListenerOptions,
    handler: H,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ReplyBody,
{
    let limit = Arc::new(Semaphore::new(
        opts.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let shard = Shard {
        index: 0,
        listener,
        limit,
    };
    serve_shard(shard, opts, handler, shutdown, drain).await;
}

/// One accept loop's share of the listener: its own listening socket
/// handle, and the connection cap every shard draws from.
pub(crate) struct Shard {
    index: usize,
    listener: TcpListener,
    limit: Arc<Semaphore>,
}

/// [`serve`] on one shard.
async fn serve_shard<H, F, B>(
    shard: Shard,
    opts: ListenerOptions,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ReplyBody,
{
    let Shard {
        index,
        listener,
        limit,
    } = shard;
    let shared = Arc::new(Shared {
        shard: index,
        handler,
        shutdown: shutdown.clone(),
        acceptor: opts.tls.clone().map(TlsAcceptor::from),
        handshake_timeout: opts.handshake_timeout,
        first_request_timeout: opts.header_read_timeout,
        idle_timeout: opts.idle_timeout,
        write_timeout: opts.write_timeout,
        http: Protocols::new(&opts),
        rejections: opts.rejections.clone(),
    });
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(done) = connections.join_next() => log_failure(done),
            accepted = accept(&listener, &limit) => {
                if let Some((tcp, peer, permit)) = accepted {
                    let watcher = graceful.watcher();
                    connections.spawn(connection(shared.clone(), tcp, peer, watcher, permit));
                }
            }
        }
    }
    drop(listener);
    drain_connections(graceful, connections, drain).await;
}

/// What every connection task needs.
struct Shared<H> {
    shard: usize,
    handler: H,
    /// Tunnels close when this fires.
    shutdown: watch::Receiver<bool>,
    acceptor: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    first_request_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    http: Protocols,
    rejections: Rejections,
}

/// One configured builder per way a connection may speak HTTP.
struct Protocols {
    /// Plain TCP: HTTP/1.1, or h2c when the client opens with the preface.
    auto: Builder<TokioExecutor>,
    h1: Builder<TokioExecutor>,
    h2: Builder<TokioExecutor>,
}

impl Protocols {
    fn new(opts: &ListenerOptions) -> Self {
        let mut auto = Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            .keep_alive(true)
            .half_close(false)
            // The sniffer's cap too: hyper answers 431 before the sniffer gives up.
            .max_buf_size(sniff::MAX_HEAD);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(sniff::MAX_HEAD as u32)
            .keep_alive_interval(H2_KEEPALIVE)
            .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
        Protocols {
            h1: auto.clone().http1_only(),
            h2: auto.clone().http2_only(),
            auto,
        }
    }

    /// Over TLS the protocol is whatever ALPN settled; without ALPN it is
    /// HTTP/1.1 (RFC 9113 §3.2 requires ALPN for h2 over TLS).
    fn for_alpn(&self, alpn: Option<&[u8]>) -> &Builder<TokioExecutor> {
        match alpn {
            Some(b"h2") => &self.h2,
            _ => &self.h1,
        }
    }
}

/// Resolves once `shutdown` is `true` or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits for a free connection slot, then for a client. `None` after an
/// accept error, once the back-off has passed.
async fn accept(
    listener: &TcpListener,
    limit: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = limit.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((tcp, peer)) => Some((tcp, peer, permit)),
        Err(error) => {
            tracing::warn!(%error, "accept failed; backing off");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

/// One connection, from handshake to close. The permit is held throughout.
async fn connection<H, F, B>(
    shared: Arc<Shared<H>>,
    tcp: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ReplyBody,
{
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let tcp = Stalled::new(tcp, shared.write_timeout);
    let framing = Arc::new(Verdicts::default());
    let info = |tls, peer_cert| ConnInfo {
        peer,
        shard: shared.shard,
        tls,
        peer_cert,
        framing: framing.clone(),
        activity: Arc::new(Activity::new()),
        tunnel: TunnelSlot::default(),
    };
    let Some(acceptor) = &shared.acceptor else {
        let io = sniff::sniffed(tcp, framing.clone());
        let info = info(false, None);
        return serve_http(&shared, &shared.http.auto, io, info, watcher).await;
    };
    let Some(stream) = handshake(acceptor, tcp, peer, shared.handshake_timeout).await else {
        shared.rejections.count(ProtocolError::TlsHandshake);
        return;
    };
    let session = stream.get_ref().1;
    let builder = shared.http.for_alpn(session.alpn_protocol());
    let info = info(true, tls::peer_cert(session));
    // The sniffer must see plaintext HTTP, so it wraps the TLS stream.
    let io = sniff::sniffed(stream, framing.clone());
    serve_http(&shared, builder, io, info, watcher).await;
}

/// The TLS handshake, bounded by `deadline`. Failures are the client's
/// business, so they are logged at debug only.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: Stalled<TcpStream>,
    peer: SocketAddr,
    deadline: Duration,
) -> Option<TlsStream<Stalled<TcpStream>>> {
    match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Serves HTTP on `io` until the peer leaves or shutdown closes it, then
/// runs the tunnel if the connection switched protocols.
async fn serve_http<H, F, B, I>(
    shared: &Shared<H>,
    builder: &Builder<TokioExecutor>,
    io: I,
    info: ConnInfo,
    watcher: Watcher,
) where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: ReplyBody,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (peer, framing) = (info.peer, info.framing.clone());
    let activity = info.activity.clone();
    let info = Arc::new(info);
    let handler = shared.handler.clone();
    let conn_info = info.clone();
    let service = hyper::service::service_fn(move |req| {
        let open = conn_info.activity.begin();
        let response = handler(req, conn_info.clone());
        async move {
            // Open until its body is sent: a streamed body can outlast the handler.
            let response = response.await.map(|inner| Tracked { inner, _open: open });
            Ok::<_, Infallible>(response)
        }
    });
    let http = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    // Held, not polled: the drain waits for every watcher to be dropped, and this task
    // answers the shutdown itself (below), beside its own deadlines.
    let _watcher = watcher;
    let ended = run_until_done(shared, pin!(http), &activity, peer).await;
    match ended {
        Some(Err(error)) if stall::is_timeout(&*error) => tracing::info!(
            %peer,
            "the caller read nothing for {}s; connection closed",
            shared.write_timeout.as_secs()
        ),
        Some(Err(error)) => {
            tracing::debug!(%peer, %error, "connection ended with an error");
            if let Some(reason) = rejected::classify(&*error, &framing) {
                shared.rejections.count(reason);
            }
        }
        // Cut before any request was dispatched: half a head, or nothing.
        None if activity.started.load(Ordering::Relaxed) == 0 => {
            shared.rejections.count(match framing.mid_head() {
                true => ProtocolError::HeadTimeout,
                false => ProtocolError::NoRequest,
            });
        }
        _ => {}
    }
    if let Some(tunnel) = info.tunnel.take() {
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            () = tunnel => {}
            () = stopped(&mut shutdown) => tracing::debug!(%peer, "shutting down: tunnel closed"),
        }
    }
}

/// Drives a connection to its end, closing it on shutdown (HTTP/2: GOAWAY, then open
/// streams finish), when no request has started within the first-request deadline
/// (whatever the protocol: an h2 preface and SETTINGS are not a request), and when it has
/// had no open request for the idle timeout. `None` when it was cut.
async fn run_until_done<H, C: GracefulConnection>(
    shared: &Shared<H>,
    mut conn: Pin<&mut C>,
    activity: &Activity,
    peer: SocketAddr,
) -> Option<Result<(), C::Error>> {
    let mut shutdown = shared.shutdown.clone();
    let started = Instant::now();
    // Once closing, the connection has this long to finish on its own.
    let mut closing: Option<Instant> = None;
    loop {
        let next = match closing {
            Some(at) => at + shared.first_request_timeout,
            None if activity.started.load(Ordering::Relaxed) == 0 => {
                started + shared.first_request_timeout
            }
            None => {
                Instant::now()
                    + activity.idle_for().map_or(shared.idle_timeout, |idle| {
                        shared.idle_timeout.saturating_sub(idle)
                    })
            }
        };
        tokio::select! {
            ended = conn.as_mut() => return Some(ended),
            () = stopped(&mut shutdown), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = tokio::time::sleep_until(next.into()) => {
                if closing.is_some() || activity.started.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(%peer, "no request received in time, or did not close; cutting");
                    return None;
                }
                if activity.idle_for().is_some_and(|idle| idle >= shared.idle_timeout) {
                    tracing::debug!(%peer, "idle; closing");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
    }
}

/// Signals every connection to finish, then waits up to `drain` for them.
async fn drain_connections(
    graceful: GracefulShutdown,
    mut connections: JoinSet<()>,
    drain: Duration,
) {
    tracing::debug!(open = connections.len(), "draining connections");
    let finished = tokio::time::timeout(drain, async {
        graceful.shutdown().await;
        while let Some(done) = connections.join_next().await {
            log_failure(done);
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            "drain period over; closing the remaining connections"
        );
        connections.shutdown().await;
    }
}

fn log_failure(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(%error, "connection task failed");
    }
}

mod rejected;
pub mod shards;
mod stall;
use stall::Stalled;
#[cfg(test)]
mod tests;
