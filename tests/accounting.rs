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
