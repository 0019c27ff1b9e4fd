//! WebSocket tunnelling on routes with `upgrade: true` (attacks.md §E): the
//! handshake crosses like any request (identity, injected credential, one
//! audit record), a checked 101 opens a byte tunnel, and everything else —
//! other routes, other protocols, other methods, bodies, HTTP/1.0, h2, a 101
//! the caller did not ask for — switches nothing and reaches no upstream.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The caller's API key; never on the upstream leg.
const KEY: &str = "cst_upgrade_key_0123456789abcdef";
/// The injected upstream credential.
const SECRET: &str = "UPSTREAM-SECRET-WS";
/// RFC 6455 §1.3's sample key and its accept value.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Bound on every socket read of these tests.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// `chat` (mount /chat): route `ws` allows upgrades, `plain` does not.
fn config() -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    r#"listen: { address: 127.0.0.1:0 }
admin: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
limits: { upstream_timeout: 5s, tunnel_idle_timeout: {idle} }
integrations:
  - name: chat
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}/v1"
      inject: { header: Authorization, value: "Bearer ${file:token}" }
    clients:
      - { id: desk, api_key: "sha256:HASH" }
    routes:
      - { id: ws, methods: [GET, POST], path: /ws, request: pass, response: pass, upgrade: true }
      - { id: plain, methods: [GET], path: /plain, request: pass, response: pass }
"#
    .replace("HASH", &hash)
}

fn start(upstream: &str) -> Proxy {
    start_idle(upstream, "60s")
}

fn start_idle(upstream: &str, idle: &str) -> Proxy {
    setup(upstream, idle).start(&config(), &[])
}

/// The proxy's files and variables for `upstream`, tunnels closed after
/// `idle` without traffic.
fn setup(upstream: &str, idle: &str) -> ProxySetup {
    Proxy::builder()
        .upstream(upstream)
        .var("idle", idle)
        .file("token", format!("{SECRET}\n"))
}

/// A WebSocket handshake for `path`, with the caller's key; `extra` lines
/// (each ending in CRLF) go before the blank line.
fn handshake(method: &str, path: &str, version: &str, extra: &str) -> String {
    format!(
        "{method} {path} {version}\r\nHost: proxy.test\r\nX-Api-Key: {KEY}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\n{extra}\r\n"
    )
}

// ---------------------------------------------------------------- upstream

/// A request as the WebSocket upstream saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct WsState {
    requests: Mutex<Vec<Seen>>,
    /// Bytes received through tunnels, in order.
    tunnel: Mutex<Vec<u8>>,
    /// The ALPN protocol of each TLS connection, as accepted.
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
}

/// A WebSocket-like upstream (hyper, HTTP/1.1): a handshake gets a genuine
/// 101 and then every byte is echoed back; with `refuse`, or on any other
/// request, it answers 403 JSON.
struct WsUpstream {
    addr: SocketAddr,
    tls: bool,
    state: Arc<WsState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsUpstream {
    fn start(refuse: bool) -> WsUpstream {
        WsUpstream::serve(refuse, None)
    }
    /// Over TLS with `cert`, offering h2 before http/1.1 by ALPN.
    fn start_tls(cert: &(String, String)) -> WsUpstream {
        let tls = common::pki::server_config(cert, None);
        WsUpstream::serve(false, Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))))
    }
    fn serve(refuse: bool, tls: Option<tokio_rustls::TlsAcceptor>) -> WsUpstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(WsState::default());
        let is_tls = tls.is_some();
        let task = rt().spawn(ws_accept(listener, state.clone(), refuse, tls));
        WsUpstream {
            addr,
            tls: is_tls,
            state,
            task,
        }
    }
    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
    fn alpn(&self) -> Vec<Option<Vec<u8>>> {
        lock(&self.state.alpn).clone()
    }
    fn requests(&self) -> Vec<Seen> {
        lock(&self.state.requests).clone()
    }
    fn tunnel(&self) -> Vec<u8> {
        lock(&self.state.tunnel).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn ws_accept(
    listener: std::net::TcpListener,
    state: Arc<WsState>,
    refuse: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let mut conns = tokio::task::JoinSet::new();
    while let Ok((tcp, _)) = listener.accept().await {
        let state = state.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let Some(tls) = tls else {
                return ws_serve(tcp, state, refuse).await;
            };
            if let Ok(stream) = tls.accept(tcp).await {
                let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                lock(&state.alpn).push(alpn);
                ws_serve(stream, state, refuse).await;
            }
        });
    }
}

