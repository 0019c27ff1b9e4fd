//! The proxy's normal path, with the real binary between a real client and
//! a recording upstream: what the upstream received and what the caller got.

mod common;
use common::*;

/// The caller's API key; the config holds only its hash.
const KEY: &str = "cst_test_key_0123456789abcdef";

fn key_hash() -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(KEY.as_bytes())))
}

/// One integration at /acme with a response policy and a request policy.
fn config() -> String {
    r#"listen: { address: 127.0.0.1:0 }
admin: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
secrets: { hash_key: "${file:hash.key}" }
integrations:
  - name: acme
    owner: team@example.com
    classification: confidential
    data: [pii]
    boundary: external
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}/v1"
      inject: { header: Authorization, value: "Bearer ${file:token}" }
    clients:
      - id: desk
        api_key: KEYHASH
    routes:
      - { id: read, methods: [GET], path: /incidents/**, request: pass, response: inbound }
      - { id: write, methods: [POST], path: /incidents/*, request: outbound, response: pass }
"#
    .replace("KEYHASH", &key_hash())
}

const INBOUND: &str = r#"policy: inbound
body:
  rules:
    - id: card
      mask: [$..card_number]
      keep_last: 4
    - id: text
      redact: [$..description]
headers:
  drop: [x-internal-*]
"#;

const OUTBOUND: &str = r#"policy: outbound
body:
  allow: [$.id, $.title, $.email]
  rules:
    - id: no-passwords
      refuse: [$..password]
    - id: pseudo
      hash: [$.email]
query:
  drop: [debug]
"#;

fn start(up: &Upstream) -> Proxy {
    setup(up).start(
        &config(),
        &[("inbound.yaml", INBOUND), ("outbound.yaml", OUTBOUND)],
    )
}

/// The hash key and upstream token files every proxy here needs.
fn setup(up: &Upstream) -> ProxySetup {
    Proxy::builder()
        .upstream(&up.url())
        .file("hash.key", "test-hash-key")
        .file("token", "UPSTREAM-SECRET-123\n")
}

fn auth() -> (&'static str, &'static str) {
    ("x-api-key", KEY)
}

#[test]
fn response_policy_masks_what_the_caller_sees() {
    let up = Upstream::start(UpstreamOpts::new().respond(
        200,
        &[("content-type", "application/json"), ("x-internal-trace", "abc"), ("etag", "\"v1\"")],
        &br#"{"id":7,"card_number":"4111 1111 1111 1111","description":"mail jane@example.com"}"#[..],
    ));
    let proxy = start(&up);
    let r = send(&proxy.url(), "GET", "/acme/incidents/7", &[auth()], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"id":7,"card_number":"**** **** **** 1111","description":"mail [EMAIL]"}"#
    );
    assert!(
        r.header("x-internal-trace").is_none(),
        "header rule applied"
    );
    assert!(
        r.header("etag").is_none(),
        "etag no longer matches the body"
    );
    assert_eq!(r.header("x-request-id").map(str::len), Some(16));
    let seen = up.last();
    assert_eq!(
        seen.uri, "/v1/incidents/7",
        "mount stripped, upstream prefix added"
    );
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer UPSTREAM-SECRET-123")
    );
    assert!(
        seen.header("x-api-key").is_none(),
        "caller credential never forwarded"
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("accept-encoding"), Some("identity"));
    assert_eq!(seen.header("x-request-id"), r.header("x-request-id"));
}

#[test]
fn request_policy_filters_what_the_upstream_receives() {
    let up = Upstream::json(201, r#"{"ok":true}"#);
    let proxy = start(&up);
    let body = br#"{"id":1,"title":"VPN","email":"jane@example.com","internal":"secret notes"}"#;
    let headers = [
        auth(),
        ("content-type", "application/json"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-request-id", "caller-chosen"),
    ];
    let r = send(
        &proxy.url(),
        "POST",
        "/acme/incidents/1?debug=1&page=2",
        &headers,
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let seen = up.last();
    assert_eq!(
        seen.uri, "/v1/incidents/1?page=2",
        "query rule dropped debug"
    );
    let doc = seen.json();
    assert_eq!(doc["id"], 1);
    assert!(doc.get("internal").is_none(), "outside the allow-list");
    let email = doc["email"].as_str().expect("hashed email");
    assert_eq!(email.len(), 64);
    assert!(!seen.text().contains("jane@example.com"));
    assert_eq!(
        seen.header("content-length"),
        Some(seen.body.len().to_string().as_str())
    );
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "caller's value replaced"
    );
    assert_ne!(seen.header("x-request-id"), Some("caller-chosen"));
}

/// method, path, headers, body, expected status, expected error code.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a [u8],
    u16,
    &'a str,
);

#[test]
fn refusals_answer_with_code_and_request_id_only() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let cases: [Case; 5] = [
        (
            "POST",
            "/acme/incidents/1",
            vec![auth(), ("content-type", "application/json")],
            br#"{"id":1,"password":"hunter2"}"#,
            403,
            "policy_refused",
        ),
        (
            "GET",
            "/acme/incidents/1",
            vec![],
            b"",
            401,
            "unauthenticated",
        ),
        (
            "GET",
            "/acme/incidents/1",
            vec![("x-api-key", "cst_wrong")],
            b"",
            401,
            "unauthenticated",
        ),
        (
            "DELETE",
            "/acme/incidents/1",
            vec![auth()],
            b"",
            404,
            "no_route",
        ),
        ("GET", "/other/x", vec![auth()], b"", 404, "no_route"),
    ];
    for (method, path, headers, body, status, code) in cases {
        let r = send(&proxy.url(), method, path, &headers, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        let err = r.json();
        assert_eq!(err["error"], code);
        assert_eq!(
            err.as_object().map(|o| o.len()),
            Some(2),
            "only error and request_id: {err}"
        );
        assert!(!r.text().contains("hunter2") && !r.text().contains("password"));
    }
    assert_eq!(up.hits(), 0, "nothing refused reached the upstream");
    // The refused body's record and metrics name the rule that refused it.
    let records = proxy.crossings("audit.jsonl");
    let refused = &records[0];
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(
        refused["request"]["actions"]["no-passwords"], 1,
        "{refused}"
    );
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let refuse = [("rule", "no-passwords"), ("action", "refuse")];
    assert_eq!(
        metrics::value(&m, "customs_policy_actions_total", &refuse),
        Some(1.0)
    );
}

#[test]
fn http2_callers_and_tls_upstreams_work() {
    let pki = Pki::new();
    let cert = pki.server_cert(LOCAL);
    let up = Upstream::start(
        UpstreamOpts::new()
            .tls(&cert)
            .http2()
            .json(200, r#"{"card_number":"4111111111111111"}"#),
    );
    let proxy = setup(&up).file("ca.pem", pki.ca_pem()).start(
        &config().replace(
            "url: \"{upstream}/v1\"",
            "url: \"{upstream}/v1\"\n      ca: ca.pem",
        ),
        &[("inbound.yaml", INBOUND), ("outbound.yaml", OUTBOUND)],
    );
    let r = send_h2(&proxy.url(), "GET", "/acme/incidents/9", &[auth()], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.text(), r#"{"card_number":"************1111"}"#);
    assert_eq!(
        up.last().version,
        http::Version::HTTP_2,
        "ALPN chose h2 upstream"
    );
}

#[test]
fn every_crossing_is_audited_without_values() {
    let up = Upstream::json(
        200,
        r#"{"card_number":"4111111111111111","description":"x"}"#,
    );
    let proxy = start(&up);
    send(
        &proxy.url(),
        "GET",
        "/acme/incidents/1?q=jane",
        &[auth()],
        b"",
    );
    send(&proxy.url(), "GET", "/acme/incidents/1", &[], b"");
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 2, "{records:?}");
    let ok = &records[0];
    assert_eq!(ok["outcome"], "forwarded");
    assert_eq!(ok["integration"], "acme");
    assert_eq!(ok["route"], "read");
    assert_eq!(ok["client"], "desk");
    assert_eq!(ok["auth"], "api_key");
    assert_eq!(ok["path"], "/v1/incidents/1?q=");
    assert_eq!(ok["response"]["actions"]["card"], 1);
    assert_eq!(records[1]["outcome"], "denied");
    assert_eq!(records[1]["auth"], "none", "no credential, no identity");
    let log = proxy.read("audit.jsonl");
    for secret in ["4111", "jane", KEY, "UPSTREAM-SECRET-123"] {
        assert!(!log.contains(secret), "{secret} leaked into the audit log");
        assert!(
            !proxy.logs().contains(secret),
            "{secret} leaked into service logs"
        );
    }
}

#[test]
fn metrics_count_crossings() {
    let up = Upstream::json(200, r#"{"card_number":"4111111111111111"}"#);
    let proxy = start(&up);
    send(&proxy.url(), "GET", "/acme/incidents/1", &[auth()], b"");
    send(
        &proxy.url(),
        "GET",
        "/acme/incidents/1",
        &[("x-api-key", "nope")],
        b"",
    );
    let text = proxy.admin("/metrics").text();
    let m = metrics::parse(&text);
    let acme = ("integration", "acme");
    let count = |name, labels: &[(&str, &str)]| metrics::value(&m, name, labels);
    assert_eq!(
        count(
            "customs_requests_total",
            &[acme, ("route", "read"), ("outcome", "forwarded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        count("customs_requests_total", &[acme, ("outcome", "denied")]),
        Some(1.0)
    );
    assert_eq!(
        count(
            "customs_auth_failures_total",
            &[acme, ("reason", "unknown")]
        ),
        Some(1.0)
    );
    let mask = [
        acme,
        ("policy", "inbound"),
        ("rule", "card"),
        ("action", "mask"),
    ];
    assert_eq!(count("customs_policy_actions_total", &mask), Some(1.0));
    assert_eq!(
        count("customs_request_duration_seconds_count", &[acme]),
        Some(2.0)
    );
    assert_eq!(
        count("customs_upstream_duration_seconds_count", &[acme]),
        Some(1.0)
    );
    assert!(
        count(
            "customs_bytes_total",
            &[acme, ("direction", "response"), ("stage", "in")]
        ) > Some(0.0)
    );
    assert_eq!(count("customs_audit_records_total", &[]), Some(2.0));
    assert_eq!(count("customs_audit_failures_total", &[]), Some(0.0));
    assert!(count("customs_integration_expiry_timestamp_seconds", &[acme]) > Some(4e9));
    assert!(
        count(
            "customs_credential_last_used_timestamp_seconds",
            &[acme, ("credential", "desk")]
        ) > Some(1.7e9)
    );
    assert_eq!(
        count(
            "customs_refusals_total",
            &[
                acme,
                ("direction", "request"),
                ("reason", "unauthenticated")
            ]
        ),
        Some(1.0)
    );
    // Labels come from config names and fixed enums only.
    for s in &m {
        for v in s.labels.values() {
            assert!(
                !v.contains("nope") && !v.contains("4111") && !v.contains('/'),
                "{s:?}"
            );
        }
    }
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let up = Upstream::json(200, "{}");
    let mut proxy = start(&up);
    assert_eq!(
        send(&proxy.url(), "GET", "/acme/incidents/1", &[auth()], b"").status,
        200
    );
    assert!(proxy.stop_gracefully().success());
}

#[test]
fn inventory_shows_when_credentials_were_last_used() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let before = proxy.admin("/inventory").json();
    assert!(
        before[0]["clients"][0]["last_used"].is_null(),
        "unused so far: {before}"
    );
    send(&proxy.url(), "GET", "/acme/incidents/1", &[auth()], b"");
    let live = proxy.admin("/inventory").json();
    assert!(live[0]["clients"][0]["last_used"].is_string(), "{live}");
    assert!(live[0]["last_crossing"].is_string());
    // Offline, the inventory reads last use from the crossing log.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["inventory", "--format", "json", "--config"])
        .arg(proxy.config_path())
        .output()
        .expect("run inventory");
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        offline[0]["clients"][0]["last_used"].is_string(),
        "{offline}"
    );
}

/// Bodies from 4 KiB on, and compressed ones, are governed on the policy
/// threads rather than the listener's: the same rules hold in both
/// directions, concurrently, and a large body that fails its policy is
/// refused whole.
#[test]
fn large_bodies_are_governed_like_small_ones() {
    let item = r#"{"card_number":"4111 1111 1111 1111","description":"mail jane@example.com"}"#;
    let export = format!("[{}]", vec![item; 400].join(","));
    let json = [("content-type", "application/json")];
    let up = Upstream::start(UpstreamOpts::new().respond(200, &json, export));
    let proxy = start(&up);
    let url = proxy.url();
    let title = "t".repeat(8 * 1024);
    let write =
        format!(r#"{{"id":1,"title":"{title}","email":"jane@example.com","internal":"x"}}"#);
    let secret = format!(r#"{{"id":2,"title":"{title}","password":"hunter2"}}"#);
    let duplicate = format!(r#"{{"id":3,"title":"{title}","id":4}}"#);
    let headers = [auth(), ("content-type", "application/json")];
    let post = |body: &str| send(&url, "POST", "/acme/incidents/1", &headers, body.as_bytes());
    std::thread::scope(|s| {
        let mut crossings = Vec::new();
        for _ in 0..4 {
            crossings.push(s.spawn(|| {
                let read = send(&url, "GET", "/acme/incidents/all", &[auth()], b"");
                assert_eq!(read.status, 200, "{}", read.text());
                let text = read.text();
                assert_eq!(text.matches("**** **** **** 1111").count(), 400);
                assert!(!text.contains("4111 1111") && !text.contains("jane@"));
            }));
            crossings.push(s.spawn(|| assert_eq!(post(&write).status, 200)));
            crossings.push(s.spawn(|| assert_eq!(post(&secret).status, 403)));
            crossings.push(s.spawn(|| assert_eq!(post(&duplicate).status, 400)));
        }
        for crossing in crossings {
            crossing.join().expect("a crossing failed its checks");
        }
    });
    // Small once compressed, but its size is no measure of the work.
    let small = gzip(write.as_bytes());
    assert!(small.len() < 4096);
    let gz = [
        auth(),
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let r = send(&url, "POST", "/acme/incidents/1", &gz, &small);
    assert_eq!(r.status, 200, "{}", r.text());
    let posts: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 5, "only the allowed writes crossed");
    for seen in posts {
        let doc = seen.json();
        assert_eq!(doc["title"].as_str().map(str::len), Some(8 * 1024));
        assert_eq!(doc["email"].as_str().map(str::len), Some(64), "hashed");
        assert!(doc.get("internal").is_none(), "outside the allow-list");
    }
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let jobs = |name| metrics::value(&m, name, &[]);
    assert_eq!(
        jobs("customs_policy_jobs_total"),
        Some(17.0),
        "4 × 4 large, 1 gzip"
    );
    assert_eq!(jobs("customs_policy_jobs_waiting"), Some(0.0));
    let records = proxy.crossings("audit.jsonl");
    let status = |code: u64| records.iter().filter(|r| r["status"] == code).count();
    assert_eq!((records.len(), status(403), status(400)), (17, 4, 4));
}

/// While a policy thread governs a large export, the listener thread that
/// read it goes on serving: with one worker, a `pass` crossing completes
/// before the export's answer.
#[test]
fn a_large_export_does_not_hold_up_the_listener() {
    let item =
        r#"{"description":"mail jane@example.com or +1 415 555 0134, card 4111 1111 1111 1111"}"#;
    let export = format!("[{}]", vec![item; 50_000].join(","));
    let export = bytes::Bytes::from(export);
    let up = Upstream::start(UpstreamOpts::new().handler(move |seen| {
        let body = if seen.uri.ends_with("/ping") {
            "{}".into()
        } else {
            export.clone()
        };
        let json = ("content-type", "application/json");
        http::Response::builder()
            .header(json.0, json.1)
            .body(body.into())
            .expect("answer")
    }));
    let config = config()
        .replace(
            "listen: { address: 127.0.0.1:0 }",
            "listen: { address: 127.0.0.1:0, workers: 1 }\nlimits: { max_body_bytes: 16MiB }",
        )
        .replace(
            "request: outbound, response: pass }",
            "request: outbound, response: pass }\n      - { id: ping, methods: [GET], path: /ping, request: pass, response: pass }",
        );
    let proxy = setup(&up).start(
        &config,
        &[("inbound.yaml", INBOUND), ("outbound.yaml", OUTBOUND)],
    );
    let url = proxy.url();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = send(&url, "GET", "/acme/incidents/all", &[auth()], b"");
            let _ = done_tx.send(r);
        });
        // Ready signal: the export reached the policy thread.
        let handed_over = || {
            let m = metrics::parse(&proxy.admin("/metrics").text());
            metrics::value(&m, "customs_policy_jobs_total", &[]) == Some(1.0)
        };
        while !handed_over() {
            assert!(
                done.try_recv().is_err(),
                "the export finished before it was handed over"
            );
            std::thread::yield_now();
        }
        let ping = send(&url, "GET", "/acme/ping", &[auth()], b"");
        assert_eq!(ping.status, 200, "{}", ping.text());
        assert!(done.try_recv().is_err(), "the ping waited for the export");
        let export = done.recv().expect("the export's answer");
        assert_eq!(export.status, 200);
        assert!(!export.text().contains("jane@"));
    });
}

/// A policy in monitor mode changes nothing, headers and query included; it
/// only records what enforcement would have done.
#[test]
fn monitor_mode_changes_no_header_query_or_body() {
    let up = Upstream::start(UpstreamOpts::new().respond(
        200,
        &[
            ("content-type", "application/json"),
            ("x-internal-trace", "abc"),
        ],
        &br#"{"card_number":"4111 1111 1111 1111"}"#[..],
    ));
    let monitor = |policy: &str, name: &str| {
        policy.replacen(
            &format!("policy: {name}\n"),
            &format!("policy: {name}\nmode: monitor\n"),
            1,
        )
    };
    let proxy = setup(&up).start(
        &config(),
        &[
            ("inbound.yaml", &monitor(INBOUND, "inbound")),
            ("outbound.yaml", &monitor(OUTBOUND, "outbound")),
        ],
    );
    let body = br#"{"id":1,"internal":"notes"}"#;
    let json = [auth(), ("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/acme/incidents/1?debug=1",
        &json,
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(
        seen.uri, "/v1/incidents/1?debug=1",
        "query rule not applied"
    );
    assert_eq!(seen.json()["internal"], "notes", "allow-list not applied");
    let r = send(&proxy.url(), "GET", "/acme/incidents/1", &[auth()], b"");
    assert_eq!(
        r.header("x-internal-trace"),
        Some("abc"),
        "header rule not applied"
    );
    assert!(r.text().contains("4111 1111 1111 1111"), "mask not applied");
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records[1]["mode"], "monitor");
    assert_eq!(
        records[1]["response"]["actions"]["card"], 1,
        "what it would have done"
    );
}

/// Fields outside an allow-list are counted under the action they got:
/// with `unknown_fields: pass` they crossed, so `pass`, not `drop`.
#[test]
fn unknown_fields_are_counted_as_what_happened_to_them() {
    let up = Upstream::json(201, r#"{"ok":true}"#);
    let passing = OUTBOUND.replace("body:\n", "body:\n  unknown_fields: pass\n");
    let proxy = setup(&up).start(
        &config(),
        &[("inbound.yaml", INBOUND), ("outbound.yaml", &passing)],
    );
    let json = [auth(), ("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/acme/incidents/1",
        &json,
        br#"{"id":1,"internal":"x"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(up.last().json()["internal"], "x", "passed, as configured");
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let counted = |action| {
        let labels = [
            ("policy", "outbound"),
            ("rule", "allow"),
            ("action", action),
        ];
        metrics::value(&m, "customs_policy_actions_total", &labels)
    };
    assert_eq!((counted("pass"), counted("drop")), (Some(1.0), None));
}
