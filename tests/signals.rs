//! Monitoring signals with the real binary: each one an audit event, a
//! `customs_anomalies_total` increment and a log line — never a payload value.

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Planted in payloads; must never reach the audit log or the service log.
const CANARY: &str = "CANARY-VALUE-7731";
const WAIT: Duration = Duration::from_secs(20);

/// One integration `demo` at /demo; `upstream` and `signals` are YAML
/// fragments (`""` for none), `expires` its end date.
fn config(upstream_extra: &str, signals: &str, expires: &str, routes: &[&str]) -> String {
    let mut c = format!(
        r#"listen: {{ address: 127.0.0.1:0 }}
admin: {{ address: 127.0.0.1:0 }}
policies: policies/
audit: {{ path: "{{dir}}/audit.jsonl" }}
{signals}
integrations:
  - name: demo
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: {expires}
    anonymous: true
    upstream: {{ url: "{{upstream}}"{upstream_extra} }}
    routes:
"#
    );
    for r in routes {
        c.push_str("      ");
        c.push_str(r);
        c.push('\n');
    }
    c
}

const GET_PASS: &str = "- { id: r, methods: [GET], path: /x, request: pass, response: pass }";

fn events(proxy: &Proxy, kind: &str) -> Vec<serde_json::Value> {
    proxy
        .read_jsonl("audit.jsonl")
        .into_iter()
        .filter(|r| r["event"] == kind)
        .collect()
}