/// Serves one HTTP/1.1 connection, upgrades included.
async fn ws_serve<T>(io: T, state: Arc<WsState>, refuse: bool)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let answer = ws_answer(req, state.clone(), refuse);
        async move { Ok::<_, std::convert::Infallible>(answer) }
    });
    let io = hyper_util::rt::TokioIo::new(io);
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
    let _ = conn.with_upgrades().await;
}

fn ws_answer(
    mut req: http::Request<hyper::body::Incoming>,
    state: Arc<WsState>,
    refuse: bool,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let headers = req.headers().iter();
    let headers =
        headers.map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()));
    lock(&state.requests).push(Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        headers: headers.collect(),
    });
    let key = req.headers().get("sec-websocket-key").cloned();
    let (Some(key), false) = (key, refuse) else {
        return http::Response::builder()
            .status(403)
            .header("content-type", "application/json")
            .body(r#"{"error":"nope"}"#.into())
            .expect("403");
    };
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on.await {
            echo(hyper_util::rt::TokioIo::new(upgraded), &state).await;
        }
    });
    http::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept_for(key.as_bytes()))
        .body(Default::default())
        .expect("101")
}

/// Echoes until the peer closes, recording what came through.
async fn echo<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: T, state: &WsState) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = io.read(&mut buf).await {
        lock(&state.tunnel).extend_from_slice(&buf[..n]);
        if io.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = io.shutdown().await;
}

fn accept_for(key: &[u8]) -> String {
    use base64::Engine;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

// ------------------------------------------------------------------ caller

/// A raw caller connection, past its response head.
struct Caller {
    tcp: TcpStream,
    head: RawResponse,
    /// Bytes read after the head.
    early: Vec<u8>,
}

/// Connects, writes `bytes`, reads the first response head.
/// A WebSocket tunnel through `proxy`, checked with one frame each way.
fn open_tunnel(proxy: &Proxy) -> Caller {
    let mut caller = connect(
        proxy,
        handshake("GET", "/chat/ws", "HTTP/1.1", "").as_bytes(),
    );
    assert_eq!(caller.head.status, 101);
    let ping = frame("ping");
    caller.send(&ping);
    assert_eq!(caller.read(ping.len()), ping);
    caller
}

fn connect(proxy: &Proxy, bytes: &[u8]) -> Caller {
    let mut tcp = TcpStream::connect(proxy.addr()).expect("connect");
    tcp.set_read_timeout(Some(READ_LIMIT)).expect("timeout");
    tcp.write_all(bytes).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let split = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tcp.read(&mut buf).expect("read a response head");
        assert!(n > 0, "closed before a response head: {got:?}");
        got.extend_from_slice(&buf[..n]);
    };
    let (head, rest) = got.split_at(split);
    let head = parse_responses(head).pop().expect("a response head");
    Caller {
        tcp,
        head,
        early: rest.to_vec(),
    }
}

impl Caller {
    /// Reads exactly `n` tunnel bytes (counting any read with the head).
    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.early);
        let mut rest = vec![0u8; n.saturating_sub(out.len())];
        self.tcp.read_exact(&mut rest).expect("tunnel bytes");
        out.extend_from_slice(&rest);
        out
    }
    fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("tunnel write");
    }
    /// Reads until the proxy closes; the bytes read meanwhile.
    fn until_closed(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.early);
        let _ = self.tcp.read_to_end(&mut out);
        out
    }
}

/// A masked WebSocket text frame, as a browser sends it.
fn frame(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81, 0x80 | u8::try_from(text.len()).expect("short frame")];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

// ------------------------------------------------------------------- tests

