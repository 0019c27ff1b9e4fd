//! Issue 17: a `pass` body streams through both ways — in constant memory,
//! over HTTP/1.1 and HTTP/2 — and its crossing's one record, written when
//! the crossing ends, says how many bytes crossed and how it ended. Bodies
//! are generated on the fly (a repeated pseudo-random block) by the test
//! upstream (downloads) or the caller (uploads), and the far end checks
//! every byte it receives against the same sequence.

mod common;
use common::*;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1 << 20;
/// Size of the large download; `STREAM_TEST_BYTES` overrides it (e.g. 1 GiB).
fn large() -> u64 {
    std::env::var("STREAM_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256 * MIB)
}
/// Peak resident memory the proxy may reach while streaming.
const RSS_LIMIT_KB: u64 = 100 * 1024;

const BLOCK: usize = 64 * 1024;
/// The body's repeating block: xorshift bytes, so a misplaced chunk shows.
static PATTERN: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
});

/// Whether `data`, found at `offset` of a body, is the generated sequence.
fn matches_pattern(offset: u64, data: &[u8]) -> bool {
    let mut i = 0;
    while i < data.len() {
        let pos = ((offset + i as u64) % BLOCK as u64) as usize;
        let n = (BLOCK - pos).min(data.len() - i);
        if data[i..i + n] != PATTERN[pos..pos + n] {
            return false;
        }
        i += n;
    }
    true
}

/// How the generating upstream answers.
#[derive(Clone, Copy)]
enum Script {
    /// `len` bytes with a matching Content-Length.
    Whole { len: u64 },
    /// Declares `declared` bytes, sends `sent`, then closes.
    Short { declared: u64, sent: u64 },
    /// Sends `sent` bytes of a chunked body, then goes silent.
    Stall { sent: u64 },
    /// A close-delimited body that goes on until the reader goes away.
    Endless,
}

/// A raw HTTP/1.1 upstream generating bodies by [`Script`]; stops when dropped.
struct Generator {
    url: String,
    hits: Arc<AtomicUsize>,
    /// Set once a write failed: the proxy closed the connection.
    closed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn generator(script: Script, extra: &'static str) -> Generator {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (hits, closed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (h, c) = (hits.clone(), closed.clone());
    let task = rt().spawn(async move {
        let listener = TcpListener::from_std(listener).expect("listener");
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let (h, c) = (h.clone(), c.clone());
            conns.spawn(async move {
                if answer(tcp, script, extra, &h).await.is_err() {
                    c.store(true, Ordering::SeqCst);
                }
            });
        }
    });
    Generator {
        url,
        hits,
        closed,
        task,
    }
}

/// Serves requests on one connection by `script`.
async fn answer(
    mut tcp: TcpStream,
    script: Script,
    extra: &str,
    hits: &AtomicUsize,
) -> std::io::Result<()> {
    while read_head(&mut tcp).await? {
        hits.fetch_add(1, Ordering::SeqCst);
        let framing = match script {
            Script::Whole { len } => format!("content-length: {len}\r\n"),
            Script::Short { declared, .. } => format!("content-length: {declared}\r\n"),
            Script::Stall { .. } => "transfer-encoding: chunked\r\n".into(),
            Script::Endless => "connection: close\r\n".into(),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n{extra}{framing}\r\n"
        );
        tcp.write_all(head.as_bytes()).await?;
        match script {
            Script::Whole { len } => write_pattern(&mut tcp, len, false).await?,
            Script::Short { sent, .. } => return write_pattern(&mut tcp, sent, false).await,
            Script::Stall { sent } => {
                write_pattern(&mut tcp, sent, true).await?;
                tokio::time::sleep(Duration::from_secs(30)).await;
                return Ok(());
            }
            Script::Endless => return write_pattern(&mut tcp, u64::MAX, false).await,
        }
    }
    Ok(())
}

/// Reads one request head (bodiless GETs); false when the connection ended.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(false);
        }
        head.push(byte[0]);
    }
    Ok(true)
}

