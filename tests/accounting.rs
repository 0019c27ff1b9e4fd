//! Every attempt is accounted for: a refused request names the client whose
//! credential it carried, requests the HTTP layer rejects are counted, and
//! the series the config makes known are exported from the start.

mod common;
use common::*;
use sha2::{Digest, Sha256};

const DESK_KEY: &str = "cst_desk_4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";
const READER_KEY: &str = "cst_reader_0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const RETIRED_KEY: &str = "cst_retired_99aa88bb77cc66dd55ee44ff33001122";
const LEGACY_KEY: &str = "cst_legacy_1029384756abcdef1029384756abcdef";
const UNKNOWN_KEY: &str = "cst_nobody_00000000000000000000000000000000";

fn hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// `acme` (live, with a token injected upstream, a reader limited to `read`
/// and a retired client) and `gone` (past its end date).
fn config() -> String {
    r#"listen: { address: 127.0.0.1:0 }
admin: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
integrations:
  - name: acme
    owner: soc@example.com
    classification: confidential
    boundary: external
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}"
      inject: { header: Authorization, value: "Bearer ${env:CUSTOMS_TEST_ACME_TOKEN}" }
    clients:
      - { id: desk, api_key: DESK_HASH, expires: 2099-01-01 }
      - { id: reader, api_key: READER_HASH, expires: 2099-01-01, routes: [read] }
      - { id: retired, api_key: RETIRED_HASH, expires: 2020-01-01 }
    routes:
      - { id: read, methods: [GET], path: /items/**, request: pass, response: pass }
      - { id: write, methods: [POST], path: /items/*, request: guarded, response: pass }
  - name: gone
    owner: old-partner@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2020-01-01
    upstream: { url: "{upstream}" }
    clients:
      - { id: legacy, api_key: LEGACY_HASH, expires: 2099-01-01 }
    routes:
      - { id: all, methods: [GET], path: /**, request: pass, response: pass }
"#
    .replace("DESK_HASH", &hash(DESK_KEY))
    .replace("READER_HASH", &hash(READER_KEY))
    .replace("RETIRED_HASH", &hash(RETIRED_KEY))
    .replace("LEGACY_HASH", &hash(LEGACY_KEY))
}

const GUARDED: &str =
    "policy: guarded\nbody:\n  rules:\n    - id: no-passwords\n      refuse: [$..password]\n";

fn start(up: &Upstream) -> Proxy {
    Proxy::builder()
        .upstream(&up.url())
        .env("CUSTOMS_TEST_ACME_TOKEN", "acme-token-5e1f")
        .start(&config(), &[("guarded.yaml", GUARDED)])
}

/// method, path, key, body, status, error code, client named in the record.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    u16,
    &'static str,
    Option<&'static str>,
);

/// Every refusal after a credential identified a client names that client,
/// as forwarded crossings do; an unknown key names nobody.
#[test]
fn a_refused_request_names_the_client_whose_credential_it_carried() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    let json = ("content-type", "application/json");
    let cases: [Case; 6] = [
        (
            "POST",
            "/acme/items/1",
            READER_KEY,
            b"{}",
            403,
            "forbidden",
            Some("reader"),
        ),
        (
            "GET",
            "/acme/items/1",
            RETIRED_KEY,
            b"",
            403,
            "forbidden",
            Some("retired"),
        ),
        (
            "GET",
            "/gone/x",
            LEGACY_KEY,
            b"",
            403,
            "integration_expired",
            Some("legacy"),
        ),
        (
            "POST",
            "/acme/items/2",
            DESK_KEY,
            br#"{"password":"p"}"#,
            403,
            "policy_refused",
            Some("desk"),
        ),
        (
            "DELETE",
            "/acme/items/3",
            DESK_KEY,
            b"",
            404,
            "no_route",
            Some("desk"),
        ),
        (
            "GET",
            "/acme/items/4",
            UNKNOWN_KEY,
            b"",
            401,
            "unauthenticated",
            None,
        ),
    ];
    for (method, path, key, body, status, code, _) in &cases {
        let r = send(&url, method, path, &[("x-api-key", key), json], body);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["error"], *code, "{method} {path}");
    }
    assert_eq!(up.hits(), 0, "nothing refused crossed");
    let records = proxy.eventually("six records", |p| {
        Some(p.crossings("audit.jsonl")).filter(|r| r.len() == cases.len())
    });
    for (record, (method, path, .., client)) in records.iter().zip(&cases) {
        let want = client.map_or(serde_json::Value::Null, |c| c.into());
        assert_eq!(record["client"], want, "{method} {path}: {record}");
        if client.is_some() {
            assert_eq!(record["auth"], "api_key", "{record}");
        }
    }
    let audit = proxy.read("audit.jsonl");
    for key in [DESK_KEY, READER_KEY, RETIRED_KEY, LEGACY_KEY, UNKNOWN_KEY] {
        assert!(!audit.contains(key), "a key reached the audit log");
    }
}

/// `customs_protocol_errors_total{reason}` from a scrape (0 when absent).
fn protocol_errors(proxy: &Proxy, reason: &str) -> Option<f64> {
    let m = metrics::parse(&proxy.admin("/metrics").text());
    metrics::value(&m, "customs_protocol_errors_total", &[("reason", reason)])
}

/// Waits (bounded) until `reason` was counted `n` times: the count is taken
/// when hyper's connection task ends, just after the caller saw the close.
#[track_caller]
fn await_protocol_errors(proxy: &Proxy, reason: &str, n: f64) {
    proxy.eventually(&format!("{n} {reason} protocol errors"), |p| {
        protocol_errors(p, reason).filter(|v| *v >= n)
    });
}

/// What hyper refuses before customs sees a request is counted by reason;
/// an idle keep-alive connection or a caller that leaves is not an error.
#[test]
fn requests_the_http_layer_refuses_are_counted_by_reason() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    for reason in [
        "malformed",
        "head_too_large",
        "head_timeout",
        "incomplete",
        "http2",
        "no_request",
        "tls_handshake",
        "other",
    ] {
        assert_eq!(protocol_errors(&proxy, reason), Some(0.0), "{reason}");
    }

    let bad = raw_exchange(
        proxy.addr(),
        b"GET /acme/items/1 HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
    );
    assert_eq!(parse_status(&bad), 400);
    await_protocol_errors(&proxy, "malformed", 1.0);

    let big = format!(
        "GET /acme/items/1 HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    assert_eq!(
        parse_status(&raw_exchange(proxy.addr(), big.as_bytes())),
        431
    );
    await_protocol_errors(&proxy, "head_too_large", 1.0);

    // Half a head, then the caller closes its side.
    {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(proxy.addr()).expect("connect");
        tcp.write_all(b"GET /acme/items/1 HTTP/1.1\r\nHost: a\r\nX-A")
            .expect("half a head");
        tcp.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest);
    }
    await_protocol_errors(&proxy, "incomplete", 1.0);

    // HTTP/2 preface, then a DATA frame on stream 0: a connection error.
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    raw_exchange(proxy.addr(), &h2);
    await_protocol_errors(&proxy, "http2", 1.0);

    // A well-formed request on a kept-alive connection is not an error.
    let r = send(
        &proxy.url(),
        "GET",
        "/acme/items/1",
        &[("x-api-key", DESK_KEY)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(protocol_errors(&proxy, "other"), Some(0.0));
    assert_eq!(
        up.hits(),
        1,
        "nothing the HTTP layer refused reached the upstream"
    );
}

/// Families whose labels the config makes known exist at 0 from the start
/// and after a reload, so `rate()` and absence alerts work.
#[test]
fn series_known_from_the_config_are_exported_at_zero() {
    let up = Upstream::json(200, "{}");
    let mut proxy = start(&up);
    let scrape = |proxy: &Proxy| metrics::parse(&proxy.admin("/metrics").text());
    let m = scrape(&proxy);
    let at_zero = |m: &[metrics::Sample], name: &str, labels: &[(&str, &str)]| {
        assert_eq!(
            metrics::value(m, name, labels),
            Some(0.0),
            "{name} {labels:?}"
        );
    };
    at_zero(
        &m,
        "customs_upstream_auth_failures_total",
        &[("integration", "acme")],
    );
    assert_eq!(
        metrics::value(
            &m,
            "customs_upstream_auth_failures_total",
            &[("integration", "gone")]
        ),
        None,
        "gone injects no credential"
    );
    for it in ["acme", "gone"] {
        for reason in ["missing", "unknown", "expired", "route"] {
            at_zero(
                &m,
                "customs_auth_failures_total",
                &[("integration", it), ("reason", reason)],
            );
        }
        for kind in [
            "volume_anomaly",
            "schema_drift",
            "credential_expiring",
            "upstream_credential_failing",
            "idle_integration",
        ] {
            let labels = [("integration", it), ("kind", kind)];
            let v = metrics::value(&m, "customs_anomalies_total", &labels);
            assert!(v.is_some(), "customs_anomalies_total {labels:?}");
        }
    }
    at_zero(
        &m,
        "customs_refusals_total",
        &[
            ("integration", "acme"),
            ("direction", "request"),
            ("reason", "policy_refused"),
        ],
    );
    at_zero(
        &m,
        "customs_requests_total",
        &[("integration", "acme"), ("route", "write")],
    );
    for result in ["ok", "error"] {
        at_zero(&m, "customs_config_reloads_total", &[("result", result)]);
    }

    // A reload that adds an injecting integration exports its series too.
    let added = config().replace(
        "  - name: gone\n",
        "  - name: beta\n    owner: b@example.com\n    classification: internal\n    boundary: internal\n    reviewed: 2026-09-01\n    expires: 2099-01-01\n    upstream: { url: \"{upstream}\", inject: { header: X-Key, value: \"${env:CUSTOMS_TEST_ACME_TOKEN}\" } }\n    anonymous: true\n    routes:\n      - { id: r, methods: [GET], path: /x, request: pass, response: pass }\n  - name: gone\n",
    );
    proxy.write("customs.yaml", &added);
    proxy.signal("HUP");
    let m = proxy.eventually("the reload counted", |p| {
        let m = scrape(p);
        metrics::value(&m, "customs_config_reloads_total", &[("result", "ok")])
            .filter(|v| *v >= 1.0)
            .map(|_| m)
    });
    at_zero(
        &m,
        "customs_upstream_auth_failures_total",
        &[("integration", "beta")],
    );
    at_zero(
        &m,
        "customs_auth_failures_total",
        &[("integration", "beta"), ("reason", "unknown")],
    );
    at_zero(
        &m,
        "customs_upstream_auth_failures_total",
        &[("integration", "acme")],
    );
}
