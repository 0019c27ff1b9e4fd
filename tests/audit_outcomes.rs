//! The crossing log through the real binary: exactly one record per
//! crossing whatever its outcome, a chain that `customs audit verify`
//! accepts, and no crossing when the log cannot be written.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn config(audit_path: &str) -> String {
    let key = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"cst_outcomes_key"))
    };
    format!(
        r#"listen: {{ address: 127.0.0.1:0 }}
admin: {{ address: 127.0.0.1:0 }}
policies: policies/
audit: {{ path: "{audit_path}" }}
limits: {{ upstream_timeout: 2s }}
integrations:
  - name: live
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream: {{ url: "{{upstream}}" }}
    clients: [{{ id: desk, api_key: "sha256:{key}" }}]
    routes:
      - {{ id: read, methods: [GET], path: /ok, request: pass, response: pass }}
      - {{ id: write, methods: [POST], path: /in, request: strict, response: pass }}
  - name: down
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    anonymous: true
    upstream: {{ url: "http://127.0.0.1:9" }}
    routes: [{{ id: any, methods: [GET], path: /x, request: pass, response: pass }}]
  - name: gone
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2020-01-01
    expires: 2021-01-01
    anonymous: true
    upstream: {{ url: "{{upstream}}" }}
    routes: [{{ id: any, methods: [GET], path: /x, request: pass, response: pass }}]
"#
    )
}

const STRICT: &str =
    "policy: strict\nbody:\n  rules:\n    - id: no-pw\n      refuse: [$..password]\n";
const KEY: (&str, &str) = ("x-api-key", "cst_outcomes_key");
const JSON: (&str, &str) = ("content-type", "application/json");

/// method, path, headers, body, status, outcome.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [u8],
    u16,
    &'static str,
);

