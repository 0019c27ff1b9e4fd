//! Connection slots are bounded in time: a connection that never starts a request (an
//! HTTP/2 preface and SETTINGS are not one) is closed at `limits.header_timeout`, an HTTP/2
//! connection without open streams is closed at `limits.idle_timeout` (GOAWAY), and a caller
//! that stops reading is cut off at `limits.write_timeout`.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

fn start(up: &Upstream, limits: &str) -> Proxy {
    let config =
        demo_config(&["- { id: read, methods: [GET], path: /x, request: pass, response: pass }"])
            + limits;
    Proxy::builder()
        .upstream(&up.url())
        .env("RUST_LOG", "debug")
        .start(&config, &[])
}

/// Reads until the peer closes (or resets); the bytes read.
async fn read_to_close(tcp: &mut TcpStream) -> usize {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

#[test]
fn idle_h2c_connections_cannot_hold_the_slots() {
    let up = Upstream::json(200, "{}");
    let proxy = start(
        &up,
        "limits: { max_connections: 20, header_timeout: 1s, idle_timeout: 1s }\n",
    );
    let addr = proxy.addr();
    // Fill every slot (and more, waiting in the backlog) with connections that only
    // speak the preface and SETTINGS, then answer nothing.
    let idle = block_on(async move {
        let mut conns = Vec::new();
        for _ in 0..40 {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(&[PREFACE, SETTINGS].concat())
                .await
                .expect("preface");
            conns.push(tcp);
        }
        conns
    });
    // A legitimate caller is served once the idle ones are closed.
    let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.status, 200);
    let closed = block_on(async move {
        let mut closed = 0;
        for mut tcp in idle {
            read_to_close(&mut tcp).await;
            closed += 1;
        }
        closed
    });
    assert_eq!(closed, 40, "every idle connection was closed by the proxy");
}

#[test]
fn an_h2_connection_without_open_streams_gets_goaway_at_the_idle_timeout() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up, "limits: { idle_timeout: 1s }\n");
    let (addr, url) = (proxy.addr(), proxy.url());
    let ended = block_on(async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let io = hyper_util::rt::TokioIo::new(tcp);
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
        let conn = tokio::spawn(conn);
        let req = http::Request::get(format!("{url}/demo/x"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let status = sender.send_request(req).await.expect("response").status();
        assert_eq!(status, 200);
        let since = Instant::now();
        // The connection future ends when the server closes the connection.
        conn.await.expect("join").map(|()| since.elapsed())
    });
    let after = ended.expect("closed cleanly with GOAWAY");
    assert!(after < Duration::from_secs(30), "closed after {after:?}");
    // The line is written before the close, but read by the harness's
    // stderr thread: wait for it rather than race it.
    let logged = proxy.wait_logs(Duration::from_secs(10), |l| l.contains("idle; closing"));
    assert!(logged, "{}", proxy.logs());
}

#[test]
fn a_caller_that_reads_nothing_is_cut_off_at_the_write_timeout() {
    const BIG: usize = 9 << 20;
    let opts = UpstreamOpts::new().respond(
        200,
        &[("content-type", "application/octet-stream")],
        vec![b'x'; BIG],
    );
    let up = Upstream::start(opts);
    let proxy = start(&up, "limits: { write_timeout: 1s }\n");
    let addr = proxy.addr();
    let mut tcp = block_on(async move {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let get = "GET /demo/x HTTP/1.1\r\nhost: x\r\n\r\n";
        tcp.write_all(get.as_bytes()).await.expect("request");
        tcp
    });
    let cut = proxy.wait_logs(Duration::from_secs(20), |l| {
        l.contains("read nothing for 1s; connection closed")
    });
    assert!(cut, "the stalled write was cut: {}", proxy.logs());
    let read = block_on(async move { read_to_close(&mut tcp).await });
    assert!(
        read < BIG,
        "the caller did not get the whole body ({read} bytes)"
    );
}
