//! The security team's workbench on the admin listener, over real sockets:
//! `admin.token` guards `/inventory` and `/ui/api/*` while probes stay open;
//! the playground runs a policy (named or pasted) on a pasted document with
//! the rule behind every change, never with the production hash key.

mod common;
use common::*;

use customs::policy::TEST_HASH_KEY;
use customs::policy::transform::HashKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const POLICY: &str = r#"policy: customers
body:
  rules:
    - id: card-last-four
      mask: [$.customer.card]
      keep_last: 4
    - id: pseudonym
      hash: [$.customer.id]
    - id: no-medical
      refuse: [$..diagnosis]
    - id: backstop
      redact: [$..*]
tests:
  - name: the card keeps four digits
    input: {"customer": {"card": "4111111111111111"}}
    expect: {"customer": {"card": "************1111"}}
"#;

fn start(token: &str) -> Proxy {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let config = demo_config(&[
        "- { id: r, methods: [POST], path: /x, request: customers, response: pass }",
    ])
    .replace(
        "admin: { address: 127.0.0.1:0 }",
        &format!(
            "admin: {{ address: 127.0.0.1:0, token: \"sha256:{digest}\" }}\nsecrets: {{ hash_key: \"${{env:HASH_KEY}}\" }}"
        ),
    );
    Proxy::builder()
        .upstream("http://127.0.0.1:9")
        .env("HASH_KEY", &fresh_token())
        .start(&config, &[("customers.yaml", POLICY)])
}

fn admin(proxy: &Proxy, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(&proxy.admin_url(), method, path, &headers, body)
}

fn play(proxy: &Proxy, token: &str, ask: Value) -> Value {
    let reply = admin(
        proxy,
        "POST",
        "/ui/api/apply",
        Some(token),
        ask.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn the_token_guards_what_describes_integrations_and_probes_stay_open() {
    let token = fresh_token();
    let proxy = start(&token);
    for path in ["/inventory", "/ui/api/policies"] {
        for presented in [None, Some("wrong"), Some(&token[1..])] {
            let r = admin(&proxy, "GET", path, presented, b"");
            assert_eq!(r.status, 401, "{path} with {presented:?}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"customs admin\"")
            );
            assert!(
                !r.text().contains("demo"),
                "a refusal names nothing: {}",
                r.text()
            );
        }
        assert_eq!(
            admin(&proxy, "GET", path, Some(&token), b"").status,
            200,
            "{path}"
        );
    }
    let r = admin(
        &proxy,
        "POST",
        "/ui/api/apply",
        None,
        br#"{"policy":"customers","document":"{}"}"#,
    );
    assert_eq!(r.status, 401);
    for open in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(admin(&proxy, "GET", open, None, b"").status, 200, "{open}");
    }
    // The page is a static shell: no integration, policy or value in it.
    let page = admin(&proxy, "GET", "/ui", None, b"");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    let html = page.text();
    assert!(html.contains("<title>customs"), "{html}");
    assert!(
        !html.contains("demo") && !html.contains("customers"),
        "the shell holds no data"
    );
    let inventory = admin(&proxy, "GET", "/inventory", Some(&token), b"").json();
    assert_eq!(inventory[0]["name"], "demo");
}