async fn write_pattern(tcp: &mut TcpStream, len: u64, chunked: bool) -> std::io::Result<()> {
    let mut sent = 0u64;
    while sent < len {
        let pos = (sent % BLOCK as u64) as usize;
        let n = ((BLOCK - pos) as u64).min(len - sent) as usize;
        if chunked {
            tcp.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        tcp.write_all(&PATTERN[pos..pos + n]).await?;
        if chunked {
            tcp.write_all(b"\r\n").await?;
        }
        sent += n as u64;
    }
    tcp.flush().await
}

/// What a caller got from a download.
#[derive(Debug)]
struct Download {
    status: u16,
    headers: http::HeaderMap,
    received: u64,
    intact: bool,
    /// Set when the body ended in an error rather than cleanly.
    broken: Option<String>,
}

/// GETs `url` over HTTP/1.1 or h2c, checking each byte as it arrives and
/// keeping none; stops reading (drops the body) after `stop_after` bytes.
fn download(url: &str, h2: bool, stop_after: Option<u64>) -> Download {
    let uri: http::Uri = url.parse().expect("uri");
    block_on(async move {
        let response = client(h2).get(uri).await.expect("response head");
        let (parts, mut body) = response.into_parts();
        let mut got = Download {
            status: parts.status.as_u16(),
            headers: parts.headers,
            received: 0,
            intact: true,
            broken: None,
        };
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        got.intact &= matches_pattern(got.received, data);
                        got.received += data.len() as u64;
                    }
                }
                Err(e) => {
                    got.broken = Some(e.to_string());
                    break;
                }
            }
            if stop_after.is_some_and(|n| got.received >= n) {
                break;
            }
        }
        got
    })
}

/// GETs `url` keeping the body; the error when it broke off.
fn fetch(url: &str, h2: bool) -> (Vec<u8>, Option<String>) {
    let uri: http::Uri = url.parse().expect("uri");
    block_on(async move {
        // A body that breaks off at once can take its head with it.
        let response = match client(h2).get(uri).await {
            Ok(response) => response,
            Err(e) => return (Vec::new(), Some(e.to_string())),
        };
        let (mut body, mut got) = (response.into_body(), Vec::new());
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => got.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, None)
    })
}

/// An HTTP/1.1 or h2c (prior knowledge) client that hands bodies over unread.
fn client(h2: bool) -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http()
}

fn start(upstream: &str, limits: &str) -> Proxy {
    let routes =
        ["- { id: files, methods: [GET, PUT], path: /files/**, request: pass, response: pass }"];
    let config = demo_config(&routes).replace(
        "policies: policies/\n",
        &format!("policies: policies/\nlimits: {{ {limits} }}\n"),
    );
    Proxy::builder().upstream(upstream).start(&config, &[])
}

/// Peak resident set of a process, in KiB (`VmHWM`).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The `n` crossing records, once all are written.
fn records(proxy: &Proxy, n: usize) -> Vec<serde_json::Value> {
    proxy.eventually("the crossing records", |p| {
        let records = p.crossings("audit.jsonl");
        (records.len() >= n).then_some(records)
    })
}

#[test]
fn a_large_pass_download_streams_in_constant_memory_over_http1_and_http2() {
    let len = large();
    let up = generator(Script::Whole { len }, "content-encoding: gzip\r\n");
    // Far below the body: only streaming lets it through.
    let proxy = start(&up.url, "max_body_bytes: 1MiB, max_buffered_bytes: 1MiB");
    let url = format!("{}/demo/files/export.bin", proxy.url());
    for h2 in [false, true] {
        let started = Instant::now();
        let got = download(&url, h2, None);
        let took = started.elapsed();
        eprintln!(
            "h2={h2}: {len} bytes in {took:?} ({:.0} MiB/s)",
            len as f64 / MIB as f64 / took.as_secs_f64()
        );
        assert_eq!(got.status, 200);
        assert_eq!(got.broken, None);
        assert_eq!(got.received, len);
        assert!(got.intact, "the body arrived altered");
        // Nothing decodes a pass body: its coding passes untouched.
        assert_eq!(got.headers["content-encoding"], "gzip");
    }
    assert_streamed_in_constant_memory(&proxy, "response", len);
    proxy.verify_chain("audit.jsonl");
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let out = [("direction", "response"), ("stage", "out")];
    assert_eq!(
        metrics::value(&m, "customs_bytes_total", &out),
        Some(2.0 * len as f64)
    );
}

