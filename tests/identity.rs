//! Identity and credentials, with the real binary between a real client and
//! a recording upstream (issue 4): API keys in either header and during
//! rotation, per-integration keys, expiry, route subsets, hostile credential
//! headers, orphaned integrations, mTLS identities by CN and SPIFFE SAN,
//! credential stripping and injection, and secret-file rotation under load.
//! Every test ends by grepping the service logs, the audit log and the
//! metrics for every key and secret it used.

mod common;
use common::*;

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Two keys of one client while it rotates, and one key per other client.
const OLD_KEY: &str = "cst_desk_old_0c4f9a1be2d34c5a8f6e7d8c9b0a1f2e";
const NEW_KEY: &str = "cst_desk_new_7a1d2c3b4e5f60718293a4b5c6d7e8f9";
const READER_KEY: &str = "cst_reader_5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
const RETIRED_KEY: &str = "cst_retired_1b2c3d4e5f60718293a4b5c6d7e8f9a0";
const BETA_KEY: &str = "cst_beta_9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8";
const GONE_KEY: &str = "cst_gone_2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";
/// Upstream credentials customs injects; callers never see them.
const TOKEN_1: &str = "acme-upstream-token-one-5b1c";
const TOKEN_2: &str = "acme-upstream-token-two-8d4e";
const TOKEN_3: &str = "acme-upstream-token-three-2f7a";
const BETA_TOKEN: &str = "beta-upstream-secret-6c3d";

const ALL_SECRETS: [&str; 10] = [
    OLD_KEY,
    NEW_KEY,
    READER_KEY,
    RETIRED_KEY,
    BETA_KEY,
    GONE_KEY,
    TOKEN_1,
    TOKEN_2,
    TOKEN_3,
    BETA_TOKEN,
];