#[test]
fn the_playground_shows_each_change_with_its_rule_and_never_uses_the_production_key() {
    let token = fresh_token();
    let proxy = start(&token);
    let doc = json!({"customer": {"id": "C-77", "card": "4111111111111111", "note": "mail jane@example.com"}});
    let a = play(
        &proxy,
        &token,
        json!({"policy": "customers", "document": doc.to_string()}),
    );
    assert_eq!(a["error"], Value::Null, "{a}");
    let test_key = HashKey::new(TEST_HASH_KEY);
    assert_eq!(
        a["output"],
        json!({"customer": {"id": test_key.hash(b"C-77"), "card": "************1111", "note": "mail [EMAIL]"}})
    );
    let changes: Vec<(String, String, String)> = a["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["rule"].as_str().unwrap_or("").into(),
                c["action"].as_str().unwrap_or("").into(),
                c["path"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for want in [
        ("card-last-four", "mask", "$['customer']['card']"),
        ("pseudonym", "hash", "$['customer']['id']"),
        ("backstop", "redact", "$['customer']['note']"),
    ] {
        assert!(
            changes
                .iter()
                .any(|c| (c.0.as_str(), c.1.as_str(), c.2.as_str()) == want),
            "{want:?} in {changes:?}"
        );
    }
    assert_eq!(
        (
            a["tests_run"].as_u64(),
            a["test_failures"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );

    let refused = play(
        &proxy,
        &token,
        json!({"policy": "customers", "document": r#"{"a":{"diagnosis":"x"}}"#}),
    );
    assert_eq!(refused["output"], Value::Null);
    assert_eq!(refused["refused"]["rule"], "no-medical");

    let bad = play(
        &proxy,
        &token,
        json!({"policy": "customers", "document": r#"{"a":1,"a":2}"#}),
    );
    assert!(
        bad["error"]
            .as_str()
            .is_some_and(|e| e.contains("would be refused")),
        "{bad}"
    );

    let pasted = "policy: pasted\nbody:\n  rules:\n    - id: gone\n      drop: [$.secret]\n";
    let p = play(
        &proxy,
        &token,
        json!({"policy_text": pasted, "document": r#"{"secret":1,"kept":2}"#}),
    );
    assert_eq!(
        (p["policy"].as_str(), &p["output"]),
        (Some("pasted"), &json!({"kept": 2}))
    );
    let broken = play(
        &proxy,
        &token,
        json!({"policy_text": "policy: x\nbody: {rules: [{id: a, mask: ['$[']}]}\n", "document": "{}"}),
    );
    assert!(
        broken["error"]
            .as_str()
            .is_some_and(|e| e.contains("pasted policy:")),
        "{broken}"
    );

    // Nothing the playground was shown reaches the crossing log or the service log.
    let log = proxy.read("audit.jsonl") + &proxy.logs();
    for planted in ["4111111111111111", "jane@example.com", "C-77"] {
        assert!(!log.contains(planted), "{planted} leaked into the logs");
    }
}

/// The bar of the workbench: a week in monitor mode, compressed. Traffic with
/// PII at known paths crosses a monitor-mode policy; discovery names the
/// paths; `customs draft` writes a policy that passes `check` and, switched
/// to enforce, lets none of the planted values cross on the same traffic.
#[test]
fn a_policy_drafted_from_discovery_masks_every_planted_value_once_enforced() {
    let planted = [
        ("5555 5555 5555 4444", "4012888888881881"),
        ("ann.lee@partner.example", "joe@partner.example"),
        ("536-90-4399", "219-09-9999"),
    ];
    let body = move |i: usize| {
        let pick = |(even, odd): (&'static str, &'static str)| {
            if i.is_multiple_of(2) { even } else { odd }
        };
        let (card, mail, ssn) = (pick(planted[0]), pick(planted[1]), pick(planted[2]));
        json!({"incidents": [{"id": i, "title": "printer on fire", "customer": {"cc": card, "email": mail, "ssn": ssn}, "notes": format!("call {mail} back")}]})
            .to_string()
    };
    let up = Upstream::start(UpstreamOpts::new().handler(move |req: &Recorded| {
        let i: usize = req
            .uri
            .split_once('?')
            .and_then(|(_, q)| q.parse().ok())
            .unwrap_or(0);
        hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body(i))))
            .expect("incident response")
    }));
    let token = fresh_token();
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let config = demo_config(&[
        "- { id: incidents, methods: [GET], path: /incidents, request: pass, response: watch }",
    ])
    .replace(
        "admin: { address: 127.0.0.1:0 }",
        &format!(
            "admin: {{ address: 127.0.0.1:0, token: \"sha256:{digest}\" }}\nsignals: {{ drift_sample: 0s }}\nsecrets: {{ hash_key: \"${{env:HASH_KEY}}\" }}"
        ),
    );
    let watch =
        "policy: watch\nmode: monitor\nbody:\n  rules:\n    - { id: backstop, redact: [] }\n";
    let hash_key = fresh_token();
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .env("HASH_KEY", &hash_key)
        .start(&config, &[("watch.yaml", watch)]);
    let traffic = |proxy: &Proxy| -> Vec<String> {
        (0..6)
            .map(|i| {
                send(
                    &proxy.url(),
                    "GET",
                    &format!("/demo/incidents?{i}"),
                    &[],
                    b"",
                )
                .text()
            })
            .collect()
    };
    let before = traffic(&proxy);
    assert!(
        before[0].contains(planted[0].0),
        "monitor mode forwards unchanged"
    );
    let discovered = proxy.eventually("six sampled bodies", |p| {
        let r = admin(p, "GET", "/discovery", Some(&token), b"").json();
        (r[0]["bodies"] == 6).then_some(r)
    });
    let text = discovered.to_string();
    for (a, b) in planted {
        assert!(
            !text.contains(a) && !text.contains(b),
            "discovery keeps no value: {text}"
        );
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args([
            "draft",
            "--integration",
            "demo",
            "--route",
            "incidents",
            "--direction",
            "response",
        ])
        .args(["--admin", &proxy.admin_addr().to_string()])
        .env("CUSTOMS_ADMIN_TOKEN", &token)
        .output()
        .expect("customs draft");
    let drafted = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(drafted.contains("mode: monitor"), "{drafted}");
    for (a, b) in planted {
        assert!(
            !drafted.contains(a) && !drafted.contains(b),
            "the draft holds no captured value"
        );
    }
    let enforced = drafted
        .replace("mode: monitor", "mode: enforce")
        .replace("policy: demo-incidents-response", "policy: watch");
    proxy.write("policies/watch.yaml", &enforced);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["check", "--config"])
        .arg(proxy.config_path())
        .env("HASH_KEY", &hash_key)
        .output()
        .expect("customs check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    proxy.signal("HUP");
    assert!(proxy.wait_logs(std::time::Duration::from_secs(30), |l| {
        l.contains("Configuration reloaded")
    }));

    for answer in traffic(&proxy) {
        for (a, b) in planted {
            assert!(
                !answer.contains(a) && !answer.contains(b),
                "{a} crossed: {answer}"
            );
        }
        let v: Value = serde_json::from_str(&answer).expect("JSON answer");
        assert_eq!(
            v["incidents"][0]["title"], "printer on fire",
            "what is not data still crosses"
        );
        assert!(
            v["incidents"][0]["customer"]["cc"]
                .as_str()
                .is_some_and(|c| c.ends_with("4444") || c.ends_with("1881"))
        );
    }
}

/// Without a token, the pages that describe integrations answer only requests
/// addressed to an IP or localhost: a site an attacker re-points at 127.0.0.1
/// (DNS rebinding) names itself in `Host` and reads nothing.
#[test]
fn without_a_token_a_rebound_host_name_reads_nothing() {
    let config =
        demo_config(&["- { id: r, methods: [GET], path: /x, request: pass, response: pass }"]);
    let proxy = Proxy::builder()
        .upstream("http://127.0.0.1:9")
        .start(&config, &[]);
    let url = proxy.admin_url();
    let rebound = send(
        &url,
        "GET",
        "/inventory",
        &[("host", "attacker.example:9090")],
        b"",
    );
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    assert!(!rebound.text().contains("demo"));
    for host in ["localhost:1", "127.0.0.1", "[::1]:9090"] {
        let r = send(&url, "GET", "/inventory", &[("host", host)], b"");
        assert_eq!(r.status, 200, "{host}");
    }
    let probe = send(
        &url,
        "GET",
        "/metrics",
        &[("host", "attacker.example")],
        b"",
    );
    assert_eq!(probe.status, 200, "probes and scrapers are not affected");
}