#[test]
fn bytes_are_counted_while_they_cross() {
    let up = generator(Script::Stall { sent: 3 * MIB }, "");
    // The caller reads on until the stall ends the stream: it does not
    // leave (which would end the crossing) while the metrics are checked.
    let proxy = start(&up.url, "stream_idle_timeout: 5s");
    let url = format!("{}/demo/files/slow", proxy.url());
    let caller = std::thread::spawn(move || download(&url, false, None));
    let out = [("direction", "response"), ("stage", "out")];
    proxy.eventually("streamed bytes in the metrics", |p| {
        let m = metrics::parse(&p.admin("/metrics").text());
        (metrics::value(&m, "customs_bytes_total", &out) == Some(3.0 * MIB as f64)).then_some(())
    });
    // The crossing has not ended: no record yet.
    assert!(proxy.crossings("audit.jsonl").is_empty());
    let got = caller.join().expect("caller");
    assert_eq!(got.received, 3 * MIB);
    assert!(got.broken.is_some(), "{got:?}");
}

#[test]
fn the_caller_leaving_mid_stream_is_recorded_and_the_upstream_closed() {
    let up = generator(Script::Endless, "");
    let proxy = start(&up.url, "");
    let url = format!("{}/demo/files/endless", proxy.url());
    for h2 in [false, true] {
        let got = download(&url, h2, Some(4 * MIB));
        assert!(got.intact && got.received >= 4 * MIB, "{got:?}");
    }
    let records = records(&proxy, 2);
    for r in &records {
        assert_eq!(r["outcome"], "rejected", "{r}");
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("client disconnected mid-stream"), "{r}");
        let crossed = r["response"]["bytes_out"].as_u64().unwrap_or(0);
        assert!(crossed >= 4 * MIB, "{r}");
    }
    proxy.verify_chain("audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !up.closed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the upstream was never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_upstream_breaking_off_is_recorded_and_the_caller_sees_a_broken_body() {
    let up = generator(
        Script::Short {
            declared: 8 * MIB,
            sent: 2 * MIB,
        },
        "",
    );
    let proxy = start(&up.url, "max_body_bytes: 1MiB");
    let url = format!("{}/demo/files/cut", proxy.url());
    for h2 in [false, true] {
        let got = download(&url, h2, None);
        assert_eq!(got.status, 200);
        assert!(got.broken.is_some(), "a cut body ended cleanly: {got:?}");
        assert!(got.received <= 2 * MIB && got.intact, "{got:?}");
    }
    for r in &records(&proxy, 2) {
        assert_eq!(r["outcome"], "upstream_error", "{r}");
        assert_eq!(r["response"]["bytes_out"], 2 * MIB, "{r}");
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("after 2097152 bytes"), "{r}");
    }
    proxy.verify_chain("audit.jsonl");
}

#[test]
fn a_stalled_stream_ends_at_the_idle_timeout() {
    let up = generator(Script::Stall { sent: MIB }, "");
    let proxy = start(&up.url, "stream_idle_timeout: 300ms, upstream_timeout: 60s");
    let url = format!("{}/demo/files/stall", proxy.url());
    let started = Instant::now();
    let got = download(&url, false, None);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(got.broken.is_some(), "{got:?}");
    assert_eq!(got.received, MIB);
    let r = &records(&proxy, 1)[0];
    assert_eq!(r["outcome"], "upstream_error", "{r}");
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stream_idle_timeout"), "{r}");
    assert_eq!(r["response"]["bytes_out"], MIB);
}

