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

/// A token made for this run (never a literal in the repo).
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex::encode(bytes)
}

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