fn hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Three integrations: `acme` (keys, certificates, route subsets, an expired
/// client, a file-injected token), `beta` (its own key, an env-injected
/// `X-Api-Key`) and `gone` (past its end date). `{listen_tls}` is replaced
/// for the mTLS tests.
fn config(listen_tls: &str) -> String {
    r#"listen:
  address: 127.0.0.1:0
LISTEN_TLS
admin: { address: 127.0.0.1:0 }
audit: { path: "{dir}/audit.jsonl" }
integrations:
  - name: acme
    owner: itsm@example.com
    classification: confidential
    data: [incident]
    boundary: external
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}"
      inject: { header: Authorization, value: "Bearer ${file:secrets/acme-token}" }
    clients:
      - id: desk
        api_key: [OLD_HASH, NEW_HASH]
        expires: 2099-01-01
      - id: reader
        api_key: READER_HASH
        expires: 2099-01-01
        routes: [read]
      - id: retired
        api_key: RETIRED_HASH
        expires: 2020-01-01
      - id: dr
        mtls: { subject_cn: servicenow-dr }
        expires: 2099-01-01
      - id: spiffe
        mtls: { san: "spiffe://corp/servicenow" }
        expires: 2099-01-01
    routes:
      - { id: read, methods: [GET], path: /items/**, request: pass, response: pass }
      - { id: write, methods: [POST], path: /items/*, request: pass, response: pass }
  - name: beta
    owner: hr@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}"
      inject: { header: X-Api-Key, value: "${env:CUSTOMS_TEST_BETA_TOKEN}" }
    clients:
      - { id: hr, api_key: BETA_HASH, expires: 2099-01-01 }
    routes:
      - { id: all, methods: [GET], path: /**, request: pass, response: pass }
  - name: gone
    owner: old-partner@example.com
    classification: internal
    boundary: external
    reviewed: 2019-01-01
    expires: 2020-01-01
    upstream: { url: "{upstream}" }
    clients:
      - { id: legacy, api_key: GONE_HASH, expires: 2099-01-01 }
    routes:
      - { id: all, methods: [GET], path: /**, request: pass, response: pass }
"#
    .replace("LISTEN_TLS", listen_tls)
    .replace("OLD_HASH", &hash(OLD_KEY))
    .replace("NEW_HASH", &hash(NEW_KEY))
    .replace("READER_HASH", &hash(READER_KEY))
    .replace("RETIRED_HASH", &hash(RETIRED_KEY))
    .replace("BETA_HASH", &hash(BETA_KEY))
    .replace("GONE_HASH", &hash(GONE_KEY))
}

fn setup(up: &Upstream) -> ProxySetup {
    Proxy::builder()
        .upstream(&up.url())
        .file("secrets/acme-token", format!("{TOKEN_1}\n"))
        .env("CUSTOMS_TEST_BETA_TOKEN", BETA_TOKEN)
        .env("RUST_LOG", "debug")
}

fn start(up: &Upstream) -> Proxy {
    setup(up).start(&config(""), &[])
}

/// The error code of a proxy refusal.
fn error_code(r: &Reply) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

#[track_caller]
fn assert_metric(proxy: &Proxy, line: &str) {
    let m = proxy.admin("/metrics").text();
    assert!(m.lines().any(|l| l == line), "missing {line:?} in:\n{m}");
}

/// No key, token or secret in the service logs, the audit log, the metrics
/// or the inventory.
#[track_caller]
fn assert_no_leaks(proxy: &Proxy) {
    let places = [
        ("service logs", proxy.logs()),
        ("audit log", proxy.read("audit.jsonl")),
        ("metrics", proxy.admin("/metrics").text()),
        ("inventory", proxy.admin("/inventory").text()),
    ];
    for (place, text) in &places {
        for secret in ALL_SECRETS {
            assert!(!text.contains(secret), "{secret} leaked into the {place}");
        }
    }
}

#[test]
fn api_keys_work_in_either_header_and_both_keys_work_during_rotation() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up);
    let url = proxy.url();
    let bearer_new = format!("Bearer {NEW_KEY}");
    let lower_bearer = format!("bearer {OLD_KEY}");
    let bearer_old = format!("Bearer {OLD_KEY}");
    let ok: [Vec<(&str, &str)>; 4] = [
        vec![("X-Api-Key", OLD_KEY)],
        vec![("Authorization", &bearer_new)],
        vec![("authorization", &lower_bearer)],
        // The same key in both headers is one credential, not two.
        vec![("x-api-key", OLD_KEY), ("authorization", &bearer_old)],
    ];
    for headers in &ok {
        let r = send(&url, "GET", "/acme/items/1", headers, b"");
        assert_eq!(r.status, 200, "{headers:?}: {}", r.text());
    }
    let r = send_h2(&url, "GET", "/acme/items/2", &[("x-api-key", NEW_KEY)], b"");
    assert_eq!(r.status, 200, "h2: {}", r.text());
    assert_eq!(up.hits(), 5);
    for seen in up.requests() {
        assert_eq!(
            seen.header_all("authorization"),
            [format!("Bearer {TOKEN_1}")]
        );
        assert!(seen.header("x-api-key").is_none(), "caller key forwarded");
    }
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 5);
    for rec in &records {
        assert_eq!(rec["outcome"], "forwarded");
        assert_eq!(rec["client"], "desk");
        assert_eq!(rec["auth"], "api_key");
    }
    assert_no_leaks(&proxy);
}

#[test]
fn a_key_of_one_integration_gives_nothing_on_another() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    let cases = [
        ("/beta/x", OLD_KEY, "acme's key on beta"),
        ("/acme/items/1", BETA_KEY, "beta's key on acme"),
    ];
    for (path, key, why) in cases {
        let r = send(&url, "GET", path, &[("x-api-key", key)], b"");
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        assert_eq!(error_code(&r), "unauthenticated", "{why}");
    }
    assert_eq!(up.hits(), 0);
    let ok = send(&url, "GET", "/beta/x", &[("x-api-key", BETA_KEY)], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_metric(
        &proxy,
        r#"customs_auth_failures_total{integration="beta",reason="unknown"} 1"#,
    );
    assert_metric(
        &proxy,
        r#"customs_auth_failures_total{integration="acme",reason="unknown"} 1"#,
    );
    assert_no_leaks(&proxy);
}

#[test]
fn expired_clients_and_routes_outside_a_subset_are_forbidden() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    let expired = send(
        &url,
        "GET",
        "/acme/items/1",
        &[("x-api-key", RETIRED_KEY)],
        b"",
    );
    assert_eq!(expired.status, 403, "{}", expired.text());
    assert_eq!(error_code(&expired), "forbidden");
    let outside = send(
        &url,
        "POST",
        "/acme/items/1",
        &[("x-api-key", READER_KEY)],
        b"{}",
    );
    assert_eq!(outside.status, 403, "{}", outside.text());
    assert_eq!(error_code(&outside), "forbidden");
    assert_eq!(up.hits(), 0, "nothing forbidden was forwarded");
    let inside = send(
        &url,
        "GET",
        "/acme/items/1",
        &[("x-api-key", READER_KEY)],
        b"",
    );
    assert_eq!(inside.status, 200, "{}", inside.text());
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 3);
    for (rec, route) in records[..2].iter().zip(["read", "write"]) {
        assert_eq!(rec["outcome"], "denied", "{rec}");
        assert_eq!(rec["status"], 403);
        assert_eq!(rec["route"], route);
    }
    assert_eq!(records[2]["client"], "reader");
    assert_metric(
        &proxy,
        r#"customs_auth_failures_total{integration="acme",reason="expired"} 1"#,
    );
    assert_metric(
        &proxy,
        r#"customs_auth_failures_total{integration="acme",reason="route"} 1"#,
    );
    assert_metric(
        &proxy,
        r#"customs_requests_total{integration="acme",outcome="denied",route="write"} 1"#,
    );
    assert_no_leaks(&proxy);
}

#[test]
fn malformed_missing_and_ambiguous_credentials_are_refused_and_nothing_is_forwarded() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    let long = format!("cst_{}", "a".repeat(600));
    let huge = format!("cst_{}", "b".repeat(32 * 1024));
    let bearer_reader = format!("Bearer {READER_KEY}");
    let bearer_padded = format!("Bearer   {OLD_KEY}x");
    let basic = "Basic ZGVzazpodW50ZXIy".to_string();
    let upper = OLD_KEY.to_uppercase();
    let two_in_one = format!("{OLD_KEY}, {NEW_KEY}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no credential", vec![]),
        ("empty X-Api-Key", vec![("x-api-key", "")]),
        ("empty bearer", vec![("authorization", "Bearer ")]),
        ("bare scheme", vec![("authorization", "Bearer")]),
        ("other scheme", vec![("authorization", &basic)]),
        ("key over 512 bytes", vec![("x-api-key", &long)]),
        ("32 KiB key", vec![("x-api-key", &huge)]),
        ("key plus a byte", vec![("authorization", &bearer_padded)]),
        (
            "two valid keys",
            vec![("x-api-key", OLD_KEY), ("x-api-key", NEW_KEY)],
        ),
        (
            "same key twice",
            vec![("x-api-key", OLD_KEY), ("x-api-key", OLD_KEY)],
        ),
        ("two keys in one header", vec![("x-api-key", &two_in_one)]),
        (
            "X-Api-Key and Bearer disagree",
            vec![("x-api-key", OLD_KEY), ("authorization", &bearer_reader)],
        ),
        (
            "valid key plus Basic",
            vec![("x-api-key", OLD_KEY), ("authorization", &basic)],
        ),
        (
            "two bearers",
            vec![("authorization", &bearer_reader), ("authorization", &basic)],
        ),
        ("prefix of a key", vec![("x-api-key", &OLD_KEY[..20])]),
        ("case-changed key", vec![("x-api-key", &upper)]),
    ];
    for (why, headers) in &cases {
        let r = send(&url, "GET", "/acme/items/1", headers, b"");
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        assert_eq!(error_code(&r), "unauthenticated", "{why}");
        let h2 = send_h2(&url, "GET", "/acme/items/1", headers, b"");
        assert_eq!(h2.status, 401, "{why} over h2: {}", h2.text());
    }
    // Bytes no client library sends: obs-text reaches authentication (401);
    // a control byte is already refused by the HTTP parser (400).
    for (value, want) in [(&b"cst_\xff\xfe"[..], 401), (b"cst_\x01key", 400)] {
        let mut raw =
            b"GET /acme/items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Api-Key: ".to_vec();
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n\r\n");
        let answer = raw_exchange(proxy.addr(), &raw);
        let status = parse_status(&answer);
        assert_eq!(status, want, "raw {value:?}");
    }
    assert_eq!(up.hits(), 0, "nothing was forwarded");
    let records = proxy.crossings("audit.jsonl");
    assert!(records.len() >= cases.len() * 2);
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "denied" || r["outcome"] == "rejected")
    );
    assert!(records.iter().all(|r| r["client"].is_null()));
    assert_metric(
        &proxy,
        r#"customs_auth_failures_total{integration="acme",reason="missing"} 2"#,
    );
    assert_no_leaks(&proxy);
    assert!(!proxy.logs().contains(&huge[..40]));
}

#[test]
fn an_integration_past_its_end_date_refuses_everything() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    for headers in [vec![("x-api-key", GONE_KEY)], vec![]] {
        let r = send(&url, "GET", "/gone/anything", &headers, b"");
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(error_code(&r), "integration_expired");
    }
    // Undeclared methods too: the end date speaks before routing does.
    let r = send(&url, "DELETE", "/gone/anything", &[], b"");
    assert_eq!(
        (r.status.as_u16(), error_code(&r)),
        (403, "integration_expired".into())
    );
    assert_eq!(up.hits(), 0);
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 3);
    for rec in &records {
        assert_eq!(rec["outcome"], "expired");
        assert_eq!(rec["integration"], "gone");
        assert_eq!(rec["status"], 403);
    }
    assert_metric(
        &proxy,
        r#"customs_requests_total{integration="gone",outcome="expired",route="all"} 2"#,
    );
    assert_metric(
        &proxy,
        r#"customs_refusals_total{direction="request",integration="gone",reason="integration_expired"} 3"#,
    );
    assert_no_leaks(&proxy);
}

#[test]
fn callers_credential_headers_never_reach_the_upstream() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let url = proxy.url();
    let bearer = format!("Bearer {OLD_KEY}");
    let r = send(
        &url,
        "GET",
        "/acme/items/1",
        &[
            ("x-api-key", OLD_KEY),
            ("authorization", &bearer),
            ("proxy-authorization", "Basic cHJveHk6cGFzcw=="),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(
        seen.header_all("authorization"),
        [format!("Bearer {TOKEN_1}")]
    );
    assert!(seen.header("x-api-key").is_none());
    assert!(seen.header("proxy-authorization").is_none());
    assert!(!format!("{:?}", seen.headers).contains(OLD_KEY));

    // beta injects X-Api-Key: the caller's own X-Api-Key is replaced, and
    // nothing of it is left in any header.
    let r = send(&url, "GET", "/beta/x", &[("x-api-key", BETA_KEY)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(seen.header_all("x-api-key"), [BETA_TOKEN]);
    assert!(seen.header("authorization").is_none());
    assert!(!format!("{:?}", seen.headers).contains(BETA_KEY));
    // And the caller never sees the injected credential.
    assert!(!r.text().contains(BETA_TOKEN) && !format!("{:?}", r.headers).contains(BETA_TOKEN));
    assert_no_leaks(&proxy);
}

/// The mTLS setup: listener TLS with `client_ca`, and the PKI that issued it.
fn start_mtls(up: &Upstream, pki: &Pki) -> Proxy {
    let server = pki.server_cert(LOCAL);
    setup(up)
        .file("tls/server.pem", &server.0)
        .file("tls/server.key", &server.1)
        .file("tls/clients.pem", pki.ca_pem())
        .start(
            &config(
                "  tls: { cert: tls/server.pem, key: tls/server.key, client_ca: tls/clients.pem }",
            ),
            &[],
        )
}

#[test]
fn mtls_identities_by_subject_cn_and_spiffe_san() {
    let up = Upstream::json(200, "{}");
    let pki = Pki::new();
    let proxy = start_mtls(&up, &pki);
    let url = proxy.https_url();
    let dr = pki.client_cert("servicenow-dr", None);
    let spiffe = pki.client_cert("some-workload", Some("spiffe://corp/servicenow"));
    let stranger = pki.client_cert("intruder", Some("spiffe://corp/intruder"));
    let foreign = pki.other_ca_client_cert("servicenow-dr");

    let r = send_tls(
        &pki.client_config(Some(&dr)),
        &url,
        "GET",
        "/acme/items/1",
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "subject CN: {}", r.text());
    let r = send_tls(
        &pki.client_config(Some(&spiffe)),
        &url,
        "POST",
        "/acme/items/1",
        &[],
        b"{}",
    );
    assert_eq!(r.status, 200, "URI SAN: {}", r.text());
    assert_eq!(up.hits(), 2);
    for seen in up.requests() {
        assert_eq!(
            seen.header_all("authorization"),
            [format!("Bearer {TOKEN_1}")]
        );
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    }

    // A certificate from another CA never completes the handshake.
    let via = Via::Tls(Arc::new(pki.client_config(Some(&foreign))));
    let err = request(&via, &url, "GET", "/acme/items/1", &[], b"");
    assert!(
        err.is_err(),
        "another CA's certificate was accepted: {err:?}"
    );
    // (The client sees the server's UnknownCA alert, or just the close.)
    assert_eq!(up.hits(), 2);

    // Valid certificates whose identity is not a client here: 401.
    let r = send_tls(
        &pki.client_config(Some(&stranger)),
        &url,
        "GET",
        "/acme/items/1",
        &[],
        b"",
    );
    assert_eq!(
        (r.status.as_u16(), error_code(&r).as_str()),
        (401, "unauthenticated")
    );
    let r = send_tls(
        &pki.client_config(Some(&dr)),
        &url,
        "GET",
        "/beta/x",
        &[],
        b"",
    );
    assert_eq!(r.status, 401, "acme's certificate on beta: {}", r.text());
    // No certificate and no key: 401; no certificate but a key: fine.
    let r = send_tls(
        &pki.client_config(None),
        &url,
        "GET",
        "/acme/items/1",
        &[],
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = send_tls(
        &pki.client_config(None),
        &url,
        "GET",
        "/acme/items/1",
        &[("x-api-key", OLD_KEY)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits(), 3, "only the identified callers crossed");

    let records = proxy.crossings("audit.jsonl");
    let crossed: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["outcome"] == "forwarded")
        .map(|r| (r["client"].to_string(), r["auth"].to_string()))
        .collect();
    assert_eq!(
        crossed,
        [
            (r#""dr""#.into(), r#""mtls""#.into()),
            (r#""spiffe""#.into(), r#""mtls""#.into()),
            (r#""desk""#.into(), r#""api_key""#.into()),
        ]
    );
    assert_eq!(
        records.iter().filter(|r| r["outcome"] == "denied").count(),
        3
    );
    assert_no_leaks(&proxy);
}

/// One request of the rotation loop, numbered `n` in its path: `Ok` only
/// for a 200.
fn one(url: &str, n: usize) -> Result<(), String> {
    let path = format!("/acme/items/{n}");
    match request(&Via::H1, url, "GET", &path, &[("x-api-key", NEW_KEY)], b"") {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) => Err(format!("{} {}", r.status, r.text())),
        Err(e) => Err(e),
    }
}

/// Replaces a file the way Kubernetes and most secret tools do: write a
/// temporary file next to it, then rename it over the old one.
fn replace_atomically(dir: &std::path::Path, rel: &str, contents: &str) {
    let target = dir.join(rel);
    let tmp = dir.join(format!("{rel}.tmp"));
    std::fs::write(&tmp, contents).expect("write temp secret");
    std::fs::rename(&tmp, &target).expect("rename secret into place");
}

fn tokens_seen(up: &Upstream) -> Vec<String> {
    up.requests()
        .iter()
        .map(|r| r.header_all("authorization").join(" | "))
        .collect()
}

#[test]
fn a_rotated_secret_file_is_picked_up_without_failing_a_request() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up);
    let url = proxy.url();
    let limit = Duration::from_secs(15);

    // Two callers keep requests flowing for the whole rotation. Each request
    // takes a number when it is issued and carries it in its path, so the
    // test can tell which requests started after the switch was seen.
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicUsize::new(0));
    let (tx, results) = mpsc::channel::<(usize, Result<(), String>)>();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, issued, tx, url) = (stop.clone(), issued.clone(), tx.clone(), url.clone());
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    let n = issued.fetch_add(1, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) || tx.send((n, one(&url, n))).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let next = || {
        results
            .recv_timeout(limit)
            .expect("the request loop stalled")
    };
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        outcomes.push(next());
    }
    replace_atomically(proxy.dir(), "secrets/acme-token", &format!("{TOKEN_2}\n"));
    let want = format!("Bearer {TOKEN_2}");
    let deadline = Instant::now() + limit;
    while !tokens_seen(&up).contains(&want) {
        assert!(
            Instant::now() < deadline,
            "the new token never reached the upstream"
        );
        outcomes.push(next());
    }
    // Every request issued from here on must carry the new token.
    let switch = issued.load(Ordering::SeqCst);
    let mut after = 0;
    while after < 20 {
        let outcome = next();
        after += usize::from(outcome.0 >= switch);
        outcomes.push(outcome);
    }
    stop.store(true, Ordering::SeqCst);
    outcomes.extend(results.iter());
    for w in workers {
        w.join().expect("worker");
    }
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.1.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let old = format!("Bearer {TOKEN_1}");
    let by_number: Vec<(usize, String)> = up
        .requests()
        .iter()
        .filter_map(|r| {
            let n = r.uri.strip_prefix("/items/")?.parse().ok()?;
            Some((n, r.header_all("authorization").join(" | ")))
        })
        .collect();
    assert!(
        by_number.iter().all(|(_, t)| *t == old || *t == want),
        "{by_number:?}"
    );
    let late: Vec<_> = by_number.iter().filter(|(n, _)| *n >= switch).collect();
    assert!(late.len() >= 20, "{} requests after the switch", late.len());
    assert!(late.iter().all(|(_, t)| *t == want), "{late:?}");

    // Deleted mid-run: refused with 503 until it is back, never sent without.
    std::fs::remove_file(proxy.dir().join("secrets/acme-token")).expect("delete secret");
    let deadline = Instant::now() + limit;
    let refused = loop {
        let r = send(&url, "GET", "/acme/items/1", &[("x-api-key", NEW_KEY)], b"");
        if r.status != 200 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted secret was still used after {limit:?}"
        );
    };
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(error_code(&refused), "credential_unavailable");
    let hits = up.hits();
    for _ in 0..5 {
        let r = send(&url, "GET", "/acme/items/1", &[("x-api-key", NEW_KEY)], b"");
        assert_eq!(r.status, 503, "{}", r.text());
    }
    assert_eq!(up.hits(), hits, "nothing forwarded without the credential");

    // Restored: traffic resumes with the third token.
    replace_atomically(proxy.dir(), "secrets/acme-token", &format!("{TOKEN_3}\n"));
    let deadline = Instant::now() + limit;
    loop {
        let r = send(&url, "GET", "/acme/items/1", &[("x-api-key", NEW_KEY)], b"");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "the restored secret was never read"
        );
    }
    assert_eq!(
        up.last().header("authorization"),
        Some(format!("Bearer {TOKEN_3}").as_str())
    );
    let seen = tokens_seen(&up);
    assert!(
        seen.iter()
            .all(|t| t.starts_with("Bearer acme-upstream-token-")),
        "{seen:?}"
    );
    let records = proxy.crossings("audit.jsonl");
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 503 && r["integration"] == "acme")
    );
    assert_no_leaks(&proxy);
}

/// A request policy's header rules govern the caller's headers, not the
/// ones customs sets: the injected credential must survive an allow-list.
#[test]
fn a_header_allow_list_never_strips_the_injected_credential() {
    let up = Upstream::json(200, "{}");
    let policy = "policy: tight\nheaders:\n  allow: [content-type, accept]\n";
    let proxy = setup(&up).start(
        &config("").replace(
            "{ id: read, methods: [GET], path: /items/**, request: pass, response: pass }",
            "{ id: read, methods: [GET], path: /items/**, request: tight, response: pass }",
        ),
        &[("tight.yaml", policy)],
    );
    let r = send(
        &proxy.url(),
        "GET",
        "/acme/items/1",
        &[("x-api-key", OLD_KEY)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(
        seen.header_all("authorization"),
        [format!("Bearer {TOKEN_1}")]
    );
    assert!(seen.header("x-request-id").is_some());
}

/// A secret rewritten in place in two writes (as `scp` or NFS do) is never
/// sent half-written: the data path keeps the token it read until the file
/// has settled, like the reload watcher.
#[test]
fn a_secret_written_in_two_steps_is_never_sent_half_written() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up);
    let get = || {
        send(
            &proxy.url(),
            "GET",
            "/acme/items/1",
            &[("x-api-key", NEW_KEY)],
            b"",
        )
    };
    assert_eq!(get().status, 200);
    let (half, rest) = TOKEN_2.split_at(10);
    proxy.write_in_place("secrets/acme-token", half);
    let seen = |l: &str| l.contains("changed in place") || l.contains("Configuration reloaded");
    assert!(
        proxy.wait_logs(Duration::from_secs(10), seen),
        "{}",
        proxy.logs()
    );
    // Time itself is under test: past the data path's 1 s re-read, well
    // inside the 5 s settle time.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get().status, 200);
    assert_eq!(
        up.last().header("authorization"),
        Some(format!("Bearer {TOKEN_1}").as_str()),
        "the half-written token was sent"
    );
    proxy.write_in_place("secrets/acme-token", &format!("{half}{rest}\n"));
    let want = format!("Bearer {TOKEN_2}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.last().header("authorization") != Some(want.as_str()) {
        assert!(Instant::now() < deadline, "the new token was never sent");
        assert_eq!(get().status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let partial = format!("Bearer {half}");
    assert!(
        tokens_seen(&up).iter().all(|t| *t != partial),
        "{:?}",
        tokens_seen(&up)
    );
}
