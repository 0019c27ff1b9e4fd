//! A recording upstream on 127.0.0.1: hyper (HTTP/1.1, h2 or auto; plain or
//! TLS) answering through a handler, or raw mode writing scripted bytes for
//! hostile-upstream tests. Records every request and, per connection, the
//! exact plaintext bytes received ([`Upstream::wire`]).

use super::pki::{ALPN, server_config};
use super::raw::{dechunk, parse_headers, split_head};
use super::{lock, rt};
use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout};
use tokio_rustls::TlsAcceptor;

/// Bound on reading one request (raw mode) or finishing a TLS handshake.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`RawStep::Hang`] holds a connection open.
const HANG_MAX: Duration = Duration::from_secs(60);
const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// Builds the upstream's answer from the recorded request.
pub type Handler = Arc<dyn Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync>;

/// HTTP versions the upstream speaks (plain: h2 means prior knowledge;
/// TLS: selected by ALPN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Auto,
    Http1,
    Http2,
}

/// One step of a raw-mode answer; the connection closes after the last step.
#[derive(Clone, Debug)]
pub enum RawStep {
    Send(Vec<u8>),
    Wait(Duration),
    /// Keep the connection open without answering (up to 60 s).
    Hang,
}

#[derive(Clone)]
enum Mode {
    Handler(Handler),
    Raw(Vec<RawStep>),
}

/// What the upstream is and how it answers. Default: plain, auto (h1 + h2c),
/// `200 {"ok":true}` as `application/json`.
#[derive(Clone)]
pub struct UpstreamOpts {
    tls: Option<(String, String)>,
    client_ca: Option<String>,
    proto: Proto,
    mode: Mode,
    delay: Duration,
}

impl Default for UpstreamOpts {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamOpts {
    pub fn new() -> Self {
        let opts = UpstreamOpts {
            tls: None,
            client_ca: None,
            proto: Proto::Auto,
            mode: Mode::Raw(Vec::new()),
            delay: Duration::ZERO,
        };
        opts.json(200, r#"{"ok":true}"#)
    }
    /// Serve TLS with this `(cert PEM, key PEM)`, e.g. `pki.server_cert(LOCAL)`.
    pub fn tls(mut self, cert: &(String, String)) -> Self {
        self.tls = Some(cert.clone());
        self
    }
    /// Require TLS client certificates issued by `ca_pem` (needs [`Self::tls`]).
    pub fn client_ca(mut self, ca_pem: &str) -> Self {
        self.client_ca = Some(ca_pem.to_string());
        self
    }
    pub fn proto(mut self, proto: Proto) -> Self {
        self.proto = proto;
        self
    }
    pub fn http1(self) -> Self {
        self.proto(Proto::Http1)
    }
    pub fn http2(self) -> Self {
        self.proto(Proto::Http2)
    }
    /// Wait this long after receiving a request before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Answer every request through `f`.
    pub fn handler<F>(mut self, f: F) -> Self
    where
        F: Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        self.mode = Mode::Handler(Arc::new(f));
        self
    }
    /// Answer every request with a fixed status, headers and body.
    pub fn respond(self, status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Self {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let body = body.into();
        self.handler(move |_| {
            let mut b = Response::builder().status(status);
            for (n, v) in &headers {
                b = b.header(n, v);
            }
            b.body(Full::new(body.clone()))
                .expect("valid fixed response")
        })
    }
    /// Answer with `body` as `application/json`.
    pub fn json(self, status: u16, body: &str) -> Self {
        let ct = [("content-type", "application/json")];
        self.respond(status, &ct, body.to_string())
    }
    /// Raw mode: read one request, write `bytes` verbatim, close.
    pub fn raw(self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_steps(vec![RawStep::Send(bytes.into())])
    }
    /// Raw mode: read one request, run `steps`, close.
    pub fn raw_steps(mut self, steps: Vec<RawStep>) -> Self {
        self.mode = Mode::Raw(steps);
        self
    }
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as received.
    pub uri: String,
    /// URI authority (h2 `:authority`, or an absolute-form HTTP/1 target).
    pub authority: Option<String>,
    pub version: Version,
    /// Lower-cased names, duplicates kept (hyper groups repeats of a name).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        let named = self.headers.iter().filter(|(n, _)| *n == name);
        named.map(|(_, v)| v.as_str()).collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("upstream received JSON")
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    wire: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
}

/// A running upstream; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Binds 127.0.0.1:0 (listening before this returns) and serves `opts`.
    pub fn start(opts: UpstreamOpts) -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("upstream address");
        let acceptor = opts.tls.as_ref().map(|cert| {
            let mut cfg = server_config(cert, opts.client_ca.as_deref());
            cfg.alpn_protocols = match (&opts.mode, opts.proto) {
                (Mode::Raw(_), _) | (_, Proto::Http1) => vec![b"http/1.1".to_vec()],
                (_, Proto::Http2) => vec![b"h2".to_vec()],
                (_, Proto::Auto) => ALPN.iter().map(|p| p.to_vec()).collect(),
            };
            TlsAcceptor::from(Arc::new(cfg))
        });
        let state = Arc::new(State::default());
        let tls = acceptor.is_some();
        let task = rt().spawn(accept_loop(
            listener,
            acceptor,
            Arc::new(opts),
            state.clone(),
        ));
        Upstream {
            addr,
            tls,
            state,
            task,
        }
    }