#[test]
fn every_outcome_leaves_exactly_one_record_and_the_chain_verifies() {
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder().upstream(&up.url()).start(
        &config("{dir}/audit/crossings.jsonl"),
        &[("strict.yaml", STRICT)],
    );
    let cases: [Case; 7] = [
        ("GET", "/live/ok", &[KEY], b"", 200, "forwarded"),
        (
            "POST",
            "/live/in",
            &[KEY, JSON],
            br#"{"password":"x"}"#,
            403,
            "refused",
        ),
        ("GET", "/live/ok", &[], b"", 401, "denied"),
        ("GET", "/gone/x", &[], b"", 403, "expired"),
        ("GET", "/nowhere", &[], b"", 404, "no_route"),
        ("GET", "/down/x", &[], b"", 502, "upstream_error"),
        (
            "POST",
            "/live/in",
            &[KEY, JSON],
            b"{not json",
            400,
            "rejected",
        ),
    ];
    for (method, path, headers, body, status, _) in cases {
        let r = send(&proxy.url(), method, path, headers, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    let records = proxy.crossings("audit/crossings.jsonl");
    let outcomes: Vec<&str> = records
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    let expected: Vec<&str> = cases.iter().map(|c| c.5).collect();
    assert_eq!(outcomes, expected, "one record per crossing, in order");
    for (r, case) in records.iter().zip(&cases) {
        assert_eq!(r["status"], case.4);
        assert_eq!(r["request_id"].as_str().map(str::len), Some(16));
        for field in [
            "seq",
            "ts",
            "integration",
            "route",
            "client",
            "auth",
            "method",
            "path",
            "upstream_status",
            "mode",
            "request",
            "response",
            "duration_us",
            "prev",
            "hash",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
    }
    assert_chain_intact(&proxy, 7);
}

#[test]
fn concurrent_crossings_on_every_worker_form_one_chain() {
    // Four listener threads, each sealing records itself under the log's
    // lock: the chain must still be one unbroken sequence.
    let up = Upstream::json(200, "{}");
    let config = config("{dir}/audit/crossings.jsonl").replace(
        "listen: { address: 127.0.0.1:0 }",
        "listen: { address: 127.0.0.1:0, workers: 4 }",
    );
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("strict.yaml", STRICT)]);
    let (callers, each) = (8, 25);
    let url = proxy.url();
    std::thread::scope(|scope| {
        for _ in 0..callers {
            scope.spawn(|| {
                for _ in 0..each {
                    let r = send(&url, "GET", "/live/ok", &[KEY], b"");
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    let records = proxy.crossings("audit/crossings.jsonl");
    assert_eq!(records.len(), callers * each);
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|r| r["request_id"].as_str())
        .collect();
    assert_eq!(ids.len(), callers * each, "one record per crossing");
    assert_chain_intact(&proxy, callers * each);
}

/// `customs audit verify` accepts the log, with `records` records.
fn assert_chain_intact(proxy: &Proxy, records: usize) {
    let out = proxy.verify_chain("audit/crossings.jsonl");
    assert!(out.contains(&format!("intact: {records} records")), "{out}");
    // The anchor to keep elsewhere: the last record's seq and hash.
    let lines = proxy.read_jsonl("audit/crossings.jsonl");
    let last = lines.last().expect("a record");
    let anchor = format!(
        "last: seq {} hash {}",
        last["seq"],
        last["hash"].as_str().unwrap_or("?")
    );
    assert!(out.contains(&anchor), "{anchor} not in {out}");
}

#[test]
fn a_crossing_in_flight_at_sigterm_is_answered_and_recorded() {
    // The log is closed after the drain: the record of a crossing that
    // finishes during the drain must still be written.
    let up = Upstream::start(
        UpstreamOpts::new()
            .respond(200, &[("content-type", "application/json")], "{}")
            .delay(Duration::from_millis(500)),
    );
    let mut proxy = Proxy::builder().upstream(&up.url()).start(
        &config("{dir}/audit/crossings.jsonl"),
        &[("strict.yaml", STRICT)],
    );
    let url = proxy.url();
    let caller = std::thread::spawn(move || send(&url, "GET", "/live/ok", &[KEY], b""));
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.signal("TERM");
    let answer = caller.join().expect("caller thread");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let status = proxy.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let records = proxy.crossings("audit/crossings.jsonl");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "forwarded");
    assert_chain_intact(&proxy, 1);
}

#[test]
fn a_log_that_cannot_be_written_refuses_traffic_with_503() {
    let up = Upstream::json(200, "{}");
    // Writes to /dev/full fail with ENOSPC, for root too: a full disk.
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("/dev/full"), &[("strict.yaml", STRICT)]);
    let first = send(&proxy.url(), "GET", "/live/ok", &[KEY], b"");
    assert_eq!(
        first.status,
        503,
        "the crossing could not be recorded: {}",
        first.text()
    );
    assert_eq!(first.json()["error"], "audit_unavailable");
    let hits = up.hits();
    for _ in 0..3 {
        let r = send(&proxy.url(), "GET", "/live/ok", &[KEY], b"");
        assert_eq!(r.status, 503);
    }
    assert_eq!(up.hits(), hits, "nothing crosses while the log is failing");
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let failures = metrics::value(&m, "customs_audit_failures_total", &[]);
    assert!(
        failures >= Some(1.0),
        "the failing log is counted: {failures:?}"
    );
    assert_eq!(
        metrics::value(&m, "customs_audit_records_total", &[]),
        Some(0.0)
    );
    // Counted as they ended: refused for the log, none forwarded.
    let count = |labels: &[(&str, &str)]| metrics::value(&m, "customs_requests_total", labels);
    assert_eq!(count(&[("outcome", "forwarded")]).unwrap_or(0.0), 0.0);
    assert_eq!(count(&[("outcome", "rejected")]), Some(4.0));
    let reason = [("reason", "audit_unavailable")];
    assert_eq!(
        metrics::value(&m, "customs_refusals_total", &reason),
        Some(4.0)
    );
    // Orchestrators see it too: not ready, yet alive.
    assert_eq!(proxy.admin("/readyz").status, 503);
    assert_eq!(proxy.admin("/healthz").status, 200);
}

/// `on_failure: continue` keeps traffic flowing when the log cannot be
/// written, and says so in the metrics and readiness.
#[test]
fn a_failing_log_with_on_failure_continue_keeps_serving() {
    let up = Upstream::json(200, "{}");
    let config = config("/dev/full").replace(
        "audit: { path: \"/dev/full\" }",
        "audit: { path: \"/dev/full\", on_failure: continue }",
    );
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("strict.yaml", STRICT)]);
    for _ in 0..2 {
        assert_eq!(
            send(&proxy.url(), "GET", "/live/ok", &[KEY], b"").status,
            200
        );
    }
    assert_eq!(up.hits(), 2);
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let failures = metrics::value(&m, "customs_audit_failures_total", &[]);
    assert!(failures >= Some(2.0), "{failures:?}");
    assert_eq!(proxy.admin("/readyz").status, 503);
}

#[test]
fn a_caller_that_disconnects_still_leaves_one_record() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let up = Upstream::start(UpstreamOpts::new().raw_steps(vec![RawStep::Hang]));
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("{dir}/audit.jsonl"), &[("strict.yaml", STRICT)]);
    let mut caller = std::net::TcpStream::connect(proxy.addr()).expect("connect");
    caller
        .write_all(b"GET /live/ok HTTP/1.1\r\nHost: customs\r\nX-Api-Key: cst_outcomes_key\r\n\r\n")
        .expect("send");
    // The request is in flight once the upstream holds it; then the caller leaves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(up.hits(), 1);
    drop(caller);
    let records = proxy.eventually("the disconnect's record", |p| {
        Some(p.crossings("audit.jsonl")).filter(|r| !r.is_empty())
    });
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], 499);
    assert_eq!(records[0]["outcome"], "rejected");
    assert_eq!(
        records[0]["reason"],
        "client disconnected before the response"
    );
    // Counted as it ended (just after its record): rejected, and not as a
    // refusal of ours.
    let rejected = [("outcome", "rejected")];
    let m = proxy.eventually("the disconnect counted", |p| {
        let m = metrics::parse(&p.admin("/metrics").text());
        metrics::value(&m, "customs_requests_total", &rejected).map(|_| m)
    });
    assert_eq!(
        metrics::value(&m, "customs_requests_total", &rejected),
        Some(1.0)
    );
    let refusals = metrics::value(&m, "customs_refusals_total", &[]);
    assert_eq!(refusals.unwrap_or(0.0), 0.0, "counted as a refusal");
}

