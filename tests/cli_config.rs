//! `customs check`, `inventory` and `keygen` on configs, run as the built
//! binary: every config mistake is `customs.yaml:LINE: message` plus a hint
//! and exit 1; risky but valid setups are warnings with exit 0; the
//! inventory prints what auditors need in three formats and the admin
//! listener serves the same JSON.

mod common;
use common::*;

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

/// The day every date-based expectation below is computed for.
const TODAY: &str = "2026-11-26";

fn customs(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTOMS_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run customs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hash_of(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

const POLICY: &str = "policy: strip\nbody:\n  rules:\n    - id: d\n      drop: [$.secret]\n";

/// A valid config: one integration, one client, one route.
fn good() -> String {
    format!(
        r#"listen: {{ address: 127.0.0.1:0 }}
admin: {{ address: 127.0.0.1:0 }}
audit: {{ path: audit.jsonl }}
integrations:
  - name: acme
    owner: team@example.com
    classification: internal
    data: [tickets]
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: http://127.0.0.1:9
      inject: {{ header: Authorization, value: "Bearer ${{file:token}}" }}
    clients:
      - id: desk
        api_key: {}
        expires: 2099-01-01
    routes:
      - id: read
        methods: [GET]
        path: /items/**
        request: strip
        response: strip
"#,
        hash_of("cst_cli_config_key")
    )
}

/// Writes `config` (and a policy and the token file) into a temp dir.
fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("policies")).expect("policies dir");
    std::fs::write(dir.path().join("policies/strip.yaml"), POLICY).expect("policy");
    std::fs::write(dir.path().join("token"), "upstream-token\n").expect("token");
    std::fs::write(dir.path().join("customs.yaml"), config).expect("config");
    dir
}

fn check(config: &str) -> (Option<i32>, String) {
    let dir = setup(config);
    let out = customs(
        &["check", "--config", "customs.yaml", "--as-of", TODAY],
        dir.path(),
    );
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

/// 1-based line of the first line of `config` containing `needle`.
fn line_of(config: &str, needle: &str) -> usize {
    config
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in config"))
}

/// Replaces exactly one occurrence.
fn edit(config: &str, from: &str, to: &str) -> String {
    assert_eq!(config.matches(from).count(), 1, "{from:?} must occur once");
    config.replace(from, to)
}

/// A second integration, appended to [`good`].
fn second(name: &str, mount: &str) -> String {
    format!(
        r#"  - name: {name}
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    mount: {mount}
    upstream: {{ url: "http://127.0.0.1:9" }}
    clients: [{{ id: c, api_key: {}, expires: 2099-01-01 }}]
    routes: [{{ id: r, methods: [GET], path: /**, request: strip, response: strip }}]
"#,
        hash_of("cst_other")
    )
}

#[test]
fn the_good_config_checks_clean() {
    let (code, out) = check(&good());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
}

#[test]
fn each_config_mistake_is_reported_at_its_line_with_a_hint() {
    let g = good();
    let hash = hash_of("cst_cli_config_key");
    // (config, the line's text, the message expected after `customs.yaml:LINE: `)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            edit(
                &g,
                "    data: [tickets]\n",
                "    data: [tickets]\n    colour: blue\n",
            ),
            "colour: blue",
            "unknown field `colour`",
        ),
        (
            edit(&g, "request: strip", "request: nope"),
            "request: nope",
            "unknown policy 'nope'",
        ),
        (
            edit(
                &g,
                "listen: { address: 127.0.0.1:0 }",
                "listen:\n  address: 127.0.0.1:0\n  workers: 0",
            ),
            "workers: 0",
            "listen.workers 0 is out of range",
        ),
        (
            edit(
                &g,
                "audit: { path: audit.jsonl }",
                "audit: { path: audit.jsonl }\nlimits:\n  body_read_timeout: 0s",
            ),
            "body_read_timeout: 0s",
            "limits.body_read_timeout is zero",
        ),
        (
            edit(
                &g,
                "audit: { path: audit.jsonl }",
                "audit: { path: audit.jsonl }\nlimits:\n  upstream_timeout: 0s",
            ),
            "upstream_timeout: 0s",
            "limits.upstream_timeout is zero",
        ),
        (
            edit(
                &g,
                "audit: { path: audit.jsonl }",
                "audit: { path: audit.jsonl }\nlimits:\n  max_body_bytes: 0",
            ),
            "max_body_bytes: 0",
            "limits.max_body_bytes is zero",
        ),
        (
            // A token in clear in the config would open the admin pages to its readers.
            edit(
                &g,
                "admin: { address: 127.0.0.1:0 }",
                "admin: { address: 127.0.0.1:0, token: \"in-the-config\" }",
            ),
            "token:",
            "admin.token must be sha256: followed by 64 hex digits",
        ),
        (
            // Anyone reading the config could reverse every pseudonym.
            edit(
                &g,
                "audit: { path: audit.jsonl }",
                "audit: { path: audit.jsonl }\nsecrets: { hash_key: \"in-the-config\" }",
            ),
            "hash_key",
            "secrets.hash_key must be read from ${env:NAME} or ${file:PATH}",
        ),
        (
            edit(&g, "url: http://127.0.0.1:9", "url: ftp://127.0.0.1:9"),
            "url: ftp://",
            "invalid upstream url 'ftp://127.0.0.1:9'",
        ),
        (
            edit(
                &g,
                "url: http://127.0.0.1:9",
                "url: http://user:pw@127.0.0.1:9",
            ),
            "url: http://user",
            "invalid upstream url",
        ),
        (
            g.clone() + &second("acme", "/other"),
            "  - name: acme\n    owner: team@example.com\n    classification: internal\n    boundary",
            "duplicate integration name 'acme'",
        ),
        (
            edit(
                &g,
                "        response: strip\n",
                "        response: strip\n      - { id: read, methods: [POST], path: /x, request: strip, response: strip }\n",
            ),
            "{ id: read, methods: [POST]",
            "duplicate route id 'read'",
        ),
        (
            g.clone() + &second("acme-v2", "/acme/v2"),
            "  - name: acme-v2",
            "mount '/acme/v2' of 'acme-v2' overlaps mount '/acme' of 'acme'",
        ),
        (
            // Values in api_key lose their own line: the client's is named.
            edit(&g, &hash, "sha256:not-hex"),
            "- id: desk",
            "api_key must be sha256: followed by 64 hex digits",
        ),
        (
            edit(&g, &hash, "cst_cli_config_key"),
            "- id: desk",
            "api_key must be sha256: followed by 64 hex digits",
        ),
        (
            edit(&g, "${file:token}", "${file:missing-token}"),
            "missing-token",
            "upstream.inject: secret file",
        ),
        (
            edit(&g, "${file:token}", "${env:CUSTOMS_TEST_SURELY_UNSET}"),
            "CUSTOMS_TEST_SURELY_UNSET",
            "upstream.inject: environment variable CUSTOMS_TEST_SURELY_UNSET is not set",
        ),
        (
            edit(&g, "header: Authorization", "header: Content-Length"),
            "header: Content-Length",
            "upstream.inject cannot set 'content-length'",
        ),
        (
            edit(
                &g,
                "        expires: 2099-01-01\n",
                &format!(
                    "        expires: 2099-01-01\n      - {{ id: desk, api_key: {} }}\n",
                    hash_of("k2")
                ),
            ),
            "{ id: desk, api_key",
            "duplicate client id 'desk'",
        ),
        (
            edit(
                &g,
                "        expires: 2099-01-01\n",
                &format!("        expires: 2099-01-01\n      - {{ id: twin, api_key: {hash} }}\n"),
            ),
            "{ id: twin",
            "client 'twin' repeats an api_key hash",
        ),
        (
            edit(
                &g,
                "        expires: 2099-01-01\n",
                "        expires: 2099-01-01\n        routes: [write]\n",
            ),
            "routes: [write]",
            "client 'desk' names unknown route 'write'",
        ),
        (
            edit(&g, "      - id: desk\n", "      - id: upstream\n"),
            "- id: upstream",
            "client id 'upstream' is reserved",
        ),
        (
            edit(
                &g,
                "        api_key: ",
                "        mtls: { subject_cn: \"\" }\n        api_key: ",
            ),
            "- id: desk",
            "mtls identity is empty",
        ),
    ];
    for (config, line_text, message) in cases {
        let (code, out) = check(&config);
        assert_eq!(code, Some(1), "exit 1 expected for {message:?}:\n{out}");
        let first_line = line_text.lines().next().unwrap_or(line_text);
        let line = if line_text.contains('\n') {
            // Multi-line needle: the position of the whole block.
            let at = config.find(line_text).expect("block in config");
            config[..at].lines().count() + 1
        } else {
            line_of(&config, first_line)
        };
        let want = format!("customs.yaml:{line}: {message}");
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
        assert!(
            out.contains("\n  hint: "),
            "no hint for {message:?}:\n{out}"
        );
        assert!(
            out.contains(" 1 errors, "),
            "one mistake, one error:\n{out}"
        );
        assert!(
            !out.contains("upstream-token"),
            "a secret was printed:\n{out}"
        );
    }
}

#[test]
fn warnings_name_the_risky_entry_and_never_fail_the_check() {
    let config = format!(
        r#"listen: {{ address: 127.0.0.1:0 }}
audit: {{ path: audit.jsonl }}
integrations:
  - name: ending
    owner: a@example.com
    classification: confidential
    data: [PII, tickets]
    boundary: external
    reviewed: 2025-06-01
    expires: 2026-12-10
    upstream:
      url: http://127.0.0.1:9
      inject:
        header: Authorization
        value: "Bearer ${{file:token}}"
        expires: 2026-12-20
    clients:
      - id: soon
        api_key: {soon}
        expires: 2026-12-01
        routes: [read]
      - id: gone
        api_key: {gone}
        expires: 2026-11-01
        routes: [read]
      - id: forever
        api_key: {forever}
        routes: [read]
    routes:
      - id: read
        methods: [GET]
        path: /r/**
        request: pass
        response: strip
      - id: orphan
        methods: [POST]
        path: /w
        request: strip
        response: strip
  - name: ended
    owner: b@example.com
    classification: public
    boundary: internal
    reviewed: 2026-10-01
    expires: 2026-11-26
    upstream: {{ url: "http://127.0.0.1:9" }}
    routes:
      - {{ id: nobody, methods: [GET], path: /**, request: strip, response: strip }}
  - name: open
    owner: c@example.com
    classification: public
    boundary: external
    reviewed: 2026-10-01
    expires: 2099-01-01
    anonymous: true
    upstream: {{ url: "http://127.0.0.1:9" }}
    clients:
      - id: cert
        mtls: {{ san: "uri:spiffe://corp/x" }}
        expires: 2099-01-01
    routes:
      - {{ id: any, methods: [GET], path: /**, request: strip, response: strip }}
"#,
        soon = hash_of("a"),
        gone = hash_of("b"),
        forever = hash_of("c"),
    );
    let (code, out) = check(&config);
    assert_eq!(code, Some(0), "warnings never fail the check:\n{out}");
    assert!(out.contains(", 0 errors, 12 warnings"), "{out}");
    let l = |needle: &str| line_of(&config, needle);
    for want in [
        format!(
            "customs.yaml:{}: warning: integration 'ending' expires in 14 days (2026-12-10)",
            l("expires: 2026-12-10")
        ),
        format!(
            "customs.yaml:{}: warning: integration 'ending' was last reviewed 543 days ago (2025-06-01)",
            l("reviewed: 2025-06-01")
        ),
        format!(
            "customs.yaml:{}: warning: upstream credential of 'ending' expires in 24 days (2026-12-20)",
            l("value: \"Bearer")
        ),
        format!(
            "customs.yaml:{}: warning: credential of client 'soon' of 'ending' expires in 5 days (2026-12-01)",
            l("id: soon")
        ),
        format!(
            "customs.yaml:{}: warning: credential of client 'gone' of 'ending' expired on 2026-11-01, 25 days ago",
            l("id: gone")
        ),
        format!(
            "customs.yaml:{}: warning: API key of client 'forever' of 'ending' never expires",
            l("id: forever")
        ),
        format!(
            "customs.yaml:{}: warning: route 'read' of external integration 'ending' carries pii but its request policy is pass (unfiltered)",
            l("id: read")
        ),
        format!(
            "customs.yaml:{}: warning: no client of 'ending' may use route 'orphan'",
            l("id: orphan")
        ),
        format!(
            "customs.yaml:{}: warning: integration 'ended' expired today (2026-11-26)",
            l("expires: 2026-11-26")
        ),
        format!(
            "customs.yaml:{}: warning: integration 'ended' has no clients and is not anonymous",
            l("name: ended")
        ),
        format!(
            "customs.yaml:{}: warning: integration 'open' is external and admits anonymous callers",
            l("name: open")
        ),
        format!(
            "customs.yaml:{}: warning: client 'cert' of 'open' is identified by certificate, but listen.tls.client_ca is not set",
            l("id: cert")
        ),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    let hints = out.matches("\n  hint: ").count();
    assert_eq!(hints, 12, "every warning has a hint:\n{out}");

    // The same config a year earlier: only the date-free warnings remain.
    let dir = setup(&config);
    let earlier = customs(
        &["check", "--config", "customs.yaml", "--as-of", "2025-06-02"],
        dir.path(),
    );
    let earlier = text(&earlier.stdout);
    assert!(!earlier.contains("expires in"), "{earlier}");
    assert!(!earlier.contains("last reviewed"), "{earlier}");
    assert!(earlier.contains("never expires"), "{earlier}");
}

#[test]
fn keygen_prints_a_random_key_and_its_config_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let out = customs(&["keygen"], dir.path());
        assert!(out.status.success());
        let stdout = text(&out.stdout);
        let key = stdout
            .lines()
            .find_map(|l| l.strip_prefix("key:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|| panic!("no key line: {stdout}"));
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("config:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|| panic!("no config line: {stdout}"));
        (key, line)
    };
    let (key, line) = run();
    let random = key.strip_prefix("cst_").expect("cst_ prefix");
    assert!(
        random.len() >= 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "at least 128 bits as hex: {key}"
    );
    assert_eq!(line, format!("api_key: {}", hash_of(&key)));
    let (other, _) = run();
    assert_ne!(key, other, "a fresh key each time");

    // The printed line is accepted by check and the key authenticates.
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let config = edit(
        &good(),
        &hash_of("cst_cli_config_key"),
        line.trim_start_matches("api_key: "),
    )
    .replace("http://127.0.0.1:9", "{upstream}");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("token", "upstream-token\n")
        .start(&config, &[("strip.yaml", POLICY)]);
    let r = send(
        &proxy.url(),
        "GET",
        "/acme/items/1",
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!proxy.logs().contains(&key));
}

/// An inventory with two integrations whose numbers are known for [`TODAY`].
fn inventory_config() -> String {
    format!(
        r#"listen: {{ address: 127.0.0.1:0 }}
admin: {{ address: 127.0.0.1:0 }}
audit: {{ path: audit.jsonl }}
integrations:
  - name: acme-soc
    owner: itsm@example.com
    purpose: Incident sync
    classification: confidential
    data: [pii, incident]
    boundary: external
    reviewed: 2025-09-01
    expires: 2026-12-16
    upstream:
      url: "{{upstream}}"
      inject: {{ header: Authorization, value: "Bearer ${{file:token}}", expires: 2027-01-01 }}
    clients:
      - id: servicenow
        api_key: [{k1}, {k2}]
        expires: 2026-12-31
        routes: [read]
      - id: dr
        mtls: {{ subject_cn: servicenow-dr }}
    routes:
      - {{ id: read, methods: [GET], path: /r/**, request: strip, response: strip }}
  - name: hr-sync
    owner: "=cmd|' /C calc'!A0"
    classification: public
    boundary: internal
    reviewed: 2026-11-01
    expires: 2099-01-01
    upstream: {{ url: "{{upstream}}" }}
    anonymous: true
    routes:
      - {{ id: all, methods: [GET], path: /**, request: strip, response: strip }}
"#,
        k1 = hash_of("k1"),
        k2 = hash_of("k2"),
    )
}

#[test]
fn inventory_prints_owners_dates_credentials_and_risk_in_three_formats() {
    // No secret is read: the token file does not exist here.
    let dir = setup(&inventory_config().replace("{upstream}", "http://127.0.0.1:9"));
    std::fs::remove_file(dir.path().join("token")).expect("remove token");
    let run = |format: &str| {
        let out = customs(
            &[
                "inventory",
                "--config",
                "customs.yaml",
                "--as-of",
                TODAY,
                "--format",
                format,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let json: serde_json::Value = serde_json::from_str(&run("json")).expect("inventory JSON");
    let acme = &json[0];
    assert_eq!(acme["name"], "acme-soc");
    assert_eq!(acme["owner"], "itsm@example.com");
    assert_eq!(acme["boundary"], "external");
    assert_eq!(acme["classification"], "confidential");
    assert_eq!(acme["data"], serde_json::json!(["pii", "incident"]));
    assert_eq!(acme["days_since_review"], 451);
    assert_eq!(acme["days_to_expiry"], 20);
    assert_eq!(acme["upstream_credential_expires"], "2027-01-01");
    assert_eq!(acme["upstream_credential_days_to_expiry"], 36);
    let clients = acme["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[0]["id"], "servicenow");
    assert_eq!(clients[0]["credential"], "api_key");
    assert_eq!(clients[0]["api_keys"], 2);
    assert_eq!(clients[0]["expires"], "2026-12-31");
    assert_eq!(clients[0]["days_to_expiry"], 35);
    assert_eq!(clients[1]["credential"], "mtls");
    assert_eq!(clients[1]["expires"], serde_json::Value::Null);
    // 2 external + 2 confidential + 1 pii + 2 review > 365 + 1 expiry soon.
    assert_eq!(acme["risk_score"], 8);
    assert_eq!(acme["risk"], "critical");
    assert_eq!(acme["risk_reasons"].as_array().map(Vec::len), Some(5));
    let hr = &json[1];
    assert_eq!(hr["risk"], "low");
    assert_eq!(hr["anonymous"], true);
    assert!(
        !run("json").contains(&hash_of("k1")),
        "no key hashes in the inventory"
    );

    let csv = run("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "name,owner,boundary,classification,data,review_age_days,days_to_expiry,clients,upstream_credential_expires,risk"
        )
    );
    assert_eq!(
        lines.next(),
        Some(
            r#""acme-soc","itsm@example.com","external","confidential","pii incident","451","20","servicenow (api_key, 2026-12-31 (35d), never used); dr (mtls, no expiry, never used)","2027-01-01 (36d)","critical (8)""#
        )
    );
    let hr_line = lines.next().expect("second row");
    assert!(
        hr_line.starts_with(r#""hr-sync","'=cmd"#),
        "formula defused: {hr_line}"
    );

    let table = run("table");
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].starts_with("name ") && rows[0].ends_with("risk"),
        "{table}"
    );
    for cell in [
        "acme-soc",
        "itsm@example.com",
        "451",
        "20",
        "dr (mtls, no expiry, never used)",
        "2027-01-01 (36d)",
        "critical (8)",
    ] {
        assert!(rows[1].contains(cell), "{cell:?} missing: {table}");
    }
    assert!(
        rows[2].contains("anonymous") && rows[2].contains("low (2)"),
        "{table}"
    );
}

#[test]
fn admin_inventory_serves_the_same_json() {
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("token", "upstream-token\n")
        .start(&inventory_config(), &[("strip.yaml", POLICY)]);
    let served = proxy.admin("/inventory");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    // Both as of the real today, so the numbers agree.
    let out = customs(
        &["inventory", "--config", "customs.yaml", "--format", "json"],
        proxy.dir(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).expect("CLI JSON");
    assert_eq!(served.json(), cli);
    assert!(!served.text().contains("upstream-token"));
}

#[test]
fn unusable_tls_files_fail_the_check_as_they_would_fail_serve() {
    let g = good();
    let listen = edit(
        &g,
        "listen: { address: 127.0.0.1:0 }",
        "listen: { address: 127.0.0.1:0, tls: { cert: server.pem, key: absent.key } }",
    );
    let (code, out) = check(&listen);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("customs.yaml: listen.tls: "), "{out}");
    assert!(out.contains("server.pem: cannot read"), "{out}");
    assert!(out.contains("\n  hint: "), "{out}");

    let ca = edit(
        &g,
        "      url: http://127.0.0.1:9\n",
        "      url: https://127.0.0.1:9\n      ca: partner-ca.pem\n",
    );
    let (code, out) = check(&ca);
    assert_eq!(code, Some(1), "{out}");
    let want = format!(
        "customs.yaml:{}: integration 'acme': upstream.ca: ",
        line_of(&ca, "- name: acme")
    );
    assert!(
        out.contains(&want) && out.contains("partner-ca.pem: cannot read"),
        "{out}"
    );
}

/// Query rules in a response policy never apply: a warning, not an error.
#[test]
fn query_rules_of_a_response_policy_are_flagged() {
    let g = good();
    let config = edit(&g, "        response: strip\n", "        response: q\n");
    let dir = setup(&config);
    let q = "policy: q\nquery:\n  drop: [debug]\n";
    std::fs::write(dir.path().join("policies/q.yaml"), q).expect("policy");
    let out = customs(
        &["check", "--config", "customs.yaml", "--as-of", TODAY],
        dir.path(),
    );
    let text = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let want = "response policy 'q' has query rules, which never apply to a response";
    assert!(text.contains(want), "{text}");
}

#[test]
fn an_admin_listener_beyond_loopback_without_a_token_is_a_warning() {
    let open = edit(
        &good(),
        "admin: { address: 127.0.0.1:0 }",
        "admin: { address: 0.0.0.0:0 }",
    );
    let (code, out) = check(&open);
    assert_eq!(code, Some(0), "{out}");
    let line = line_of(&open, "admin:");
    assert!(
        out.contains(&format!(
            "customs.yaml:{line}: warning: the admin listener on 0.0.0.0:0 is not on loopback and has no token"
        )),
        "{out}"
    );
    assert!(
        out.contains("hint: anyone who reaches it reads the inventory"),
        "{out}"
    );
    let guarded = edit(
        &good(),
        "admin: { address: 127.0.0.1:0 }",
        &format!(
            "admin: {{ address: 0.0.0.0:0, token: \"{}\" }}",
            hash_of("admin-token")
        ),
    );
    let (code, out) = check(&guarded);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("admin listener"), "{out}");
}