#[test]
fn websocket_tunnel_crosses_with_the_injected_credential_and_one_record() {
    let up = WsUpstream::start(false);
    let proxy = start(&up.url());
    let mut caller = connect(
        &proxy,
        handshake("GET", "/chat/ws?room=7", "HTTP/1.1", "").as_bytes(),
    );
    let head = &caller.head;
    assert_eq!(head.status, 101, "{head:?}");
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert_eq!(head.header("connection"), Some("upgrade"));
    assert_eq!(head.header("sec-websocket-accept"), Some(WS_ACCEPT));
    assert_eq!(head.header("content-length"), None);
    let id = head.header("x-request-id").expect("request id").to_string();

    // Frames cross both ways untouched, including bytes an HTTP parser would
    // read as framing or as a request.
    let hello = frame("hello");
    caller.send(&hello);
    assert_eq!(caller.read(hello.len()), hello);
    let tricky = [
        b"GET /chat/plain HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            .as_slice(),
        &[0u8, 0xff, b'\r', b'\n'].repeat(20_000),
    ]
    .concat();
    caller.send(&tricky);
    assert_eq!(caller.read(tricky.len()), tricky);

    // The upstream saw one handshake: its credential, never the caller's key.
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let seen = &seen[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("GET", "/v1/ws?room=7")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("connection"), Some("upgrade"));
    assert_eq!(seen.header("sec-websocket-key"), Some(WS_KEY));
    assert_eq!(seen.header("sec-websocket-version"), Some("13"));
    assert_eq!(seen.header("x-request-id"), Some(id.as_str()));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(up.tunnel(), [hello.clone(), tricky.clone()].concat());

    // One crossing record, written at the 101.
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["request_id"], id.as_str());
    assert_eq!(
        (r["route"].as_str(), r["client"].as_str()),
        (Some("ws"), Some("desk"))
    );
    assert_eq!(
        (r["status"].as_u64(), r["upstream_status"].as_u64()),
        (Some(101), Some(101))
    );
    assert_eq!(r["outcome"], "forwarded");
    assert_eq!(r["path"], "/v1/ws?room=");

    // The caller hangs up: the tunnel closes and its bytes are counted.
    drop(caller);
    assert!(
        proxy.wait_logs(READ_LIMIT, |l| l.contains("tunnel closed")),
        "{}",
        proxy.logs()
    );
    let moved = (hello.len() + tricky.len()) as u64;
    let metrics = proxy.admin("/metrics").text();
    for (direction, stage) in [
        ("request", "in"),
        ("request", "out"),
        ("response", "in"),
        ("response", "out"),
    ] {
        let line = format!(
            "customs_bytes_total{{direction=\"{direction}\",integration=\"chat\",stage=\"{stage}\"}} {moved}"
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    // The crossing log keeps what went through, in the same chain.
    let end = tunnel_end(&proxy);
    assert_eq!(end["integration"], "chat");
    assert_eq!(end["route"], "ws");
    assert_eq!(end["request_id"], id.as_str());
    assert_eq!(end["why"], "closed");
    let both = (
        end["bytes_to_upstream"].as_u64(),
        end["bytes_to_caller"].as_u64(),
    );
    assert_eq!(both, (Some(moved), Some(moved)));
    assert!(
        proxy
            .verify_chain("audit.jsonl")
            .contains("intact: 2 records")
    );
    let text = proxy.logs() + &proxy.read("audit.jsonl");
    assert!(
        !text.contains(KEY) && !text.contains(SECRET),
        "secret logged: {text}"
    );
    assert!(!text.contains("room=7"), "query value logged: {text}");
}

/// The `tunnel_closed` event of the one tunnel in the crossing log.
fn tunnel_end(proxy: &Proxy) -> serde_json::Value {
    let records = proxy.read_jsonl("audit.jsonl").into_iter();
    let mut ends: Vec<_> = records.filter(|r| r["event"] == "tunnel_closed").collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    ends.remove(0)
}

/// Bytes a caller sends before the 101 are held back: the upstream gets them
/// only inside the tunnel, after it switched (never as HTTP).
#[test]
fn bytes_sent_before_the_101_cross_only_after_the_switch() {
    let up = WsUpstream::start(false);
    let proxy = start(&up.url());
    let early = [
        frame("early").as_slice(),
        b"GET /chat/plain HTTP/1.1\r\nHost: p\r\n\r\n",
    ]
    .concat();
    let request = [
        handshake("GET", "/chat/ws", "HTTP/1.1", "").as_bytes(),
        &early,
    ]
    .concat();
    let mut caller = connect(&proxy, &request);
    assert_eq!(caller.head.status, 101);
    assert_eq!(caller.read(early.len()), early);
    assert_eq!(
        up.requests().len(),
        1,
        "the early bytes were not read as a request"
    );
    assert_eq!(up.tunnel(), early);
    assert_eq!(proxy.crossings("audit.jsonl").len(), 1);
}

/// When the upstream declines, its answer is relayed and the connection
/// closes: bytes sent after the handshake are never read as HTTP.
#[test]
fn a_declined_upgrade_closes_the_connection() {
    let up = WsUpstream::start(true);
    let proxy = start(&up.url());
    let smuggled = "GET /chat/plain HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n";
    let request = handshake("GET", "/chat/ws", "HTTP/1.1", "") + smuggled;
    let bytes = raw_exchange(proxy.addr(), request.as_bytes());
    let replies = parse_responses(&bytes);
    assert_eq!(replies.len(), 1, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(replies[0].status, 403);
    assert_eq!(replies[0].header("connection"), Some("close"));
    assert_eq!(replies[0].body, br#"{"error":"nope"}"#);
    assert_eq!(up.requests().len(), 1, "the pipelined request was served");
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], 403);
}

/// Every upgrade customs does not allow is a 400 that closes the connection,
/// before anything reaches the upstream.
#[test]
fn upgrades_outside_the_contract_are_refused_before_the_upstream() {
    let up = WsUpstream::start(false);
    let proxy = start(&up.url());
    // (An h2c upgrade is not one: it is answered in HTTP/1.1, see
    // tests/interop.rs.)
    let cases: [(&str, String); 6] = [
        (
            "route without upgrade",
            handshake("GET", "/chat/plain", "HTTP/1.1", ""),
        ),
        (
            "POST",
            handshake("POST", "/chat/ws", "HTTP/1.1", "Content-Length: 0\r\n"),
        ),
        ("HTTP/1.0", handshake("GET", "/chat/ws", "HTTP/1.0", "")),
        (
            "not named in Connection",
            handshake("GET", "/chat/ws", "HTTP/1.1", "")
                .replace("Connection: Upgrade", "Connection: keep-alive"),
        ),
        (
            "no key",
            handshake("GET", "/chat/ws", "HTTP/1.1", "")
                .replace(&format!("Sec-WebSocket-Key: {WS_KEY}\r\n"), ""),
        ),
        (
            "body carrying a request",
            handshake("GET", "/chat/ws", "HTTP/1.1", "Content-Length: 38\r\n")
                + "GET /chat/plain HTTP/1.1\r\nHost: p\r\n\r\n",
        ),
    ];
    for (case, request) in cases {
        // A pipelined request behind each must never be served.
        let request = request + "GET /chat/plain HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n";
        let bytes = raw_exchange(proxy.addr(), request.as_bytes());
        let replies = parse_responses(&bytes);
        assert_eq!(
            replies.len(),
            1,
            "{case}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let r = &replies[0];
        assert_eq!(
            r.status,
            400,
            "{case}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("connection"), Some("close"), "{case}");
        let err: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON error");
        assert_eq!(err["error"], "bad_request", "{case}");
    }
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 6);
    assert!(
        records.iter().all(|r| r["outcome"] == "rejected"),
        "{records:?}"
    );
}

/// HTTP/2 cannot carry an HTTP/1 upgrade: the request crosses as a plain GET
/// (hyper drops connection-specific headers), so the 101 this upstream sends
/// for any WebSocket key is unrequested: a 502.
#[test]
fn h2_requests_never_switch() {
    let up = WsUpstream::start(false);
    let proxy = start(&up.url());
    let headers = [
        ("x-api-key", KEY),
        ("upgrade", "websocket"),
        ("sec-websocket-key", WS_KEY),
        ("sec-websocket-version", "13"),
    ];
    let r = send_h2(&proxy.url(), "GET", "/chat/ws", &headers, b"");
    assert_eq!(r.status.as_u16(), 502, "{}", r.text());
    assert_eq!(r.json()["error"], "upstream_unavailable");
    assert_eq!(up.requests().len(), 1);
    for seen in up.requests() {
        assert_eq!(seen.header("upgrade"), None, "{seen:?}");
    }
    assert!(up.tunnel().is_empty());
}

/// A 101 to another protocol, or one that does not answer the caller's key,
/// is a 502: no 101 and none of the bytes behind it reach the caller.
#[test]
fn a_wrong_switch_from_the_upstream_is_a_502() {
    let canary = "{\"ssn\":\"078-05-1120\"}";
    let cases = [
        (
            "other protocol",
            format!("Upgrade: h2c\r\nSec-WebSocket-Accept: {WS_ACCEPT}"),
        ),
        (
            "forged accept",
            "Upgrade: websocket\r\nSec-WebSocket-Accept: bm9wZQ==".to_string(),
        ),
        ("no accept", "Upgrade: websocket".to_string()),
    ];
    for (case, lines) in cases {
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n{lines}\r\n\r\n{canary}"
        );
        let up = Upstream::start(UpstreamOpts::new().raw(answer.into_bytes()));
        let proxy = start(&up.url());
        let bytes = raw_exchange(
            proxy.addr(),
            handshake("GET", "/chat/ws", "HTTP/1.1", "").as_bytes(),
        );
        let replies = parse_responses(&bytes);
        assert_eq!(
            replies.len(),
            1,
            "{case}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(replies[0].status, 502, "{case}");
        let err: serde_json::Value = serde_json::from_slice(&replies[0].body).expect("JSON error");
        assert_eq!(err["error"], "upstream_unavailable", "{case}");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("ssn"),
            "{case}: bytes leaked"
        );
        let records = proxy.crossings("audit.jsonl");
        assert_eq!(records.len(), 1, "{case}");
        assert_eq!(
            (
                records[0]["status"].as_u64(),
                records[0]["upstream_status"].as_u64()
            ),
            (Some(502), Some(101)),
            "{case}: the record keeps what the upstream answered"
        );
        assert_eq!(records[0]["outcome"], "upstream_error", "{case}");
    }
}

#[test]
fn an_idle_tunnel_is_closed() {
    let up = WsUpstream::start(false);
    let proxy = start_idle(&up.url(), "300ms");
    let mut caller = open_tunnel(&proxy);
    let started = Instant::now();
    assert!(caller.until_closed().is_empty());
    assert!(
        started.elapsed() < READ_LIMIT,
        "closed by the read limit, not the proxy"
    );
    assert!(proxy.wait_logs(READ_LIMIT, |l| l.contains("tunnel closed")
        && l.contains("idle")));
    assert_eq!(tunnel_end(&proxy)["why"], "idle");
}

#[test]
fn shutdown_closes_open_tunnels() {
    let up = WsUpstream::start(false);
    let mut proxy = start(&up.url());
    let mut caller = open_tunnel(&proxy);
    let started = Instant::now();
    let status = proxy.stop_gracefully();
    assert!(status.success(), "{status:?}");
    assert!(caller.until_closed().is_empty());
    // Well inside the 30 s drain: tunnels do not hold shutdown up.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Its end is in the log, before the log closed.
    let end = tunnel_end(&proxy);
    assert_eq!(end["why"], "shutdown");
    let ping = frame("ping").len() as u64;
    assert_eq!(end["bytes_to_upstream"].as_u64(), Some(ping));
    proxy.verify_chain("audit.jsonl");
}

/// Over a TLS listener (HTTP/1.1 by ALPN) the sniffer sees the plaintext
/// handshake and the tunnel runs inside TLS.
#[test]
fn a_tunnel_crosses_a_tls_listener() {
    let up = WsUpstream::start(false);
    let pki = Pki::new();
    let server = pki.server_cert(LOCAL);
    let config = config().replace(
        "listen: { address: 127.0.0.1:0 }",
        "listen: { address: 127.0.0.1:0, tls: { cert: tls/server.pem, key: tls/server.key } }",
    );
    let proxy = setup(&up.url(), "60s")
        .file("tls/server.pem", &server.0)
        .file("tls/server.key", &server.1)
        .start(&config, &[]);
    let mut tls = pki.client_config(None);
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(proxy.addr()).expect("connect");
    tcp.set_read_timeout(Some(READ_LIMIT)).expect("timeout");
    let name = rustls_pki_types::ServerName::IpAddress(proxy.addr().ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(tls), name).expect("TLS client");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let hello = frame("over tls");
    let request = [
        handshake("GET", "/chat/ws", "HTTP/1.1", "").as_bytes(),
        &hello,
    ]
    .concat();
    stream.write_all(&request).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    };
    assert_eq!(parse_status(&got[..head_end]), 101);
    while got.len() < head_end + hello.len() {
        let n = stream.read(&mut buf).expect("read echo");
        assert!(n > 0, "closed before the echo");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[head_end..], hello.as_slice());
    assert_eq!(up.tunnel(), hello);
}

/// An HTTPS upstream that would rather speak h2: the handshake still goes
/// over HTTP/1.1 (an h2 connection cannot switch protocols), with the
/// upstream's certificate checked against the integration's `ca`, and the
/// tunnel runs inside that TLS session.
#[test]
fn a_tunnel_reaches_an_https_upstream_over_http1() {
    let pki = Pki::new();
    let up = WsUpstream::start_tls(&pki.server_cert(LOCAL));
    let config = config().replace(
        "url: \"{upstream}/v1\"",
        "url: \"{upstream}/v1\"\n      ca: ca.pem",
    );
    let proxy = setup(&up.url(), "60s")
        .file("ca.pem", pki.ca_pem())
        .start(&config, &[]);
    let mut caller = open_tunnel(&proxy);
    let hello = frame("over https");
    caller.send(&hello);
    assert_eq!(caller.read(hello.len()), hello);
    // The upgrade client offers no ALPN, so h2 is never negotiated.
    assert_eq!(up.alpn(), vec![None]);
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let auth = seen[0].header("authorization");
    assert_eq!(auth, Some(format!("Bearer {SECRET}").as_str()));
    assert_eq!(up.tunnel(), [frame("ping"), hello].concat());
}