#[test]
fn callers_leaving_on_every_worker_right_before_shutdown_each_leave_one_record() {
    use std::io::Write;
    // Disconnects write their record from the request's drop; the
    // process stops at once after them, so none may wait on a task.
    let up = Upstream::start(UpstreamOpts::new().raw_steps(vec![RawStep::Hang]));
    let config = config("{dir}/audit.jsonl").replace(
        "listen: { address: 127.0.0.1:0 }",
        "listen: { address: 127.0.0.1:0, workers: 4 }",
    );
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("strict.yaml", STRICT)]);
    let callers = 12;
    let mut streams: Vec<std::net::TcpStream> = (0..callers)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(proxy.addr()).expect("connect");
            s.write_all(
                b"GET /live/ok HTTP/1.1\r\nHost: customs\r\nX-Api-Key: cst_outcomes_key\r\n\r\n",
            )
            .expect("send");
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits() < callers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(up.hits(), callers, "every request reached the upstream");
    streams.clear();
    proxy.signal("TERM");
    let status = proxy.wait_exit(Duration::from_secs(40));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), callers, "{records:?}");
    assert!(records.iter().all(|r| r["status"] == 499), "{records:?}");
    proxy.verify_chain("audit.jsonl");
}

/// Query values never reach the log, also when a piece has no `=` or hides
/// behind a `;` separator.
#[test]
fn query_values_are_elided_from_the_log() {
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("{dir}/audit.jsonl"), &[("strict.yaml", STRICT)]);
    let path = "/live/ok?canary%2Bt1%40example.com&q=078-05-1120;ssn=4111111111111111";
    assert_eq!(send(&proxy.url(), "GET", path, &[KEY], b"").status, 200);
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records[0]["path"], "/ok?*&q=;ssn=");
    let log = proxy.read("audit.jsonl");
    for canary in ["canary", "078-05-1120", "4111111111111111"] {
        assert!(!log.contains(canary), "{canary} in the audit log");
    }
}

/// Serves `n` allowed crossings with the log at `audit_path`, then stops.
fn crossed_and_stopped(audit_path: &str, n: usize) -> Proxy {
    let up = Upstream::json(200, "{}");
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config(audit_path), &[("strict.yaml", STRICT)]);
    for _ in 0..n {
        let r = send(&proxy.url(), "GET", "/live/ok", &[KEY], b"");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(proxy.stop_gracefully().success());
    proxy
}

/// With `audit.path: "-"` stdout carries the crossing log alone (the ready
/// line goes to stderr), so what a container runtime captures verifies.
#[test]
fn a_log_on_stdout_is_a_chain_of_its_own() {
    let proxy = crossed_and_stopped("-", 2);
    proxy.write("captured.jsonl", &proxy.stdout());
    let out = proxy.verify_chain("captured.jsonl");
    assert!(out.contains("intact: 2 records"), "{out}");
}

/// `customs audit verify` exits 1 and names the line when a record was
/// altered after the fact.
#[test]
fn audit_verify_names_an_altered_record() {
    let proxy = crossed_and_stopped("{dir}/audit.jsonl", 3);
    let log = proxy.read("audit.jsonl");
    let altered = log.replacen("\"status\":200", "\"status\":201", 2);
    proxy.write("altered.jsonl", &altered);
    let (code, out) = proxy.audit_verify("altered.jsonl");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("altered.jsonl:1: hash mismatch"), "{out}");
}