    /// Shortcut: a plain upstream answering `status` with a JSON `body`.
    pub fn json(status: u16, body: &str) -> Upstream {
        Upstream::start(UpstreamOpts::new().json(status, body))
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }
    pub fn hits(&self) -> usize {
        lock(&self.state.requests).len()
    }
    /// The most recent request; panics if none arrived.
    pub fn last(&self) -> Recorded {
        let requests = lock(&self.state.requests);
        requests
            .last()
            .cloned()
            .expect("upstream received no request")
    }
    /// Plaintext bytes received, one entry per accepted connection (h2 is
    /// HPACK-encoded: also search [`Self::requests`]).
    pub fn wire(&self) -> Vec<Vec<u8>> {
        let conns = lock(&self.state.wire);
        conns.iter().map(|c| lock(c).clone()).collect()
    }
    /// Accepted TCP connections (including failed TLS handshakes).
    pub fn connections(&self) -> usize {
        lock(&self.state.wire).len()
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    opts: Arc<UpstreamOpts>,
    state: Arc<State>,
) {
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    // Dropping the set (when the Upstream is dropped) aborts every connection.
    let mut conns = JoinSet::new();
    while let Ok((tcp, _)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        let wire = Arc::new(Mutex::new(Vec::new()));
        lock(&state.wire).push(wire.clone());
        let (acceptor, opts, state) = (acceptor.clone(), opts.clone(), state.clone());
        conns.spawn(async move {
            match acceptor {
                None => serve(Tap { inner: tcp, wire }, &opts, state).await,
                Some(a) => {
                    if let Ok(Ok(tls)) = timeout(IO_TIMEOUT, a.accept(tcp)).await {
                        serve(Tap { inner: tls, wire }, &opts, state).await;
                    }
                }
            }
        });
    }
}

async fn serve<I>(io: I, opts: &UpstreamOpts, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match &opts.mode {
        Mode::Raw(steps) => serve_raw(io, steps, opts.delay, &state).await,
        Mode::Handler(h) => serve_hyper(io, h.clone(), opts.proto, opts.delay, state).await,
    }
}

async fn serve_hyper<I>(io: I, handler: Handler, proto: Proto, delay: Duration, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let (handler, state) = (handler.clone(), state.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes());
            let rec = Recorded {
                method: parts.method.to_string(),
                uri: parts
                    .uri
                    .path_and_query()
                    .map_or("", |p| p.as_str())
                    .to_string(),
                authority: parts.uri.authority().map(|a| a.to_string()),
                version: parts.version,
                headers: (parts.headers.iter())
                    .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                    .collect(),
                body: body.unwrap_or_default(),
            };
            lock(&state.requests).push(rec.clone());
            sleep(delay).await;
            Ok::<_, Infallible>(handler(&rec))
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = match proto {
        Proto::Auto => builder,
        Proto::Http1 => builder.http1_only(),
        Proto::Http2 => builder.http2_only(),
    };
    let _ = builder.serve_connection(TokioIo::new(io), svc).await;
}

async fn serve_raw<I>(mut io: I, steps: &[RawStep], delay: Duration, state: &State)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    if let Ok(Some(rec)) = timeout(IO_TIMEOUT, read_request(&mut io)).await {
        lock(&state.requests).push(rec);
    }
    sleep(delay).await;
    for step in steps {
        match step {
            RawStep::Send(bytes) => {
                if io.write_all(bytes).await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
            RawStep::Wait(d) => sleep(*d).await,
            RawStep::Hang => sleep(HANG_MAX).await,
        }
    }
    let _ = io.shutdown().await;
}

/// Reads one HTTP/1 request (body framed by Content-Length or chunked).
async fn read_request<I: AsyncRead + Unpin>(io: &mut I) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let (head, start) = loop {
        if let Some((head, rest)) = split_head(&buf) {
            break (head, buf.len() - rest.len());
        }
        match io.read(&mut chunk).await {
            Ok(n) if n > 0 && buf.len() < MAX_REQUEST => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.splitn(3, ' ');
    let (method, uri) = (request_line.next()?, request_line.next().unwrap_or(""));
    let version = match request_line.next() {
        Some("HTTP/1.0") => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let headers = parse_headers(lines);
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let chunked = find("transfer-encoding").is_some_and(|te| te.ends_with("chunked"));
    let length = find("content-length").and_then(|v| v.parse::<usize>().ok());
    let body = loop {
        let have = &buf[start..];
        if chunked {
            if let Some((body, _)) = dechunk(have) {
                break body;
            }
        } else if have.len() >= length.unwrap_or(0) {
            break have[..length.unwrap_or(0)].to_vec();
        }
        match io.read(&mut chunk).await {
            Ok(n) if n > 0 && buf.len() < MAX_REQUEST => buf.extend_from_slice(&chunk[..n]),
            _ => break have.to_vec(),
        }
    };
    Some(Recorded {
        method: method.to_string(),
        uri: uri.to_string(),
        authority: None,
        version,
        headers,
        body: body.into(),
    })
}

/// Copies every byte read from `inner` into `wire`.
struct Tap<S> {
    inner: S,
    wire: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        lock(&this.wire).extend_from_slice(&buf.filled()[before..]);
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
