//! Proves the integration-test harness itself (tests/common). Only the
//! ignored smoke test needs a working `customs serve`.

mod common;

use common::*;
use http::{Response, StatusCode, Version};
use http_body_util::Full;
use std::time::{Duration, Instant};

#[test]
fn upstream_records_plain_http1_request() {
    let up = Upstream::start(UpstreamOpts::new().respond(201, &[("x-up", "1")], "created"));
    let headers = [
        ("x-dup", "a"),
        ("x-dup", "b"),
        ("content-type", "application/json"),
    ];
    let reply = send(&up.url(), "POST", "/a/b?x=1&y=2", &headers, br#"{"k":1}"#);

    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("x-up"), Some("1"));
    assert_eq!(reply.text(), "created");
    assert_eq!(up.hits(), 1);
    let r = up.last();
    assert_eq!(
        (r.method.as_str(), r.uri.as_str()),
        ("POST", "/a/b?x=1&y=2")
    );
    assert_eq!(r.version, Version::HTTP_11);
    assert_eq!(r.header_all("X-Dup"), ["a", "b"]);
    assert_eq!(r.header("host"), Some(up.addr().to_string().as_str()));
    assert_eq!(r.json(), serde_json::json!({"k": 1}));
    let wire = up.wire().concat();
    assert!(wire.starts_with(b"POST /a/b?x=1&y=2 HTTP/1.1\r\n"));
    assert!(wire.ends_with(br#"{"k":1}"#));
}

#[test]
fn handler_sees_the_recorded_request() {
    let up = Upstream::start(UpstreamOpts::new().handler(|r| {
        let body = format!("{} {} {}", r.method, r.uri, r.text());
        Response::new(Full::new(body.into()))
    }));
    let reply = send(&up.url(), "PUT", "/echo", &[], b"hi");
    assert_eq!(reply.text(), "PUT /echo hi");
}

#[test]
fn tls_upstream_with_pki_client_negotiates_alpn() {
    let pki = Pki::new();
    let up = Upstream::start(UpstreamOpts::new().tls(&pki.server_cert(LOCAL)));
    assert!(up.url().starts_with("https://127.0.0.1:"));

    let h2 = send_tls(
        &pki.client_config(None),
        &up.url(),
        "GET",
        "/t?q=1",
        &[],
        b"",
    );
    assert_eq!(h2.status, StatusCode::OK);
    assert_eq!(h2.version, Version::HTTP_2);

    let mut h1_only = pki.client_config(None);
    h1_only.alpn_protocols = vec![b"http/1.1".to_vec()];
    let h1 = send_tls(&h1_only, &up.url(), "GET", "/t", &[("x-a", "1")], b"");
    assert_eq!(h1.version, Version::HTTP_11);

    let recs = up.requests();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (recs[0].version, recs[0].uri.as_str()),
        (Version::HTTP_2, "/t?q=1")
    );
    assert_eq!(recs[1].header("x-a"), Some("1"));
}

#[test]
fn tls_rejects_untrusted_and_checks_client_certs() {
    let pki = Pki::new();
    let cert = pki.server_cert(LOCAL);
    let up = Upstream::start(UpstreamOpts::new().tls(&cert).client_ca(&pki.ca_pem()));
    let url = up.url();

    let ok = pki.client_cert("servicenow-dr", Some("spiffe://corp/servicenow"));
    let reply = send_tls(&pki.client_config(Some(&ok)), &url, "GET", "/", &[], b"");
    assert_eq!(reply.status, StatusCode::OK);

    let foreign = pki.other_ca_client_cert("servicenow-dr");
    let via = Via::Tls(pki.client_config(Some(&foreign)).into());
    assert!(request(&via, &url, "GET", "/", &[], b"").is_err());
    let via = Via::Tls(pki.client_config(None).into());
    assert!(request(&via, &url, "GET", "/", &[], b"").is_err());
    let via = Via::Tls(Pki::new().client_config(Some(&ok)).into());
    assert!(
        request(&via, &url, "GET", "/", &[], b"").is_err(),
        "server CA untrusted"
    );
    assert_eq!(up.hits(), 1);
}

#[test]
fn h2c_prior_knowledge() {
    let up = Upstream::start(UpstreamOpts::new().http2().json(200, r#"{"v":2}"#));
    let reply = send_h2(&up.url(), "POST", "/h2?a=b", &[("x-k", "v")], b"body");
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.json(), serde_json::json!({"v": 2}));
    let r = up.last();
    assert_eq!((r.version, r.uri.as_str()), (Version::HTTP_2, "/h2?a=b"));
    assert_eq!(r.authority, Some(up.addr().to_string()));
    assert_eq!((r.header("x-k"), &r.body[..]), (Some("v"), &b"body"[..]));
}

#[test]
fn raw_upstream_sends_bytes_verbatim() {
    let hostile: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let up = Upstream::start(UpstreamOpts::new().raw(hostile));
    let request = b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nX-Dup: 2\r\n\
        Content-Length: 5\r\n\r\nhello";
    let got = raw_exchange(up.addr(), request);
    assert_eq!(got, hostile);
    assert_eq!(up.wire(), [request.to_vec()]);
    let r = up.last();
    assert_eq!((r.method.as_str(), r.uri.as_str()), ("POST", "/x?y=1"));
    assert_eq!(r.header_all("x-dup"), ["1", "2"]);
    assert_eq!(&r.body[..], b"hello");

    let parsed = parse_responses(&got);
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].header("transfer-encoding"), Some("gzip, chunked"));
    assert_eq!(parsed[0].body, b"abc");
}

