//! Interoperability with ordinary clients and upstreams: an h2c upgrade
//! request is answered in HTTP/1.1 (like nginx), an upstream that stalls
//! after its head leaves its status in the record, and the response-header
//! count limit is configurable with a clear reason.

mod common;
use common::*;

const GET_PASS: &str = "- { id: r, methods: [GET], path: /x, request: pass, response: pass }";

fn proxy_for(up: &Upstream, limits: &str) -> Proxy {
    let config = demo_config(&[GET_PASS]).replace(
        "policies: policies/",
        &format!("policies: policies/\n{limits}"),
    );
    Proxy::builder().upstream(&up.url()).start(&config, &[])
}

/// What `curl --http2` sends on plain HTTP, twice on one connection.
const H2C_UPGRADE: &[u8] = b"GET /demo/x HTTP/1.1\r\nHost: customs\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";

#[test]
fn an_h2c_upgrade_request_is_answered_in_http1_and_h2c_prior_knowledge_still_works() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = proxy_for(&up, "");
    let second = b"GET /demo/x HTTP/1.1\r\nHost: customs\r\nConnection: close\r\n\r\n";
    let raw = raw_exchange(proxy.addr(), &[H2C_UPGRADE, second].concat());
    let answers = parse_responses(&raw);
    assert_eq!(answers.len(), 2, "{}", String::from_utf8_lossy(&raw));
    for a in &answers {
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(a.body, br#"{"ok":true}"#);
    }
    assert!(raw.starts_with(b"HTTP/1.1 200"), "answered in HTTP/1.1");
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    for name in ["upgrade", "http2-settings"] {
        assert!(seen[0].header(name).is_none(), "{name} forwarded");
    }

    // The real client, when there is one.
    match std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg(format!("{}/demo/x", proxy.url()))
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.ends_with("\n1.1 200"),
                "{text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => eprintln!("curl not run ({e}); the raw exchange above covers it"),
    }

    let r = send_h2(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let records = proxy.eventually("four records", |p| {
        Some(p.crossings("audit.jsonl")).filter(|r| r.len() >= 3)
    });
    assert!(
        records.iter().all(|r| r["outcome"] == "forwarded"),
        "{records:?}"
    );
}

/// An upstream that sends its status and headers, then nothing: 504, and
/// the record says what the upstream had answered.
#[test]
fn an_upstream_stalling_after_its_head_leaves_its_status_in_the_record() {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"v\":";
    let up = Upstream::start(
        UpstreamOpts::new().raw_steps(vec![RawStep::Send(head.to_vec()), RawStep::Hang]),
    );
    let proxy = proxy_for(&up, "limits: { upstream_timeout: 1s }");
    let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"], "upstream_timeout");
    let records = proxy.eventually("the record", |p| {
        Some(p.crossings("audit.jsonl")).filter(|r| !r.is_empty())
    });
    assert_eq!(records[0]["upstream_status"], 200, "{}", records[0]);
    assert_eq!(records[0]["outcome"], "upstream_error");
}

fn many_headers(n: usize) -> Vec<u8> {
    let mut head =
        String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n");
    for i in 0..n {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    head.push_str("\r\n{}");
    head.into_bytes()
}

/// 120 response headers: refused with a reason naming the limit by
/// default (100), crossing once `limits.max_response_headers` allows them.
#[test]
fn the_response_header_count_limit_is_configurable_and_named() {
    let steps = || vec![RawStep::Send(many_headers(120)), RawStep::Hang];
    let up = Upstream::start(UpstreamOpts::new().raw_steps(steps()));
    let proxy = proxy_for(&up, "");
    let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"], "response_refused");
    let records = proxy.eventually("the record", |p| {
        Some(p.crossings("audit.jsonl")).filter(|r| !r.is_empty())
    });
    let reason = records[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("limits.max_response_headers"), "{reason}");
    assert!(reason.contains("100"), "{reason}");

    let up = Upstream::start(UpstreamOpts::new().raw_steps(steps()));
    let proxy = proxy_for(&up, "limits: { max_response_headers: 200 }");
    // Read raw: the test's own HTTP client stops at 100 headers too.
    let get = b"GET /demo/x HTTP/1.1\r\nHost: customs\r\nConnection: close\r\n\r\n";
    let raw = raw_exchange(proxy.addr(), get);
    let answers = parse_responses(&raw);
    assert_eq!(answers.len(), 1, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[0].header("x-h119"), Some("v"));

    let (status, err) = Proxy::builder().upstream(&up.url()).start_expect_failure(
        &demo_config(&[GET_PASS]).replace(
            "policies: policies/",
            "policies: policies/\nlimits: { max_response_headers: 0 }",
        ),
        &[],
    );
    assert!(!status.success());
    assert!(err.contains("max_response_headers"), "{err}");
    // Each mistake is said once (the diagnostics are the message, not also its cause).
    assert_eq!(err.matches("max_response_headers").count(), 1, "{err}");
}
