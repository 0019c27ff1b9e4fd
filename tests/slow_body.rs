//! Slow request bodies (attacks.md §K.75): a body trickled in holds a
//! connection no longer than `limits.body_read_timeout`, however steadily it
//! trickles; the caller gets 408 `request_timeout`, the connection closes and
//! nothing reaches the upstream.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DEADLINE: &str = "500ms";
/// Far beyond the deadline: the trickle would last this long.
const TRICKLE_FOR: Duration = Duration::from_secs(8);

fn start(upstream: &str) -> Proxy {
    let routes = ["- { id: post, methods: [POST], path: /in, request: pass, response: pass }"];
    let config = demo_config(&routes).replace(
        "policies: policies/\n",
        &format!("policies: policies/\nlimits: {{ body_read_timeout: {DEADLINE} }}\n"),
    );
    Proxy::builder().upstream(upstream).start(&config, &[])
}

/// Sends a head announcing 1000 body bytes, then one byte every 50 ms from
/// another thread; returns what came back and when the proxy closed.
fn trickle(proxy: &Proxy, head: &str) -> (Vec<u8>, Duration) {
    let mut tcp = TcpStream::connect(proxy.addr()).expect("connect");
    tcp.write_all(head.as_bytes()).expect("head");
    let mut writer = tcp.try_clone().expect("clone");
    let started = Instant::now();
    // The trickle is the attack itself, so this thread paces its writes.
    std::thread::spawn(move || {
        while started.elapsed() < TRICKLE_FOR && writer.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    tcp.set_read_timeout(Some(TRICKLE_FOR * 2))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    (got, started.elapsed())
}

#[test]
fn a_trickled_body_gets_408_and_the_connection_closes() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let heads = [
        "POST /demo/in HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        "POST /demo/in HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n",
    ];
    for head in heads {
        let (got, took) = trickle(&proxy, head);
        assert!(took < TRICKLE_FOR, "held open for {took:?}");
        let replies = parse_responses(&got);
        assert_eq!(replies.len(), 1, "{}", String::from_utf8_lossy(&got));
        let r = &replies[0];
        assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("connection"), Some("close"));
        let err: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON error");
        assert_eq!(err["error"], "request_timeout");
    }
    assert_eq!(up.hits(), 0, "a partial body reached the upstream");
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(
            (r["status"].as_u64(), r["outcome"].as_str()),
            (Some(408), Some("rejected"))
        );
    }

    // A body that arrives in time still crosses.
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/in",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits(), 1);
}