/// Polls the audit log (bounded) until an event of `kind` is in it.
fn wait_events(proxy: &Proxy, kind: &str) {
    let deadline = Instant::now() + WAIT;
    while events(proxy, kind).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no {kind} event in the audit log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of `customs_anomalies_total{integration="demo",kind=…}`.
fn anomalies(proxy: &Proxy, kind: &str) -> f64 {
    let text = proxy.admin("/metrics").text();
    text.lines()
        .filter(|l| l.starts_with("customs_anomalies_total{"))
        .filter(|l| l.contains(&format!("kind=\"{kind}\"")) && l.contains("integration=\"demo\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn no_canary(proxy: &Proxy) {
    assert!(
        !proxy.read("audit.jsonl").contains(CANARY),
        "payload value in the audit log"
    );
    assert!(
        !proxy.logs().contains(CANARY),
        "payload value in the service log"
    );
}

#[test]
fn upstream_401_to_an_injected_credential_is_signalled_once() {
    let up = Upstream::json(401, &format!(r#"{{"error":"{CANARY}"}}"#));
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("token", "UPSTREAM-SECRET-123\n")
        .start(
            &config(
                r#", inject: { header: Authorization, value: "Bearer ${file:token}" }"#,
                "",
                "2099-01-01",
                &[GET_PASS],
            ),
            &[],
        );
    for _ in 0..3 {
        let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
        assert_eq!(r.status, 401, "{}", r.text());
    }
    assert!(proxy.wait_logs(WAIT, |l| l.contains("upstream_credential_failing")));
    let evs = events(&proxy, "upstream_credential_failing");
    assert_eq!(evs.len(), 1, "rate-limited: {evs:?}");
    assert_eq!(evs[0]["integration"], "demo");
    assert_eq!(evs[0]["upstream_status"], 401);
    assert_eq!(evs[0]["route"], "r");
    assert_eq!(anomalies(&proxy, "upstream_credential_failing"), 1.0);
    assert_eq!(upstream_auth_failures(&proxy), Some(3.0));
    no_canary(&proxy);
    assert!(!proxy.read("audit.jsonl").contains("UPSTREAM-SECRET"));
    assert!(!proxy.logs().contains("UPSTREAM-SECRET"));
}

#[test]
fn upstream_401_without_injected_credential_is_not_a_signal() {
    let up = Upstream::json(401, "{}");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("", "", "2099-01-01", &[GET_PASS]), &[]);
    let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.status, 401);
    // The record is written before the response is released.
    assert!(events(&proxy, "upstream_credential_failing").is_empty());
    assert_eq!(anomalies(&proxy, "upstream_credential_failing"), 0.0);
    assert_eq!(
        upstream_auth_failures(&proxy),
        None,
        "no credential of ours failed"
    );
}

/// `customs_upstream_auth_failures_total{integration="demo"}`.
fn upstream_auth_failures(proxy: &Proxy) -> Option<f64> {
    let m = metrics::parse(&proxy.admin("/metrics").text());
    let demo = [("integration", "demo")];
    metrics::value(&m, "customs_upstream_auth_failures_total", &demo)
}

#[test]
fn burst_after_warmup_is_a_volume_anomaly() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let signals = "signals: { window: 100ms, warmup: 400ms, volume_multiple: 5 }";
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("", signals, "2099-01-01", &[GET_PASS]), &[]);
    // Warm-up is time itself: a request per window, no signal yet.
    let warm_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < warm_until {
        assert_eq!(send(&proxy.url(), "GET", "/demo/x", &[], b"").status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        events(&proxy, "volume_anomaly").is_empty(),
        "fired during warm-up"
    );
    let mut sent = 0;
    while !proxy.logs().contains("volume_anomaly") {
        assert!(sent < 2000, "no volume_anomaly after {sent} requests");
        assert_eq!(send(&proxy.url(), "GET", "/demo/x", &[], b"").status, 200);
        sent += 1;
    }
    let evs = events(&proxy, "volume_anomaly");
    assert!(!evs.is_empty());
    assert_eq!(evs[0]["integration"], "demo");
    assert!(evs[0]["count"].as_u64().is_some_and(|n| n > 5), "{evs:?}");
    assert!(anomalies(&proxy, "volume_anomaly") >= 1.0);
}

const STRICT: &str = "policy: strict\nbody:\n  allow: ['$.id', '$.items[*].name']\n";

#[test]
fn new_field_outside_the_allow_list_is_schema_drift_once() {
    let body = format!(
        r#"{{"id":1,"items":[{{"name":"a","extra":"{CANARY}"}}],"added":{{"note":"{CANARY}"}}}}"#
    );
    let up = Upstream::json(200, &body);
    let route = "- { id: r, methods: [GET], path: /x, request: pass, response: strict }";
    let proxy = Proxy::builder().upstream(&up.url()).start(
        &config("", "", "2099-01-01", &[route]),
        &[("strict.yaml", STRICT)],
    );
    for _ in 0..3 {
        let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains(CANARY), "dropped by the allow-list");
    }
    assert!(proxy.wait_logs(WAIT, |l| l.contains("schema_drift")));
    let evs = events(&proxy, "schema_drift");
    assert_eq!(evs.len(), 1, "once, not per request: {evs:?}");
    let ev = &evs[0];
    assert_eq!(ev["route"], "r");
    assert_eq!(ev["direction"], "response");
    assert_eq!(ev["policy"], "strict");
    let paths: Vec<&str> = ev["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(paths.iter().any(|p| p.contains("added")), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.contains("[*]") && p.contains("extra")),
        "wildcarded: {paths:?}"
    );
    assert_eq!(anomalies(&proxy, "schema_drift"), 1.0);
    no_canary(&proxy);
}

#[test]
fn expiring_integration_and_idle_client_are_signalled_at_start() {
    let soon = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(10))
        .expect("date");
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder().upstream(&up.url()).start(
        &config(
            "",
            "signals: { idle_days: 0 }",
            &soon.to_string(),
            &[GET_PASS],
        ),
        &[],
    );
    // Daily-check events are queued, not awaited: poll the log file.
    wait_events(&proxy, "credential_expiring");
    wait_events(&proxy, "idle_integration");
    let evs = events(&proxy, "credential_expiring");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["integration"], "demo");
    assert_eq!(evs[0]["subject"], "integration");
    assert_eq!(evs[0]["days_left"], 10);
    assert_eq!(evs[0]["expires"], soon.to_string());
    let idle = events(&proxy, "idle_integration");
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0]["subject"], "integration");
    assert!(idle[0]["last_traffic"].is_null(), "no traffic since start");
    assert_eq!(anomalies(&proxy, "credential_expiring"), 1.0);
    assert_eq!(anomalies(&proxy, "idle_integration"), 1.0);
}

#[test]
fn healthy_integration_raises_no_daily_signal() {
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config("", "", "2099-01-01", &[GET_PASS]), &[]);
    assert_eq!(send(&proxy.url(), "GET", "/demo/x", &[], b"").status, 200);
    let records = proxy.read_jsonl("audit.jsonl");
    assert!(
        records
            .iter()
            .all(|r| r.get("event").is_none_or(|e| e == "reload")),
        "{records:?}"
    );
}

