//! Issue 11, the proxy side: what leaks around the body. Each test plants
//! values where an attacker (or a careless upstream) would — the injected
//! credential echoed back, PII in object keys and URLs, query names spelled
//! as frameworks read them, override and client-address headers, data in
//! response headers — and then scans every answer, what the upstream got,
//! the crossing log, the service log (at debug level) and `/metrics` for
//! every planted value.

mod common;
use common::*;

/// The secret part of the injected credential; `/` and `+` so that escaped
/// spellings (`\/`, `%2F`) differ from it.
const TOKEN: &str = "tok/Zq9+Vx7wK3mNp2=";
const SSN: &str = "078-05-1120";
const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111111111111111";
/// A run of the 200 KB key (a short piece of it is enough to spot it).
const BIG: &str = "bigkeybigkeybigkeybigkey";
const PLANTED: [&str; 5] = [TOKEN, SSN, EMAIL, CARD, BIG];

fn config() -> String {
    r#"listen: { address: 127.0.0.1:0 }
admin: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
limits: { max_body_bytes: 2MiB }
signals: { warmup: 0s, drift_sample: 0s }
integrations:
  - name: acme
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    anonymous: true
    upstream:
      url: "{upstream}"
      inject: { header: Authorization, value: "Bearer ${file:token}" }
    routes:
      - { id: governed, methods: [GET], path: /json/**, request: pass, response: scrub }
      - { id: raw, methods: [GET], path: /raw/**, request: pass, response: pass }
      - { id: strict, methods: [GET], path: /strict/**, request: pass, response: strict }
      - { id: open, methods: [GET], path: /open/**, request: pass, response: open }
      - { id: asks, methods: [GET, POST], path: /q/**, request: quiet, response: pass }
"#
    .to_string()
}

/// Governs JSON, redacts every string, and redacts header values.
const SCRUB: &str = r#"policy: scrub
body:
  rules:
    - id: pii
      redact:
headers:
  redact: [location, set-cookie, x-debug-*]
"#;

/// An allow-list: every other key is unknown (and recorded).
const STRICT: &str = r#"policy: strict
body:
  allow: [$.id]
  unknown_fields: drop
"#;

/// No allow-list: drift is sampled.
const OPEN: &str = r#"policy: open
body:
  rules:
    - id: pii
      redact:
"#;

/// Request side: query and header rules.
const QUIET: &str = r#"policy: quiet
body:
  other_content: pass
headers:
  redact: [x-note]
  detectors: [credit_card, us_ssn]
query:
  drop: [ssn]
"#;

fn start(upstream: &Upstream) -> Proxy {
    Proxy::builder()
        .upstream(&upstream.url())
        .env("RUST_LOG", "debug")
        .file("token", format!("{TOKEN}\n"))
        .start(
            &config(),
            &[
                ("scrub.yaml", SCRUB),
                ("strict.yaml", STRICT),
                ("open.yaml", OPEN),
                ("quiet.yaml", QUIET),
            ],
        )
}

/// Every answer a test got, kept for the final scan.
#[derive(Default)]
struct Answers(Vec<Reply>);

impl Answers {
    #[track_caller]
    fn get(&mut self, proxy: &Proxy, path: &str, headers: &[(&str, &str)]) -> Reply {
        let reply = send(&proxy.url(), "GET", &format!("/acme{path}"), headers, b"");
        self.0.push(reply.clone());
        reply
    }
}

/// `text` spelled as it may appear: raw, JSON-escaped and percent-encoded.
fn spellings(text: &str) -> Vec<String> {
    vec![
        text.to_string(),
        text.replace('/', "\\/"),
        text.replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D"),
        text.replace('@', "%40"),
        text.replace('@', "\\u0040"),
    ]
}

#[track_caller]
fn assert_clean(place: &str, haystack: &str, planted: &[&str]) {
    for value in planted {
        for form in spellings(value) {
            assert!(
                !haystack.contains(&form),
                "{form} leaked into {place}:\n{}",
                &haystack[..haystack.len().min(4000)]
            );
        }
    }
}

/// The final scan: answers (headers and bodies), crossing log, service log
/// and metrics hold no planted value; the chain verifies.
#[track_caller]
fn assert_nothing_leaked(proxy: &Proxy, answers: &Answers, planted: &[&str]) {
    for reply in &answers.0 {
        let mut text = format!("{:?}\n", reply.headers);
        text.push_str(&reply.text());
        assert_clean("an answer", &text, planted);
    }
    let metrics = proxy.admin("/metrics").text();
    assert_clean("/metrics", &metrics, planted);
    assert_clean("the crossing log", &proxy.read("audit.jsonl"), planted);
    proxy.verify_chain("audit.jsonl");
    assert_clean("the service log", &proxy.logs(), planted);
}

fn crossing(proxy: &Proxy, route: &str) -> Vec<serde_json::Value> {
    proxy
        .crossings("audit.jsonl")
        .into_iter()
        .filter(|r| r["route"] == route)
        .collect()
}

fn events(proxy: &Proxy, kind: &str) -> Vec<serde_json::Value> {
    proxy
        .read_jsonl("audit.jsonl")
        .into_iter()
        .filter(|r| r["event"] == kind)
        .collect()
}

fn response(
    status: u16,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let mut b = http::Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, v.as_str());
    }
    b.body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a valid response")
}

/// An upstream that hands back the `Authorization` it received, spelled
/// differently on each path.
fn echoing_upstream() -> Upstream {
    Upstream::start(UpstreamOpts::new().handler(|req| {
        let auth = req.header("authorization").unwrap_or_default().to_string();
        let token = auth.trim_start_matches("Bearer ").to_string();
        let json = |body: String| {
            (
                vec![("content-type", "application/json".to_string())],
                body.into_bytes(),
            )
        };
        let path = req.uri.split('?').next().unwrap_or_default();
        let (status, headers, body) = match path.rsplit('/').next().unwrap_or_default() {
            // Governed JSON: in a value, in a key, and escaped.
            "body" => {
                let escaped = token.replace('/', "\\/");
                let (h, b) = json(format!(
                    r#"{{"seen":"{auth}","{token}":1,"escaped":"x{escaped}y","ok":"fine"}}"#
                ));
                (200, h, b)
            }
            // An error body quoting the token, not JSON, under `pass`.
            "error" => (
                401,
                vec![("content-type", "text/plain".into())],
                format!("invalid token {token}").into_bytes(),
            ),
            // In a header, on a governed route with a clean body.
            "header" => {
                let (mut h, b) = json(r#"{"ok":true}"#.into());
                h.push(("x-debug-auth", auth.clone()));
                h.push(("x-trace", format!("t={}", token.replace('/', "%2F"))));
                (200, h, b)
            }
            // A `pass` JSON body spelling it with \u escapes.
            "escaped" => {
                let spelled: String = token
                    .chars()
                    .map(|c| format!("\\u{:04x}", u32::from(c)))
                    .collect();
                let (h, b) = json(format!(r#"{{"debug":"{spelled}"}}"#));
                (200, h, b)
            }
            // A compressed `pass` body.
            "gzip" => (
                200,
                vec![
                    ("content-type", "text/plain".into()),
                    ("content-encoding", "gzip".into()),
                ],
                gzip(format!("you sent {auth}").as_bytes()),
            ),
            _ => {
                let (h, b) = json(r#"{"ok":true}"#.into());
                (200, h, b)
            }
        };
        response(status, &headers, body)
    }))
}

#[test]
fn an_echoed_upstream_credential_never_reaches_the_caller() {
    let upstream = echoing_upstream();
    let proxy = start(&upstream);
    let mut answers = Answers::default();

    // A governed JSON body: rewritten in place, value and key.
    let body = answers.get(&proxy, "/json/body", &[]);
    assert_eq!(body.status, 200, "{}", body.text());
    let doc = body.json();
    assert_eq!(doc["seen"], "Bearer [CREDENTIAL]");
    assert_eq!(doc["[CREDENTIAL]"], 1);
    assert_eq!(doc["ok"], "fine");

    // A header carrying it is dropped; the answer still crosses.
    let header = answers.get(&proxy, "/json/header", &[]);
    assert_eq!(header.status, 200);
    assert!(header.header("x-debug-auth").is_none());
    assert!(header.header("x-trace").is_none());

    // Bodies that cannot be rewritten are refused: 502 response_refused.
    for path in ["/raw/error", "/raw/escaped", "/raw/gzip"] {
        let refused = answers.get(&proxy, path, &[("accept-encoding", "gzip")]);
        assert_eq!(refused.status, 502, "{path}: {}", refused.text());
        assert_eq!(refused.json()["error"], "response_refused", "{path}");
    }
    // A clean `pass` answer still crosses; customs asked for it whole and
    // uncompressed, so the scan reads it as it is.
    let clean = answers.get(
        &proxy,
        "/raw/clean",
        &[("accept-encoding", "gzip"), ("range", "bytes=0-3")],
    );
    assert_eq!(clean.status, 200);
    assert_eq!(upstream.last().header("accept-encoding"), Some("identity"));
    assert_eq!(upstream.last().header("range"), None);
    assert_eq!(upstream.hits(), 6);

    // Recorded and signalled.
    let records = proxy.crossings("audit.jsonl");
    let echoed: Vec<_> = records
        .iter()
        .filter(|r| {
            r["response"]["actions"]["credential-echo"]
                .as_u64()
                .is_some_and(|n| n > 0)
        })
        .collect();
    assert_eq!(echoed.len(), 5, "{records:#?}");
    let refused = records
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|r| r.contains("credential"))
        })
        .count();
    assert_eq!(refused, 3);
    let signal = events(&proxy, "upstream_credential_echo");
    assert!(!signal.is_empty(), "no upstream_credential_echo event");
    assert!(proxy.logs().contains("upstream_credential_echo"));
    let metrics = proxy.admin("/metrics").text();
    assert!(
        metrics.contains(
            r#"customs_anomalies_total{integration="acme",kind="upstream_credential_echo"} 1"#
        ),
        "{metrics}"
    );
    assert_nothing_leaked(&proxy, &answers, &PLANTED);
}

/// A response keyed by PII, with three 200 KB keys, and URLs carrying PII.
fn keyed_body() -> String {
    let big = BIG.repeat(200_000 / BIG.len());
    format!(
        r#"{{"id":1,"{EMAIL}":{{"n":1}},"{SSN}":2,"{CARD}":3,"{big}a":1,"{big}b":2,"{big}c":3}}"#
    )
}

#[test]
fn payload_keys_and_url_values_never_reach_the_log() {
    let upstream = Upstream::start(UpstreamOpts::new().handler(|req| {
        let keyed = req.uri.contains("/strict/") || req.uri.contains("/second");
        let body = if keyed {
            keyed_body()
        } else {
            r#"{"id":1}"#.to_string()
        };
        response(
            200,
            &[("content-type", "application/json".into())],
            body.into_bytes(),
        )
    }));
    let proxy = start(&upstream);
    let mut answers = Answers::default();

    // Unknown fields outside an allow-list, named by PII and huge keys.
    let strict = answers.get(&proxy, "/strict/x", &[]);
    assert_eq!(strict.status, 200);
    assert_eq!(strict.json(), serde_json::json!({"id": 1}));
    // Drift on a policy without allow-list: a first sample, then PII keys.
    // (Its answer is not scanned: keys in bodies are the policy engine's.)
    answers.get(&proxy, "/open/first", &[]);
    let open = send(&proxy.url(), "GET", "/acme/open/second", &[], b"");
    assert_eq!(open.status, 200);

    // URL values: path segments, query names, a rejected raw path.
    let url = format!(
        "/raw/users/{EMAIL}/ssn/{SSN}?{}=1&card{CARD}=2",
        EMAIL.replace('@', "%40")
    );
    assert_eq!(answers.get(&proxy, &url, &[]).status, 200);
    let rejected = answers.get(&proxy, &format!("/raw/{SSN}/../{CARD}"), &[]);
    assert_eq!(rejected.status, 400);

    let strict_rec = &crossing(&proxy, "strict")[0];
    let unknown = strict_rec["response"]["unknown_fields"]
        .as_array()
        .expect("unknown_fields");
    for expected in [
        "$['<email>']",
        "$['<us_ssn>']",
        "$['<credit_card>']",
        "$['<key>']",
    ] {
        assert!(
            unknown.iter().any(|p| p == expected),
            "{expected} not in {unknown:?}"
        );
    }
    let paths: Vec<String> = proxy
        .crossings("audit.jsonl")
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        paths.contains(&"/raw/users/<email>/ssn/<us_ssn>?<email>=&<credit_card>=".to_string()),
        "{paths:?}"
    );
    // Every record stays small, whatever the payload held.
    for line in proxy.read("audit.jsonl").lines() {
        assert!(line.len() < 16 * 1024, "a {} byte record", line.len());
    }
    // The drift events (allow-list and sampled) name placeholders only.
    let drift = events(&proxy, "schema_drift");
    assert_eq!(drift.len(), 2, "{drift:#?}");
    for ev in &drift {
        let paths = ev["paths"].to_string();
        assert!(
            paths.contains("<email>") && paths.contains("<key>"),
            "{paths}"
        );
    }
    assert!(proxy.logs().contains("schema_drift"));
    assert_nothing_leaked(&proxy, &answers, &PLANTED);
}

#[test]
fn query_rules_match_names_as_frameworks_read_them() {
    let upstream = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&upstream);
    let mut answers = Answers::default();
    for name in [
        "ssn[]",
        "ssn%5B%5D",
        "+ssn",
        "%20ssn",
        "ssn[0]",
        "ssn[a][b]",
        "SSN",
        "ssn%5b%5d",
    ] {
        let reply = answers.get(&proxy, &format!("/q/x?{name}={SSN}&keep=1"), &[]);
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(upstream.last().uri, "/q/x?keep=1", "{name} crossed");
    }
    for req in upstream.requests() {
        assert_clean("the upstream request", &req.uri, &[SSN]);
    }
    assert_nothing_leaked(&proxy, &answers, &[SSN]);
}

#[test]
fn override_and_client_address_headers_never_reach_the_upstream() {
    let upstream = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&upstream);
    let mut answers = Answers::default();
    let planted = [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X-Real-IP", "6.6.6.6"),
        ("True-Client-IP", "6.6.6.6"),
        ("X-Client-IP", "6.6.6.6"),
        ("Forwarded", "for=6.6.6.6"),
        ("X_Forwarded_For", "6.6.6.6"),
        ("X_Real_IP", "6.6.6.6"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X_Api_Key", "caller-key"),
        // Redacted by the request policy's detectors, kept otherwise.
        ("X-Note", "card 4111 1111 1111 1111 ok"),
    ];
    let reply = answers.get(&proxy, "/q/x", &planted);
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    for (name, _) in &planted[..12] {
        let folded = name.to_ascii_lowercase();
        let present: Vec<_> = got
            .headers
            .iter()
            .filter(|(n, _)| {
                n.replace('_', "-") == folded.replace('_', "-") && *n != "x-forwarded-for"
            })
            .collect();
        assert!(
            present.is_empty(),
            "{name} reached the upstream: {present:?}"
        );
    }
    assert_eq!(got.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(got.header("x-note"), Some("card [CREDIT_CARD] ok"));
    assert!(!format!("{:?}", got.headers).contains("6.6.6.6"));
    let record = &crossing(&proxy, "asks")[0];
    assert_eq!(record["request"]["actions"]["header-redact"], 1);
    assert_nothing_leaked(&proxy, &answers, &[CARD, "4111 1111 1111 1111"]);
}

#[test]
fn an_authority_with_userinfo_is_a_400() {
    let upstream = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&upstream);
    let with_userinfo = proxy.url().replace("http://", "http://alice:pw@");
    let h2 =
        request(&Via::H2c, &with_userinfo, "GET", "/acme/raw/x", &[], b"").expect("h2 request");
    assert_eq!(h2.status, 400, "{}", h2.text());
    let h1 = raw::raw_exchange(
        proxy.addr(),
        b"GET /acme/raw/x HTTP/1.1\r\nHost: alice:pw@127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        String::from_utf8_lossy(&h1).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&h1)
    );
    assert_eq!(upstream.hits(), 0);
    let records = proxy.crossings("audit.jsonl");
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["reason"], "userinfo in the request authority");
    }
    assert_clean(
        "the crossing log",
        &proxy.read("audit.jsonl"),
        &["alice:pw"],
    );
}

#[test]
fn response_header_values_are_redacted_by_the_policy() {
    let upstream = Upstream::start(UpstreamOpts::new().respond(
        302,
        &[
            ("content-type", "application/json"),
            ("location", "/next?email=jane.doe@example.com"),
            ("set-cookie", "who=078-05-1120; Path=/"),
            ("x-debug-user", "card 4111-1111-1111-1111"),
            ("x-kept", "plain"),
        ],
        r#"{"ok":true}"#,
    ));
    let proxy = start(&upstream);
    let mut answers = Answers::default();
    let reply = answers.get(&proxy, "/json/x", &[]);
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("/next?email=[EMAIL]"));
    assert_eq!(reply.header("set-cookie"), Some("who=[US_SSN]; Path=/"));
    assert_eq!(reply.header("x-debug-user"), Some("card [CREDIT_CARD]"));
    assert_eq!(reply.header("x-kept"), Some("plain"));
    let record = &crossing(&proxy, "governed")[0];
    assert_eq!(record["response"]["actions"]["header-redact"], 3);
    assert_nothing_leaked(&proxy, &answers, &[EMAIL, SSN, "4111-1111-1111-1111"]);
}

#[test]
fn check_names_header_redact_mistakes_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("a.yaml", "policy: a\nheaders:\n  detectors: [email]\n");
    write(
        "b.yaml",
        "policy: b\nheaders:\n  redact: [location]\n  detectors: [email, passport]\n",
    );
    write("c.yaml", "policy: c\nheaders:\n  redact: []\n");
    write("d.yaml", "policy: d\nquery:\n  redact: [x]\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["check", "--policies", "."])
        .current_dir(dir.path())
        .env_remove("CUSTOMS_CONFIG")
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "a.yaml:3: headers: detectors without redact",
        "b.yaml:4: unknown detector 'passport'",
        "c.yaml:3: headers: redact lists no header",
        "d.yaml:3: unknown field `redact`",
        "hint:",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}