#[test]
fn max_pass_bytes_ends_or_refuses_a_body_over_it() {
    // Declared over the limit: refused before anything is sent.
    let up = generator(Script::Whole { len: 4 * MIB }, "");
    let proxy = start(&up.url, "max_body_bytes: 1MiB, max_pass_bytes: 2MiB");
    let got = download(&format!("{}/demo/files/big", proxy.url()), false, None);
    assert_eq!(got.status, 502);
    let r = &records(&proxy, 1)[0];
    assert_eq!(r["outcome"], "refused", "{r}");
    drop(proxy);

    // Found over the limit as it streams: the stream breaks off there.
    let up = generator(Script::Endless, "");
    let proxy = start(&up.url, "max_pass_bytes: 1MiB");
    let got = download(&format!("{}/demo/files/big", proxy.url()), true, None);
    assert!(got.broken.is_some(), "{got:?}");
    assert!(got.received <= MIB, "{got:?}");
    let r = &records(&proxy, 1)[0];
    assert_eq!(r["outcome"], "refused", "{r}");
    assert!(r["response"]["bytes_out"].as_u64() <= Some(MIB), "{r}");
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_pass_bytes"), "{r}");
}

#[test]
fn a_failing_log_under_on_failure_refuse_stops_streams_before_they_start() {
    let up = generator(Script::Whole { len: 4 * MIB }, "");
    let routes =
        ["- { id: files, methods: [GET], path: /files/**, request: pass, response: pass }"];
    // Writes to /dev/full fail: the first crossing's record finds it out.
    let config = demo_config(&routes)
        .replace("{dir}/audit.jsonl", "/dev/full")
        .replace(
            "policies: policies/\n",
            "policies: policies/\nlimits: { max_body_bytes: 1MiB }\n",
        );
    let proxy = Proxy::builder().upstream(&up.url).start(&config, &[]);
    let url = format!("{}/demo/files/x", proxy.url());
    let _first = download(&url, false, None);
    proxy.eventually("the log known to fail", |p| {
        (p.admin("/readyz").status == 503).then_some(())
    });
    let hits = up.hits.load(Ordering::SeqCst);
    for h2 in [false, true] {
        let got = download(&url, h2, None);
        assert_eq!(got.status, 503, "{got:?}");
        assert_eq!(got.headers["content-type"], "application/json");
    }
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        hits,
        "a stream started unaudited"
    );
}

#[test]
fn an_echoed_credential_in_a_streamed_body_never_reaches_the_caller() {
    const TOKEN: &str = "tok/Stream9+Echo";
    let echoed = format!("{}{TOKEN}{}", "a".repeat(300_000), "b".repeat(300_000));
    // Escaped as JSON would spell it, at the very end of the body.
    let escaped = format!("{}tok\\/Stream9+Echo", "c".repeat(300_000));
    let clean = "d".repeat(300_000);
    let up = Upstream::start(UpstreamOpts::new().handler(move |rec| {
        let body = match rec.uri.as_str() {
            "/files/echo" => echoed.clone(),
            "/files/escaped" => escaped.clone(),
            _ => clean.clone(),
        };
        http::Response::builder()
            .header("content-type", "application/octet-stream")
            .body(http_body_util::Full::new(Bytes::from(body)))
            .expect("response")
    }));
    let config = demo_config(&[
        "- { id: files, methods: [GET], path: /files/**, request: pass, response: pass }",
    ])
    .replace(
        "upstream: { url: \"{upstream}\" }",
        "upstream: { url: \"{upstream}\", inject: { header: Authorization, value: \"Bearer ${file:token}\" } }",
    )
    // Far below the bodies: they stream, scanned as they go.
    .replace("policies: policies/\n", "policies: policies/\nlimits: { max_body_bytes: 64KiB }\n");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("token", TOKEN)
        .start(&config, &[]);
    for (path, h2) in [
        ("/demo/files/echo", false),
        ("/demo/files/echo", true),
        ("/demo/files/escaped", false),
    ] {
        let (got, broken) = fetch(&format!("{}{path}", proxy.url()), h2);
        // The head went out; the body breaks off before the credential.
        assert!(
            broken.is_some(),
            "{path}: a body with the credential ended cleanly"
        );
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains("Stream9"),
            "{path}: the credential reached the caller"
        );
    }
    let reply = send(&proxy.url(), "GET", "/demo/files/clean", &[], b"");
    assert_eq!(reply.body.len(), 300_000);
    let records = records(&proxy, 4);
    for r in &records[..3] {
        assert_eq!(r["outcome"], "refused", "{r}");
        assert_eq!(r["response"]["actions"]["credential-echo"], 1, "{r}");
        let sent = r["response"]["bytes_out"].as_u64().unwrap_or(u64::MAX);
        assert!(sent <= 300_000, "{r}");
    }
    assert_eq!(records[3]["outcome"], "forwarded");
    assert_eq!(records[3]["response"]["bytes_out"], 300_000);
    proxy.verify_chain("audit.jsonl");
}