#[test]
fn raw_upstream_reads_chunked_requests_and_truncates() {
    let steps = vec![
        RawStep::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n0123456789".to_vec()),
        RawStep::Wait(Duration::from_millis(50)),
    ];
    let up = Upstream::start(UpstreamOpts::new().raw_steps(steps));
    let err = request(&Via::H1, &up.url(), "POST", "/c", &[], b"abc");
    assert!(err.is_err(), "a truncated body must surface as an error");
    assert_eq!(&up.last().body[..], b"abc");

    let chunked = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    raw_exchange(up.addr(), chunked);
    assert_eq!(&up.last().body[..], b"abcde");
}

#[tokio::test]
async fn helpers_work_inside_a_tokio_test() {
    let up = Upstream::json(200, "{}");
    assert_eq!(send(&up.url(), "GET", "/", &[], b"").status, StatusCode::OK);
    assert_eq!(
        send_h2(&up.url(), "GET", "/", &[], b"").version,
        Version::HTTP_2
    );
}

#[test]
fn upstream_delay_is_applied() {
    let up = Upstream::start(UpstreamOpts::new().delay(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(send(&up.url(), "GET", "/", &[], b"").status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn raw_exchange_tls_and_pipelined_parsing() {
    let pki = Pki::new();
    let up = Upstream::start(UpstreamOpts::new().tls(&pki.server_cert(LOCAL)).http1());
    let two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let got = raw_exchange_tls(up.addr(), &pki.client_config(None), two);
    let statuses: Vec<u16> = parse_responses(&got).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200]);
    assert_eq!(parse_status(&got), 200);
    let uris: Vec<String> = up.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/1", "/2"]);
}

#[test]
fn response_parser_handles_framing() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nnoHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-t: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let statuses: Vec<u16> = parse_responses(bytes).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [100, 400, 200, 204]);
    assert_eq!(parse_responses(bytes)[2].body, b"ok");
    assert!(parse_responses(b"").is_empty());
}

/// A stand-in for `customs serve`: proves the process plumbing without the binary.
const FAKE_SERVE: &str = r#"
trap 'echo "got HUP" >&2' HUP
trap 'echo "stopping" >&2; kill $pid 2>/dev/null; exit 0' TERM
echo "loaded $2" >&2
echo "ready proxy=127.0.0.1:4100 admin=127.0.0.1:4101"
for i in 1 2 3 4 5 6; do sleep 30 >/dev/null 2>&1 & pid=$!; wait $pid; done
"#;

#[test]
fn proxy_plumbing_with_fake_binary() {
    let mut proxy = Proxy::builder()
        .program(&["sh", "-c", FAKE_SERVE])
        .upstream("http://127.0.0.1:9")
        .file("certs/ca.pem", "PEM")
        .start(
            "url: {upstream}\naudit: {dir}/a.jsonl\n",
            &[("p.yaml", "dir: {dir}")],
        );
    assert_eq!(proxy.url(), "http://127.0.0.1:4100");
    assert_eq!(proxy.admin_url(), "http://127.0.0.1:4101");
    let dir = proxy.dir().display().to_string();
    let config = proxy.read("customs.yaml");
    assert_eq!(
        config,
        format!("url: http://127.0.0.1:9\naudit: {dir}/a.jsonl\n")
    );
    assert_eq!(proxy.read("policies/p.yaml"), format!("dir: {dir}"));
    assert_eq!(proxy.read("certs/ca.pem"), "PEM");
    assert!(proxy.wait_logs(Duration::from_secs(5), |l| l.contains("customs.yaml")));

    proxy.signal("HUP");
    assert!(proxy.wait_logs(Duration::from_secs(5), |l| l.contains("got HUP")));
    let status = proxy.stop_gracefully();
    assert!(status.success(), "{status}");
    assert!(proxy.logs().contains("stopping"));
}

#[test]
fn proxy_start_failure_is_reported() {
    let script = "echo 'bad config: nope' >&2; exit 2";
    let (status, stderr) = Proxy::builder()
        .program(&["sh", "-c", script])
        .start_expect_failure("{}", &[]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("bad config: nope"));
}

#[test]
#[should_panic(expected = "bad config: nope")]
fn proxy_start_panics_with_stderr() {
    let script = "echo 'bad config: nope' >&2; exit 2";
    Proxy::builder()
        .program(&["sh", "-c", script])
        .start("{}", &[]);
}

#[test]
fn smoke_get_crosses_the_proxy() {
    let up = Upstream::json(200, r#"{"hello":"world"}"#);
    let mut proxy = Proxy::builder().upstream(&up.url()).start(
        &demo_config(&[
            r#"- { id: all, methods: [GET], path: "/**", request: pass, response: pass }"#,
        ]),
        &[],
    );
    let reply = send(&proxy.url(), "GET", "/demo/items?x=1", &[], b"");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), serde_json::json!({"hello": "world"}));
    assert_eq!(up.hits(), 1);
    assert_eq!(up.last().uri, "/items?x=1");
    assert_eq!(proxy.admin("/healthz").status, StatusCode::OK);
    assert!(proxy.stop_gracefully().success());
}