/// No allow-list: drift is judged against the shapes seen since start.
const LIGHT: &str =
    "policy: light\nbody:\n  rules:\n    - id: d\n      drop: ['$.incidents[*].internal']\n";

/// An upstream answering an incident list that gains `tier` (and a nested
/// `sla.hours`) once `changed` is set; `?fail` gets a 503 error body.
fn changing_upstream(changed: &Arc<AtomicBool>) -> Upstream {
    let changed = changed.clone();
    Upstream::start(UpstreamOpts::new().handler(move |req| {
        let json = |status: u16, body: String| {
            http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .expect("response")
        };
        if req.uri.ends_with("?fail") {
            return json(503, r#"{"error":{"code":"busy"}}"#.into());
        }
        let extra = if changed.load(Ordering::SeqCst) {
            format!(r#","tier":"{CANARY}","sla":{{"hours":4}}"#)
        } else {
            String::new()
        };
        let body = format!(
            r#"{{"incidents":[{{"id":"INC1","internal":"{CANARY}"{extra}}},{{"id":"INC2"}}]}}"#
        );
        json(200, body)
    }))
}

#[test]
fn schema_drift_after_the_upstream_adds_a_field_without_allow_list() {
    let changed = Arc::new(AtomicBool::new(false));
    let up = changing_upstream(&changed);
    // Every body sampled; the first sample is the baseline (no warm-up by
    // time); volumes are out of the way.
    let signals = "signals: { warmup: 0s, drift_sample: 0s, volume_multiple: 100000 }";
    let routes = [
        "- { id: r, methods: [GET], path: /x, request: pass, response: light }",
        "- { id: p, methods: [GET], path: /p, request: pass, response: pass }",
    ];
    let proxy = Proxy::builder().upstream(&up.url()).start(
        &config("", signals, "2099-01-01", &routes),
        &[("light.yaml", LIGHT)],
    );
    for path in ["/demo/x", "/demo/x", "/demo/x", "/demo/p"] {
        assert_eq!(send(&proxy.url(), "GET", path, &[], b"").status, 200);
    }
    // An error body is not the API's shape.
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x?fail", &[], b"").status,
        503
    );
    // Records (and the events before them) are written before the response.
    assert!(events(&proxy, "schema_drift").is_empty(), "same shape");
    changed.store(true, Ordering::SeqCst);
    for path in ["/demo/p", "/demo/x", "/demo/x", "/demo/x"] {
        let r = send(&proxy.url(), "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_events(&proxy, "schema_drift");
    let evs = events(&proxy, "schema_drift");
    assert_eq!(evs.len(), 1, "once, and not for the pass route: {evs:?}");
    let ev = &evs[0];
    assert_eq!(ev["integration"], "demo");
    assert_eq!(ev["route"], "r");
    assert_eq!(ev["direction"], "response");
    assert_eq!(ev["policy"], "light");
    assert_eq!(
        ev["paths"],
        serde_json::json!([
            "$['incidents'][*]['tier']",
            "$['incidents'][*]['sla']",
            "$['incidents'][*]['sla']['hours']"
        ])
    );
    assert_eq!(anomalies(&proxy, "schema_drift"), 1.0);
    // The candidates are for the signal only, not the crossing records.
    let crossings = proxy.crossings("audit.jsonl");
    assert_eq!(crossings.len(), 9);
    assert!(
        crossings
            .iter()
            .all(|c| c["response"].get("new_paths").is_none())
    );
    no_canary(&proxy);
}

/// `config` with API-key clients instead of anonymous access.
fn with_clients(config: &str, clients: &[&str]) -> String {
    let mut list = String::from("    clients:\n");
    for c in clients {
        list.push_str("      ");
        list.push_str(c);
        list.push('\n');
    }
    config.replace("    anonymous: true\n", &list)
}

fn key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

#[test]
fn auth_failure_burst_after_warmup_is_a_volume_anomaly() {
    const BAD_KEY: &str = "cst_not_a_key_4821";
    let up = Upstream::json(200, "{}");
    let warmup = Duration::from_millis(1000);
    let signals =
        "signals: { window: 50ms, warmup: 1s, volume_multiple: 3, auth_failure_burst: 5 }";
    // The proxy's warm-up starts between these two instants.
    let before = Instant::now();
    let app = format!("- {{ id: app, api_key: \"{}\" }}", key_hash("cst_good_key"));
    let proxy = Proxy::builder().upstream(&up.url()).start(
        &with_clients(&config("", signals, "2099-01-01", &[GET_PASS]), &[&app]),
        &[],
    );
    let started = Instant::now();
    let bad = [("x-api-key", BAD_KEY)];
    for _ in 0..10 {
        assert_eq!(send(&proxy.url(), "GET", "/demo/x", &bad, b"").status, 401);
    }
    if before.elapsed() < warmup {
        assert!(events(&proxy, "volume_anomaly").is_empty(), "warm-up");
    }
    std::thread::sleep(warmup.saturating_sub(started.elapsed()));
    let burst = |log: &str| log.contains("volume_anomaly") && log.contains("auth_failures");
    let mut sent = 0;
    while !burst(&proxy.logs()) {
        assert!(sent < 2000, "no auth-failure burst after {sent} requests");
        assert_eq!(send(&proxy.url(), "GET", "/demo/x", &bad, b"").status, 401);
        sent += 1;
    }
    let evs = events(&proxy, "volume_anomaly");
    let ev = evs
        .iter()
        .find(|e| e["measure"] == "auth_failures")
        .unwrap_or_else(|| panic!("{evs:?}"));
    assert_eq!(ev["integration"], "demo");
    assert!(ev["count"].as_u64().is_some_and(|n| n >= 5), "{ev}");
    assert!(anomalies(&proxy, "volume_anomaly") >= 1.0);
    assert!(!proxy.read("audit.jsonl").contains(BAD_KEY));
    assert!(!proxy.logs().contains(BAD_KEY));
}

#[test]
fn idle_client_credentials_are_signalled_at_start() {
    let up = Upstream::json(200, "{}");
    let clients = [
        format!("- {{ id: app, api_key: \"{}\" }}", key_hash("cst_app_key")),
        format!(
            "- {{ id: batch, api_key: \"{}\" }}",
            key_hash("cst_batch_key")
        ),
    ];
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let base = config("", "signals: { idle_days: 0 }", "2099-01-01", &[GET_PASS]);
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&with_clients(&base, &clients), &[]);
    let deadline = Instant::now() + WAIT;
    while events(&proxy, "idle_integration").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "fewer than 3 idle_integration events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle = events(&proxy, "idle_integration");
    let subjects: Vec<(String, String)> = idle
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
            (s("subject"), s("credential"))
        })
        .collect();
    assert_eq!(
        subjects,
        [
            ("integration".into(), "-".into()),
            ("client".into(), "app".into()),
            ("client".into(), "batch".into())
        ],
        "{idle:?}"
    );
    assert!(
        idle.iter()
            .all(|e| e["integration"] == "demo" && e["idle_days"] == 0)
    );
    assert!(idle.iter().all(|e| e["last_traffic"].is_null()));
    assert_eq!(anomalies(&proxy, "idle_integration"), 3.0);
    assert!(
        !proxy.read("audit.jsonl").contains("cst_"),
        "no key material"
    );
}

#[test]
fn idle_time_counts_from_the_crossing_log_found_at_start() {
    // A restart must not reset idleness: the log says the last forwarded
    // crossing was long before this start.
    let up = Upstream::json(200, "{}");
    let last = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(40 * 24);
    let last = format!("{last:.0}");
    let fields = serde_json::json!({
        "ts": last, "request_id": "r1", "integration": "demo", "route": "r",
        "method": "GET", "path": "/x", "status": 200, "outcome": "forwarded",
    });
    let fields = serde_json::to_vec(&fields).expect("fields");
    let earlier =
        customs::audit::chain::seal(1, customs::audit::chain::GENESIS, &fields).expect("seals");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("audit.jsonl", &earlier.line)
        .start(
            &config("", "signals: { idle_days: 30 }", "2099-01-01", &[GET_PASS]),
            &[],
        );
    wait_events(&proxy, "idle_integration");
    let idle = events(&proxy, "idle_integration");
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0]["subject"], "integration");
    assert_eq!(idle[0]["last_traffic"], last.as_str());
    assert_eq!(idle[0]["since"], last.as_str());
    // The chain went on from the record that was there.
    assert_eq!(idle[0]["seq"], 2);
}