// --- uploads -----------------------------------------------------------------

/// The pattern as shared bytes, so an upload body slices it without copying.
static PATTERN_BYTES: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(PATTERN.clone()));

/// How a caller's upload goes.
#[derive(Clone, Copy, Debug)]
struct Sending {
    /// Bytes of the body (the declared length when `declared`).
    len: u64,
    /// Sent with a `Content-Length`, or of unknown length (chunked, or an
    /// HTTP/2 body without one).
    declared: bool,
    /// Stops after this many bytes: breaks off, or goes silent.
    stop: Option<(u64, Stop)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Break,
    Stall,
}

/// An upload body generating the pattern.
struct Pattern {
    sent: u64,
    plan: Sending,
}

impl hyper::body::Body for Pattern {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let end = self.plan.stop.map_or(self.plan.len, |(at, _)| at);
        if self.sent >= end {
            return match self.plan.stop {
                Some((_, Stop::Break)) => {
                    Poll::Ready(Some(Err(std::io::Error::other("the caller breaks off"))))
                }
                // Never woken: the proxy has to end it.
                Some((_, Stop::Stall)) => Poll::Pending,
                None => Poll::Ready(None),
            };
        }
        let pos = (self.sent % BLOCK as u64) as usize;
        let n = ((BLOCK - pos) as u64).min(end - self.sent) as usize;
        self.sent += n as u64;
        Poll::Ready(Some(Ok(Frame::data(PATTERN_BYTES.slice(pos..pos + n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.plan.stop.is_none() && self.sent >= self.plan.len
    }

    fn size_hint(&self) -> SizeHint {
        match self.plan.declared {
            true => SizeHint::with_exact(self.plan.len - self.sent),
            false => SizeHint::default(),
        }
    }
}

/// PUTs a generated body to `url` over HTTP/1.1 or h2c within `within`:
/// the answer's status and body, or why there was none.
fn upload(url: &str, h2: bool, plan: Sending, within: Duration) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().expect("uri");
    block_on(async move {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(h2)
            .build_http::<Pattern>();
        let request = http::Request::put(uri)
            .header("content-type", "application/octet-stream")
            .body(Pattern { sent: 0, plan })
            .expect("request");
        let exchange = async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await;
            let body = body.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(within, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {within:?}")))
    })
}

/// Whether an upload was answered with a status `expected` accepts, or
/// cut (the proxy may close before the caller reads its answer).
fn cut_or(got: &Result<(u16, String), String>, expected: impl Fn(u16) -> bool) -> bool {
    match got {
        Ok((status, _)) => expected(*status),
        Err(_) => true,
    }
}

/// What the upload sink saw of one request body.
#[derive(Debug, Clone, Default)]
struct Sunk {
    received: u64,
    intact: bool,
    /// The body ended in an error, not cleanly.
    broken: bool,
}

/// An HTTP/1.1 upstream that reads request bodies as they arrive, checking
/// each byte against the pattern and keeping none; answers
/// `{"received":N,"intact":B}`. Stops when dropped.
struct Sink {
    url: String,
    seen: Arc<Mutex<Vec<Sunk>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a body as broken unless it was read to its end (the sink's
/// handler can be dropped with its connection).
struct Absorbing {
    got: Sunk,
    ended: bool,
    seen: Arc<Mutex<Vec<Sunk>>>,
}

impl Drop for Absorbing {
    fn drop(&mut self) {
        self.got.broken |= !self.ended;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(self.got.clone());
    }
}

fn sink() -> Sink {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = seen.clone();
    let task = rt().spawn(async move {
        let listener = TcpListener::from_std(listener).expect("listener");
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            let service = hyper::service::service_fn(move |req| absorb(req, seen.clone()));
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new();
                let _ = conn.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    Sink { url, seen, task }
}

async fn absorb(
    req: http::Request<Incoming>,
    seen: Arc<Mutex<Vec<Sunk>>>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let mut body = req.into_body();
    let mut absorbing = Absorbing {
        got: Sunk {
            intact: true,
            ..Sunk::default()
        },
        ended: false,
        seen,
    };
    let got = &mut absorbing.got;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            got.broken = true;
            break;
        };
        if let Some(data) = frame.data_ref() {
            got.intact &= matches_pattern(got.received, data);
            got.received += data.len() as u64;
        }
    }
    let answer = format!(r#"{{"received":{},"intact":{}}}"#, got.received, got.intact);
    absorbing.ended = true;
    Ok(http::Response::new(Full::new(Bytes::from(answer))))
}

impl Sink {
    /// The first `n` bodies the sink has seen end, once it has.
    fn bodies(&self, n: usize) -> Vec<Sunk> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(Instant::now() < deadline, "the sink saw {seen:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Time a whole upload may take (1 GiB through a debug build included).
const UPLOAD_WITHIN: Duration = Duration::from_secs(600);

#[test]
fn a_large_pass_upload_streams_in_constant_memory_over_http1_and_http2() {
    let len = large();
    let sink = sink();
    // Far below the body: only streaming lets it through.
    let proxy = start(&sink.url, "max_body_bytes: 1MiB, max_buffered_bytes: 1MiB");
    let url = format!("{}/demo/files/import.bin", proxy.url());
    // HTTP/1.1 with a Content-Length; HTTP/2 of unknown length (streams
    // once it is found longer than max_body_bytes).
    for (h2, declared) in [(false, true), (true, false)] {
        let plan = Sending {
            len,
            declared,
            stop: None,
        };
        let started = Instant::now();
        let (status, body) = upload(&url, h2, plan, UPLOAD_WITHIN).expect("an answer");
        let took = started.elapsed();
        eprintln!(
            "upload h2={h2}: {len} bytes in {took:?} ({:.0} MiB/s)",
            len as f64 / MIB as f64 / took.as_secs_f64()
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!(r#"{{"received":{len},"intact":true}}"#));
    }
    assert!(sink.bodies(2).iter().all(|b| !b.broken && b.intact));
    assert_streamed_in_constant_memory(&proxy, "request", len);
    proxy.verify_chain("audit.jsonl");
    let m = metrics::parse(&proxy.admin("/metrics").text());
    for stage in ["in", "out"] {
        let labels = [("direction", "request"), ("stage", stage)];
        assert_eq!(
            metrics::value(&m, "customs_bytes_total", &labels),
            Some(2.0 * len as f64),
            "{stage}"
        );
    }
}

#[test]
fn the_caller_breaking_off_mid_upload_is_recorded_and_the_upstream_sees_a_broken_body() {
    let sink = sink();
    let proxy = start(&sink.url, "max_body_bytes: 1MiB");
    let url = format!("{}/demo/files/cut", proxy.url());
    for h2 in [false, true] {
        let plan = Sending {
            len: 8 * MIB,
            declared: true,
            stop: Some((2 * MIB, Stop::Break)),
        };
        let got = upload(&url, h2, plan, Duration::from_secs(20));
        assert!(cut_or(&got, |s| s >= 400), "{got:?}");
    }
    for body in sink.bodies(2) {
        assert!(body.broken, "a cut upload ended cleanly upstream: {body:?}");
        assert!(body.intact && body.received <= 2 * MIB, "{body:?}");
    }
    for r in &records(&proxy, 2) {
        assert_eq!(r["outcome"], "rejected", "{r}");
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("caller broke off the upload"), "{r}");
        let (read, sent) = (&r["request"]["bytes_in"], &r["request"]["bytes_out"]);
        assert!(
            read.as_u64() <= Some(2 * MIB) && sent.as_u64() <= read.as_u64(),
            "{r}"
        );
    }
    proxy.verify_chain("audit.jsonl");
}

#[test]
fn max_pass_bytes_ends_or_refuses_an_upload_over_it() {
    let sink = sink();
    let proxy = start(&sink.url, "max_body_bytes: 1MiB, max_pass_bytes: 2MiB");
    // Declared over the limit: refused before anything is sent.
    let head = "PUT /demo/files/big HTTP/1.1\r\nHost: p\r\nContent-Length: 4194304\r\n\r\n";
    let got = raw_exchange(proxy.addr(), head.as_bytes());
    assert_eq!(parse_status(&got), 413, "{}", String::from_utf8_lossy(&got));
    assert_eq!(sink.hits(), 0, "a refused upload reached the upstream");

    // Of unknown length, found over the limit as it streams: it breaks off there.
    let plan = Sending {
        len: 4 * MIB,
        declared: false,
        stop: None,
    };
    let got = upload(
        &format!("{}/demo/files/big", proxy.url()),
        true,
        plan,
        Duration::from_secs(20),
    );
    assert!(cut_or(&got, |s| s == 413), "{got:?}");
    let body = &sink.bodies(1)[0];
    assert!(body.broken && body.received <= 2 * MIB, "{body:?}");
    let records = records(&proxy, 2);
    assert_eq!(records[0]["status"], 413, "{}", records[0]);
    let r = &records[1];
    assert_eq!(r["outcome"], "rejected", "{r}");
    assert!(r["request"]["bytes_out"].as_u64() <= Some(2 * MIB), "{r}");
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_pass_bytes"), "{r}");
    proxy.verify_chain("audit.jsonl");
}

#[test]
fn a_stalled_upload_ends_at_the_idle_timeout() {
    let sink = sink();
    let limits = "max_body_bytes: 1MiB, stream_idle_timeout: 300ms, body_read_timeout: 60s";
    let proxy = start(&sink.url, limits);
    let plan = Sending {
        len: 8 * MIB,
        declared: true,
        stop: Some((2 * MIB, Stop::Stall)),
    };
    let started = Instant::now();
    let url = format!("{}/demo/files/stall", proxy.url());
    let got = upload(&url, false, plan, Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(10), "{got:?}");
    assert!(cut_or(&got, |s| s == 408), "{got:?}");
    let body = &sink.bodies(1)[0];
    assert!(body.broken && body.received <= 2 * MIB, "{body:?}");
    let r = &records(&proxy, 1)[0];
    assert_eq!(r["status"], 408, "{r}");
    assert_eq!(r["outcome"], "rejected", "{r}");
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("caller sent nothing for limits.stream_idle_timeout"),
        "{r}"
    );
    assert_eq!(r["request"]["bytes_in"], 2 * MIB, "{r}");
}

/// The proxy stayed under [`RSS_LIMIT_KB`] and wrote two forwarded records whose `side`
/// (`request` | `response`) is `pass` with `len` bytes in and out.
fn assert_streamed_in_constant_memory(proxy: &Proxy, side: &str, len: u64) {
    let peak = peak_rss_kb(proxy.pid());
    eprintln!("proxy VmHWM: {peak} kB");
    assert!(peak < RSS_LIMIT_KB, "the proxy peaked at {peak} kB");
    let records = records(proxy, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["outcome"], "forwarded", "{r}");
        assert_eq!(r["status"], 200);
        assert_eq!(r[side]["policy"], "pass");
        assert_eq!(r[side]["bytes_in"], len, "{r}");
        assert_eq!(r[side]["bytes_out"], len, "{r}");
    }
}
