//! Governed bodies cost memory bounded by configuration, not by their shape: a body of
//! tiny values is refused while it is parsed once it holds more than
//! `limits.max_json_elements` values, both ways.

mod common;
use common::*;

const POLICY: &str = "policy: strict\nbody:\n  rules:\n    - id: m\n      mask: [$..ssn]\n";

fn ones(n: usize) -> String {
    let mut body = String::with_capacity(2 * n + 2);
    body.push('[');
    for i in 0..n {
        body.push_str(if i == 0 { "1" } else { ",1" });
    }
    body.push(']');
    body
}

fn start(up: &Upstream, limits: &str) -> Proxy {
    let config = demo_config(&[
        "- { id: up, methods: [POST], path: /up, request: strict, response: pass }",
        "- { id: down, methods: [GET], path: /down, request: pass, response: strict }",
    ]) + limits;
    Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("strict.yaml", POLICY)])
}

#[test]
fn a_body_over_the_element_budget_is_refused_both_ways() {
    let up = Upstream::json(200, &ones(1_001));
    let proxy = start(&up, "limits: { max_json_elements: 1000 }\n");
    let json = [("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(999).as_bytes(),
    );
    assert_eq!(r.status, 200, "1000 values cross: {}", r.text());
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(1_000).as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("bad_request"), "{}", r.text());
    assert_eq!(up.hits(), 1, "the refused body never reached the upstream");
    let r = send(&proxy.url(), "GET", "/demo/down", &[], b"");
    assert_eq!(r.status, 502, "{}", r.text());
    let records = proxy.crossings("audit.jsonl");
    let reasons: Vec<String> = records.iter().map(|r| r["reason"].to_string()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("more than 1000 values"))
            .count(),
        2,
        "{reasons:?}"
    );
}

#[test]
fn the_default_budget_refuses_a_ten_megabyte_array_of_ones() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up, "limits: { max_body_bytes: 12MiB }\n");
    let json = [("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(5 << 20).as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(up.hits(), 0);
}
