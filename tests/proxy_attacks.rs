//! Fail closed, adversarially: one test per requirement of the proxy issue's
//! "Fail closed" list (attacks.md §A, B, D, E, G, H, J). Each writes the
//! attack and asserts that nothing leaks: what the upstream received (hit
//! count and bytes), what the caller got, and that the canary values appear
//! neither in responses, nor in the audit log, nor in the service logs.

mod common;
use common::*;
use std::io::Write;

// ---------------------------------------------------------------- fixtures

/// Planted in payloads; each must stay where the policy keeps it.
const SSN: &str = "078-05-1120";
const CARD: &str = "4111111111111111";
const EMAIL: &str = "canary+t1@example.com";
/// The injected upstream credential: only ever on the upstream leg.
const SECRET: &str = "UPSTREAM-SECRET-123";
const CANARIES: [&str; 4] = [SSN, CARD, EMAIL, SECRET];

/// A payload carrying every body canary.
const PII: &str =
    r#"{"ssn":"078-05-1120","card_number":"4111111111111111","note":"mail canary+t1@example.com"}"#;
/// [`PII`] after the `guard` policy.
const PII_GUARDED: &str =
    r#"{"ssn":"***-**-****","card_number":"************1111","note":"mail [EMAIL]"}"#;

/// The API key of the `keyed` integration's only client.
const KEY: &str = "cst_attack_key_0123456789abcdef";

/// `acme` (anonymous, mount /acme) keeps most tests short; `keyed` (mount
/// /keyed) is the one integration with API keys. 4 KiB body limit, depth 16.
fn config() -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    r#"listen: { address: 127.0.0.1:0 }
policies: policies/
audit: { path: "{dir}/audit.jsonl" }
limits: { max_body_bytes: 4KiB, max_json_depth: 16, upstream_timeout: {timeout} }
integrations:
  - name: acme
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    anonymous: true
    upstream:
      url: "{upstream}/v1"
      inject: { header: Authorization, value: "Bearer ${file:token}" }
    routes:
      - { id: read, methods: [GET], path: /api/**, request: pass, response: guard }
      - { id: write, methods: [POST], path: /api/**, request: guard, response: guard }
      - { id: loose, methods: [POST], path: /loose/**, request: loose, response: pass }
  - name: keyed
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream:
      url: "{upstream}/k"
      inject: { header: Authorization, value: "Bearer ${file:token}" }
    clients:
      - { id: desk, api_key: "sha256:HASH" }
    routes:
      - { id: read, methods: [GET], path: /api/**, request: pass, response: pass }
"#
    .replace("HASH", &hash)
}

/// JSON only (`other_content: refuse` by default); SSNs replaced, cards
/// masked, detected PII redacted in every string.
const GUARD: &str = r#"policy: guard
body:
  rules:
    - id: ssn
      replace: [$..ssn]
      with: "***-**-****"
    - id: card
      mask: [$..card_number]
      keep_last: 4
    - id: pii
      redact:
      detectors: [email, credit_card, us_ssn]
"#;

/// Like `guard` for JSON, but other content types explicitly pass.
const LOOSE: &str = r#"policy: loose
body:
  other_content: pass
  rules:
    - id: ssn
      replace: [$..ssn]
      with: "***-**-****"
"#;

fn start(upstream: &str) -> Proxy {
    start_with(upstream, "2s")
}

fn start_with(upstream: &str, timeout: &str) -> Proxy {
    Proxy::builder()
        .upstream(upstream)
        .var("timeout", timeout)
        .file("token", format!("{SECRET}\n"))
        .start(&config(), &[("guard.yaml", GUARD), ("loose.yaml", LOOSE)])
}

// ----------------------------------------------------------------- oracles

/// Asserts no canary, raw or in a common encoding, is in `bytes`.
#[track_caller]
fn assert_no_canary(place: &str, bytes: &[u8], canaries: &[&str]) {
    let text = String::from_utf8_lossy(bytes);
    for canary in canaries {
        let forms = [
            canary.to_string(),
            canary.replace('@', "\\u0040"),
            canary.replace('@', "%40"),
            canary.replace('-', ""),
        ];
        for form in forms {
            assert!(!text.contains(&form), "{form} leaked into {place}: {text}");
        }
    }
}

/// The audit log and the service logs hold no canary at all.
#[track_caller]
fn assert_quiet(proxy: &Proxy) {
    assert_no_canary(
        "the audit log",
        proxy.read("audit.jsonl").as_bytes(),
        &CANARIES,
    );
    assert_no_canary("the service logs", proxy.logs().as_bytes(), &CANARIES);
}

/// A refusal: `status`, the JSON `{"error": code, "request_id": ...}` and
/// nothing else, no canary.
#[track_caller]
fn assert_refused(r: &Reply, status: u16, code: &str, case: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.text());
    let err = r.json();
    assert_eq!(err["error"], code, "{case}");
    assert_eq!(err.as_object().map(|o| o.len()), Some(2), "{case}: {err}");
    assert_no_canary(case, &r.body, &CANARIES);
}

/// Same for a response read off the wire.
#[track_caller]
fn assert_raw_refused(r: &RawResponse, status: u16, code: &str, case: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "{case}: {body}");
    let err: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{case}: error body is not JSON ({e}): {body}"));
    assert_eq!(err["error"], code, "{case}");
    assert_no_canary(case, &r.body, &CANARIES);
}

/// Sends raw HTTP/1 bytes (end the last request with `Connection: close`)
/// and parses every response that came back before the proxy closed.
fn raw(proxy: &Proxy, request: &[u8]) -> Vec<RawResponse> {
    parse_responses(&raw_exchange(proxy.addr(), request))
}

fn get_raw(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n").into_bytes()
}

const JSON: Header = ("content-type", "application/json");

/// One header, name and value.
type Header = (&'static str, &'static str);
/// A refused request: (case, path, headers, body, status, error code).
type Case<'a> = (&'a str, &'a str, &'a [Header], &'a [u8], u16, &'a str);
/// Headers and body of one scripted upstream answer.
type Answer = (Vec<Header>, Vec<u8>);

/// An upstream answering `GET .../N` with the headers and body of `script[N]`.
fn scripted(script: Vec<Answer>) -> Upstream {
    Upstream::start(UpstreamOpts::new().handler(move |rec| {
        let n: usize = rec
            .uri
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let (headers, body) = &script[n];
        let mut b = http::Response::builder();
        for (name, value) in headers {
            b = b.header(*name, *value);
        }
        b.body(http_body_util::Full::new(body.clone().into()))
            .expect("response")
    }))
}

// -------------------------------------------------------------- encodings

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("deflate");
    e.finish().expect("deflate")
}

/// A valid brotli stream of uncompressed meta-blocks (RFC 7932 §9.2): the
/// crate has a brotli decoder only, and the proxy must decode any encoder's.
fn brotli(data: &[u8]) -> Vec<u8> {
    let mut bits: Vec<bool> = vec![false]; // WBITS = 16
    let push = |bits: &mut Vec<bool>, value: usize, width: usize| {
        bits.extend((0..width).map(|i| (value >> i) & 1 == 1));
    };
    let mut out = Vec::new();
    let flush = |bits: &mut Vec<bool>, out: &mut Vec<u8>| {
        for byte in bits.chunks(8) {
            out.push(
                byte.iter()
                    .rev()
                    .fold(0u8, |b, &bit| b << 1 | u8::from(bit)),
            );
        }
        bits.clear();
    };
    for chunk in data.chunks(1 << 16) {
        push(&mut bits, 0, 1); // ISLAST = 0
        push(&mut bits, 0, 2); // MNIBBLES = 4
        push(&mut bits, chunk.len() - 1, 16); // MLEN - 1
        push(&mut bits, 1, 1); // ISUNCOMPRESSED, then byte-aligned data
        flush(&mut bits, &mut out);
        out.extend_from_slice(chunk);
    }
    push(&mut bits, 0b11, 2); // ISLAST, ISLASTEMPTY
    flush(&mut bits, &mut out);
    out
}

/// One chunk and the last chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    [
        format!("{:x}\r\n", data.len()).as_bytes(),
        data,
        b"\r\n0\r\n\r\n",
    ]
    .concat()
}

/// `text` with each `OBS` replaced by the byte 0xFF.
fn obs_text(text: &str) -> Vec<u8> {
    let marked = text.replace("OBS", "\u{1}");
    marked
        .bytes()
        .map(|b| if b == 1 { 0xFF } else { b })
        .collect()
}

// ================================================================== tests

/// Area 1: Paths: normalised once, routed on, forwarded exactly as normalised.
#[test]
fn path_tricks_cannot_reach_an_undeclared_route_or_escape_the_mount() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    // (target as sent, status): each proves one way around the allow-list
    // is closed. 400 = refused by normalisation, 404 = routed and undeclared.
    let refused = [
        ("/acme/api/../../admin", 400),    // dot segments escape the mount
        ("/acme/../vault/x", 400),         // ... or the integration
        ("/acme/api/%2e%2e/admin", 400),   // encoded dot segments
        ("/acme/api/.%2E/admin", 400),     // half-encoded
        ("/acme/api/./x", 400),            // single dot: not resolved either
        ("/acme/api/x%2f..%2fadmin", 400), // encoded slash
        ("/acme/api%2Fx", 400),            // encoded slash joining segments
        ("/acme/api/x;jsessionid=1", 400), // path parameters (Tomcat/Spring)
        ("/acme/api/..;/admin", 400),      // /..;/ normalisation
        ("/acme/api\\..\\admin", 400),     // raw backslashes (hyper keeps them)
        ("/acme/api/%5C..%5Cadmin", 400),  // encoded backslashes
        ("/acme/api/%252e%252e/x", 400),   // double encoding
        ("/acme/api/%252fx", 400),         // double-encoded slash
        ("/acme/api/%25%32%65%25%32%65/x", 400), // ... spelt with encoded digits (fuzzing)
        ("/acme/api/%25%35Cadmin", 400),   // %255C once %35 is decoded
        ("/acme/api/x%00", 400),           // encoded NUL
        ("/acme/api/x%3F.json", 400),      // encoded query delimiter
        ("/ACME/api/x", 404),              // mount is case-sensitive
        ("/Acme/api/x", 404),
        ("/acme/API/x", 404),  // so is the route
        ("/acmex/api/x", 404), // mounts end on a segment boundary
        ("/acme", 404),        // nothing declared at the mount root
        ("/vault/x", 404),     // undeclared integration
    ];
    for (target, status) in refused {
        let replies = raw(&proxy, &get_raw(target));
        let r = replies
            .first()
            .unwrap_or_else(|| panic!("{target}: no answer"));
        let code = if status == 400 {
            "bad_request"
        } else {
            "no_route"
        };
        assert_raw_refused(r, status, code, target);
    }
    assert_eq!(up.hits(), 0, "no path trick reached the upstream");

    // (target as sent, path the upstream receives): accepted paths cross in
    // their normal form, never the raw one the route did not see.
    let accepted = [
        ("//acme//api///x", "/v1/api/x"),       // empty segments collapse
        ("/acme/api/%7Euser", "/v1/api/~user"), // unreserved escapes decode
        ("/%61cme/%61pi/x", "/v1/api/x"),       // ... also in the mount
        ("/acme/api/a%2ab", "/v1/api/a%2Ab"),   // others stay encoded, upper hex
        ("/acme/api/x/?q=1", "/v1/api/x/?q=1"), // trailing slash and query kept
    ];
    for (target, forwarded) in accepted {
        let before = up.hits();
        let replies = raw(&proxy, &get_raw(target));
        assert_eq!(replies.first().map(|r| r.status), Some(200), "{target}");
        assert_eq!(up.hits(), before + 1, "{target}");
        assert_eq!(up.last().uri, forwarded, "{target}");
        let line = format!("GET {forwarded} HTTP/1.1\r\n");
        let wire = up.wire().concat();
        assert!(
            wire.windows(line.len()).any(|w| w == line.as_bytes()),
            "{target}: request line {line:?} not on the wire"
        );
    }
    assert_quiet(&proxy);
}

/// Area 2: Compressed bodies are decoded, inspected and forwarded decoded; what
/// cannot be decoded exactly is refused.
#[test]
fn compressed_bodies_are_decoded_and_filtered_or_refused() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let url = proxy.url();
    // Each supported coding: the upstream sees the filtered document, plain.
    let codings: [(&str, Vec<u8>); 4] = [
        ("gzip", gzip(PII.as_bytes())),
        ("x-gzip", gzip(PII.as_bytes())),
        ("deflate", deflate(PII.as_bytes())),
        ("br", brotli(PII.as_bytes())),
    ];
    for (coding, body) in &codings {
        let headers = [JSON, ("content-encoding", *coding)];
        let r = send(&url, "POST", "/acme/api/x", &headers, body);
        assert_eq!(r.status, 200, "{coding}: {}", r.text());
        let seen = up.last();
        assert_eq!(seen.text(), PII_GUARDED, "{coding}");
        assert_eq!(seen.header("content-encoding"), None, "{coding}");
        let length = seen.body.len().to_string();
        assert_eq!(seen.header("content-length"), Some(length.as_str()));
        assert_no_canary(coding, &up.wire().concat(), &[SSN, CARD, EMAIL]);
    }

    // (Content-Encoding, body, status, code): unknown, stacked, repeated or
    // corrupt codings are never waved through; a bomb stops at the limit.
    let gz = gzip(PII.as_bytes());
    let bomb = gzip(&vec![b' '; 1 << 20]); // 1 MiB of whitespace in ~1 KiB
    assert!(bomb.len() < 4096, "the bomb passes the raw size check");
    let refused: [(&[&str], &[u8], u16, &str); 9] = [
        (&["compress"], &gz, 415, "unsupported_content"),
        (&["zstd"], &gz, 415, "unsupported_content"),
        (&["gzip, br"], &gz, 415, "unsupported_content"),
        (&["identity, gzip"], &gz, 415, "unsupported_content"),
        (&["gzip", "gzip"], &gz, 415, "unsupported_content"),
        (&["gzip"], PII.as_bytes(), 415, "unsupported_content"), // not gzip
        (&["br"], &gz[..gz.len() / 2], 415, "unsupported_content"),
        (
            &["deflate"],
            &[gz.as_slice(), b"{}"].concat(),
            415,
            "unsupported_content",
        ),
        (&["gzip"], &bomb, 413, "too_large"),
    ];
    let before = up.hits();
    for (codings, body, status, code) in refused {
        let mut headers = vec![JSON];
        headers.extend(codings.iter().map(|c| ("content-encoding", *c)));
        let r = send(&url, "POST", "/acme/api/x", &headers, body);
        assert_refused(&r, status, code, &format!("{codings:?}"));
    }
    assert_eq!(up.hits(), before, "no undecodable body was forwarded");

    // A compressed upstream answer under a response policy is decoded and
    // masked; one that cannot be decoded is a 502 with none of its bytes.
    let answers: Vec<(&str, Vec<u8>, u16)> = vec![
        ("gzip", gzip(PII.as_bytes()), 200),
        ("br", brotli(PII.as_bytes()), 200),
        ("deflate", deflate(PII.as_bytes()), 200),
        ("gzip", PII.as_bytes().to_vec(), 502), // says gzip, is not
        ("zstd", gzip(PII.as_bytes()), 502),
        ("gzip, br", gzip(PII.as_bytes()), 502),
        ("gzip", gzip(&vec![b' '; 1 << 20]), 502), // bomb
    ];
    let script = answers
        .iter()
        .map(|(coding, body, _)| (vec![JSON, ("content-encoding", *coding)], body.clone()))
        .collect();
    let up = scripted(script);
    let proxy = start(&up.url());
    for (i, (coding, _, status)) in answers.iter().enumerate() {
        let r = send(&proxy.url(), "GET", &format!("/acme/api/{i}"), &[], b"");
        if *status == 200 {
            assert_eq!(r.status, 200, "{coding}: {}", r.text());
            assert_eq!(r.text(), PII_GUARDED, "{coding}");
            assert_eq!(r.header("content-encoding"), None, "{coding}");
        } else {
            assert_refused(&r, 502, "response_refused", coding);
        }
    }
    assert_quiet(&proxy);
}

/// Area 3: The declared type decides governance only as the policy says: JSON
/// under another (or no) type is refused by default, passed only explicitly.
#[test]
fn json_under_another_content_type_is_governed_not_waved_through() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let url = proxy.url();
    // Content-Type headers on a `guard` route (other_content: refuse): each
    // is a way to have the policy skip a JSON body some upstream will parse.
    let disguises: [&[&str]; 8] = [
        &["text/plain"],
        &[], // none at all
        &[""],
        &["application/octet-stream"],
        &["application/x-www-form-urlencoded"],
        &["text/plain", "application/json"], // which one does the upstream use?
        &["application/json; charset=utf-7"], // +ADA-... decodes to digits upstream
        &["application/json; charset=utf-16"],
    ];
    for types in disguises {
        let headers: Vec<_> = types.iter().map(|t| ("content-type", *t)).collect();
        let r = send(&url, "POST", "/acme/api/x", &headers, PII.as_bytes());
        assert_refused(&r, 415, "unsupported_content", &format!("{types:?}"));
    }
    assert_eq!(up.hits(), 0, "no disguised body was forwarded");

    // Declared UTF-8 (any case, quoted) is still JSON and still governed.
    for ct in [
        "application/json; charset=UTF-8",
        "application/json;charset=\"utf-8\"",
    ] {
        let r = send(
            &url,
            "POST",
            "/acme/api/x",
            &[("content-type", ct)],
            PII.as_bytes(),
        );
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
        assert_eq!(up.last().text(), PII_GUARDED, "{ct}");
    }

    // `other_content: pass` is the explicit opt-out: the text crosses as is,
    // while JSON on the same route is still filtered.
    let text = [("content-type", "text/plain")];
    let r = send(&url, "POST", "/acme/loose/x", &text, PII.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().text(), PII, "passed as declared");
    let r = send(
        &url,
        "POST",
        "/acme/loose/x",
        &[JSON],
        br#"{"ssn":"078-05-1120"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().text(), r#"{"ssn":"***-**-****"}"#);
    // ... but a body declared both ways is neither passed nor filtered: an
    // upstream reading the other header would parse what the policy skipped.
    let before = up.hits();
    for types in [
        ["text/plain", "application/json"],
        ["application/json", "text/plain"],
    ] {
        let headers: Vec<_> = types.iter().map(|t| ("content-type", *t)).collect();
        let r = send(&url, "POST", "/acme/loose/x", &headers, PII.as_bytes());
        assert_refused(&r, 415, "unsupported_content", &format!("loose {types:?}"));
    }
    assert_eq!(up.hits(), before);
    assert_quiet(&proxy);

    // The upstream cannot disguise its answer either: under a response
    // policy these are a 502 carrying none of the upstream's bytes.
    let disguised = [
        vec![("content-type", "text/html")],
        vec![],
        vec![("content-type", "application/json; charset=utf-7")],
        vec![
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ],
    ];
    let script = disguised
        .iter()
        .map(|h| (h.clone(), PII.as_bytes().to_vec()))
        .collect();
    let up = scripted(script);
    let proxy = start(&up.url());
    for (i, headers) in disguised.iter().enumerate() {
        let r = send(&proxy.url(), "GET", &format!("/acme/api/{i}"), &[], b"");
        assert_refused(&r, 502, "response_refused", &format!("answer {headers:?}"));
    }
    assert_quiet(&proxy);
}

/// Area 4: Size limits hold for every framing, and nothing of an oversized body
/// crosses.
#[test]
fn bodies_over_the_limit_are_refused_whole() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let big = format!(r#"{{"ssn":"{SSN}","pad":"{}"}}"#, "x".repeat(5000));

    // Declared by Content-Length: refused before reading.
    let r = send(&proxy.url(), "POST", "/acme/api/x", &[JSON], big.as_bytes());
    assert_refused(&r, 413, "too_large", "content-length");

    // Chunked, no Content-Length: refused once the count passes the limit.
    let mut chunked = b"POST /acme/api/x HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for piece in big.as_bytes().chunks(1000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let replies = raw(&proxy, &chunked);
    assert_eq!(replies.len(), 1);
    assert_raw_refused(&replies[0], 413, "too_large", "chunked");
    assert_eq!(up.hits(), 0, "no oversized request crossed");

    // An oversized answer to a governed direction is a 502 carrying none of
    // it; a `pass` direction streams it instead (issue 17, tests/streaming.rs).
    let up = Upstream::json(200, &big);
    let proxy = start(&up.url());
    let r = send(&proxy.url(), "GET", "/acme/api/x", &[], b"");
    assert_refused(&r, 502, "response_refused", "response, guard");
    assert!(!r.text().contains("xxxx"));
    let r = send(&proxy.url(), "POST", "/acme/loose/x", &[JSON], b"{}");
    assert_eq!(
        (r.status.as_u16(), r.body.len()),
        (200, big.len()),
        "pass streams"
    );
    assert_quiet(&proxy);
}

/// Area 5: JSON that parsers read differently is refused in both directions.
#[test]
fn malformed_json_is_refused_in_both_directions() {
    let deep = format!("{}{}", "[".repeat(17), "]".repeat(17)); // limit is 16
    // Each body is one way a policy and an upstream could disagree.
    let cases: [(&str, &[u8]); 12] = [
        ("duplicate key", br#"{"ssn":"078-05-1120","ssn":null}"#),
        (
            "nested duplicate",
            br#"{"a":{"ssn":null,"ssn":"078-05-1120"}}"#,
        ),
        ("trailing document", br#"{"a":1}{"ssn":"078-05-1120"}"#),
        ("trailing comma", br#"{"ssn":"078-05-1120",}"#),
        ("comment", br#"{"ssn":"078-05-1120" /* c */}"#),
        ("single quotes", br#"{'ssn':'078-05-1120'}"#),
        ("NaN", br#"{"ssn":"078-05-1120","n":NaN}"#),
        ("BOM", b"\xEF\xBB\xBF{\"ssn\":\"078-05-1120\"}"),
        ("invalid UTF-8", b"{\"ssn\":\"078-05-1120\xFF\"}"),
        ("lone surrogate", br#"{"ssn":"078-05-1120\ud800"}"#),
        ("NUL in key", br#"{"ss\u0000n":"078-05-1120"}"#),
        ("too deep", deep.as_bytes()),
    ];
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    for (case, body) in &cases {
        let r = send(&proxy.url(), "POST", "/acme/api/x", &[JSON], body);
        assert_refused(&r, 400, "bad_request", case);
    }
    assert_eq!(up.hits(), 0, "no malformed request crossed");
    assert_quiet(&proxy);

    // From the upstream: a 502 response_refused, none of its bytes relayed.
    let script = cases
        .iter()
        .map(|(_, body)| (vec![JSON], body.to_vec()))
        .collect();
    let up = scripted(script);
    let proxy = start(&up.url());
    for (i, (case, _)) in cases.iter().enumerate() {
        let r = send(&proxy.url(), "GET", &format!("/acme/api/{i}"), &[], b"");
        assert_refused(&r, 502, "response_refused", case);
    }
    assert_quiet(&proxy);
}

/// Area 6: Upstream faults give 502/504 and nothing half-read.
#[test]
fn upstream_faults_fail_closed() {
    // Connection refused: a port that was just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let proxy = start(&format!("http://127.0.0.1:{port}"));
    let r = send(&proxy.url(), "POST", "/acme/api/x", &[JSON], PII.as_bytes());
    assert_refused(&r, 502, "upstream_unavailable", "connection refused");
    assert_quiet(&proxy);

    // (case, scripted upstream, status, code). The proxy's own 300 ms
    // timeout ends the hanging ones.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    let partial = format!("{head}Content-Length: 100\r\n\r\n{{\"ssn\":\"078-05-1120\"");
    let cases: [(&str, Vec<RawStep>, u16, &str); 6] = [
        ("no answer", vec![RawStep::Hang], 504, "upstream_timeout"),
        (
            "body stalls",
            vec![RawStep::Send(partial.clone().into_bytes()), RawStep::Hang],
            504,
            "upstream_timeout",
        ),
        (
            "closes mid-body",
            vec![RawStep::Send(partial.into_bytes())],
            502,
            "upstream_unavailable",
        ),
        (
            "chunked, never terminated",
            vec![RawStep::Send(
                format!("{head}Transfer-Encoding: chunked\r\n\r\n15\r\n{{\"ssn\":\"078-05-1120\"}}\r\n")
                    .into_bytes(),
            )],
            502,
            "upstream_unavailable",
        ),
        (
            "gzip transfer coding",
            vec![RawStep::Send(
                [
                    format!("{head}Transfer-Encoding: gzip, chunked\r\n\r\n").into_bytes(),
                    chunk(&gzip(PII.as_bytes())),
                ]
                .concat(),
            )],
            502,
            "upstream_unavailable",
        ),
        (
            "conflicting lengths",
            vec![RawStep::Send(
                format!("{head}Content-Length: 5\r\nContent-Length: 21\r\n\r\n{{\"ssn\":\"078-05-1120\"}}")
                    .into_bytes(),
            )],
            502,
            "upstream_unavailable",
        ),
    ];
    for (case, steps, status, code) in cases {
        let up = Upstream::start(UpstreamOpts::new().raw_steps(steps));
        let proxy = start_with(&up.url(), "300ms");
        let r = send(&proxy.url(), "GET", "/acme/api/x", &[], b"");
        assert_refused(&r, status, code, case);
        assert_eq!(up.hits(), 1, "{case}: the upstream was asked once");
        assert_quiet(&proxy);
    }
}

/// Area 7: Nothing tunnels past the policy: no upgrade, no CONNECT, no TRACE,
/// and an upstream cannot switch protocols on its own.
#[test]
fn upgrades_and_tunnels_are_refused() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    // (case, request, status): each asks to leave HTTP on a JSON route. (An
    // h2c upgrade is ignored and answered in HTTP/1.1, like nginx: see
    // tests/interop.rs.)
    let cases: [(&str, String, u16); 4] = [
        (
            "websocket",
            "GET /acme/api/x HTTP/1.1\r\nHost: p\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: SGVsbG8sIHdvcmxkIQ==\r\n\r\n"
                .into(),
            400,
        ),
        (
            "CONNECT",
            format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", up.addr()),
            400,
        ),
        (
            "TRACE",
            "TRACE /acme/api/x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".into(),
            404,
        ),
        (
            "OPTIONS *",
            "OPTIONS * HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".into(),
            400,
        ),
    ];
    for (case, request, status) in cases {
        let bytes = raw(&proxy, request.as_bytes());
        let r = bytes.first().unwrap_or_else(|| panic!("{case}: no answer"));
        let code = if status == 400 {
            "bad_request"
        } else {
            "no_route"
        };
        assert_raw_refused(r, status, code, case);
        assert!(bytes.iter().all(|r| r.status != 101), "{case}: switched");
    }
    assert_eq!(up.hits(), 0, "no tunnel request reached the upstream");
    assert_quiet(&proxy);

    // An unrequested 101 (with bytes after it) is not relayed.
    let up = Upstream::start(UpstreamOpts::new().raw(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
          {\"ssn\":\"078-05-1120\"}"
            .to_vec(),
    ));
    let proxy = start(&up.url());
    let replies = raw(&proxy, &get_raw("/acme/api/x"));
    assert_eq!(replies.len(), 1);
    assert_raw_refused(&replies[0], 502, "upstream_unavailable", "101");
    assert_quiet(&proxy);
}

/// Area 8: Ambiguous framing is a 400 that closes the connection: a request
/// pipelined behind it is never read, and the upstream sees nothing.
#[test]
fn smuggling_framings_are_rejected_and_close_the_connection() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    // Hidden in every body: a request that must never be parsed.
    let smuggled = "GET /acme/api/smuggled HTTP/1.1\r\nHost: p\r\n\r\n";
    let chunked_body = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    let post = "POST /acme/api/x HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n";
    // (case, attack request): each is read one way by hyper and another by
    // some front or back server.
    let cases: [(&str, String); 11] = [
        (
            "CL then TE",
            format!("{post}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_body}"),
        ),
        (
            "TE then CL",
            format!("{post}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunked_body}"),
        ),
        (
            "TE chunked, chunked",
            format!("{post}Transfer-Encoding: chunked, chunked\r\n\r\n{chunked_body}"),
        ),
        (
            "TE gzip, chunked",
            format!("{post}Transfer-Encoding: gzip, chunked\r\n\r\n{chunked_body}"),
        ),
        (
            "two TE lines",
            format!(
                "{post}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_body}"
            ),
        ),
        (
            "absolute-form, other authority",
            "GET http://evil.example/acme/api/x HTTP/1.1\r\nHost: p\r\n\r\n".into(),
        ),
        (
            "duplicate Host",
            "GET /acme/api/x HTTP/1.1\r\nHost: p\r\nHost: evil.example\r\n\r\n".into(),
        ),
        ("no Host", "GET /acme/api/x HTTP/1.1\r\n\r\n".into()),
        // hyper's own refusals, kept as regressions (attacks.md §0.1).
        (
            "CL +5",
            format!("{post}Content-Length: +5\r\n\r\n{{}}   {smuggled}"),
        ),
        (
            "CL 5, 5",
            format!("{post}Content-Length: 5, 5\r\n\r\n{{}}   {smuggled}"),
        ),
        (
            "differing CLs",
            format!("{post}Content-Length: 2\r\nContent-Length: 5\r\n\r\n{{}}   {smuggled}"),
        ),
    ];
    let follow_up = "GET /acme/api/next HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n";
    for (case, attack) in cases {
        let replies = raw(&proxy, format!("{attack}{follow_up}").as_bytes());
        assert_eq!(replies.len(), 1, "{case}: one answer, then closed");
        assert_eq!(replies[0].status, 400, "{case}");
        // hyper answers its own refusals with an empty body; customs with JSON.
        if !replies[0].body.is_empty() {
            assert_raw_refused(&replies[0], 400, "bad_request", case);
        }
    }
    assert_eq!(up.hits(), 0, "the upstream saw no request at all");
    assert_eq!(up.connections(), 0, "not even a connection");

    // Control: the same pipelining with a clean first request gets both
    // answers, so "one answer" above means the connection was closed.
    let clean = format!("GET /acme/api/x HTTP/1.1\r\nHost: p\r\n\r\n{follow_up}");
    let replies = raw(&proxy, clean.as_bytes());
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200]);
    assert_quiet(&proxy);
}

/// Area 9: Hop-by-hop headers stop at customs both ways; `Connection` cannot
/// remove what customs sets itself.
#[test]
fn hop_by_hop_headers_never_cross_and_cannot_strip_customs_headers() {
    // The upstream answers with hop-by-hop headers, one named by its
    // Connection header, and a trailer carrying a canary.
    // A second Connection line holds a non-ASCII byte (obs-text, which
    // hyper accepts): the tokens before it still name hop-by-hop headers.
    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Connection: x-hop-secret, close\r\nX-Hop-Secret: 078-05-1120\r\nKeep-Alive: timeout=5\r\n\
        Connection: x-obs-secret, OBS\r\nX-Obs-Secret: 4111111111111111\r\n\
        Proxy-Authenticate: Basic realm=internal\r\nUpgrade: h2c\r\nTrailer: X-Trailer-Secret\r\n\
        X-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n\
        b\r\n{\"ok\":true}\r\n0\r\nX-Trailer-Secret: 078-05-1120\r\n\r\n";
    let up = Upstream::start(UpstreamOpts::new().raw(obs_text(answer)));
    let proxy = start(&up.url());
    // The caller authenticates with its API key in Authorization and asks
    // customs to drop its own headers and the credential it injects.
    let request = format!(
        "GET /keyed/api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {KEY}\r\n\
         Connection: keep-alive, x-request-id, x-forwarded-for, authorization, x-custom, close\r\n\
         Keep-Alive: timeout=99\r\nTE: trailers\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\
         Proxy-Connection: keep-alive\r\nX-Custom: dropped\r\nX-Request-Id: caller-chosen\r\n\
         Connection: x-obs-custom, OBS\r\nX-Obs-Custom: dropped\r\n\
         X-Forwarded-For: 6.6.6.6\r\nX-Caller: kept\r\n\r\n"
    );
    let bytes = raw_exchange(proxy.addr(), &obs_text(&request));
    let replies = parse_responses(&bytes);
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.body, br#"{"ok":true}"#);

    let seen = up.last();
    assert_eq!(seen.uri, "/k/api/x");
    // What customs sets survives the caller's Connection header.
    assert_eq!(
        seen.header_all("authorization"),
        [format!("Bearer {SECRET}")]
    );
    assert_eq!(seen.header_all("x-forwarded-for"), ["127.0.0.1"]);
    let id = seen.header("x-request-id").expect("x-request-id set");
    assert_ne!(id, "caller-chosen");
    assert_eq!(r.header("x-request-id"), Some(id));
    assert_eq!(
        seen.header("x-caller"),
        Some("kept"),
        "end-to-end headers cross"
    );
    // Hop-by-hop and Connection-named headers, and the caller's key, do not.
    for name in [
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "x-custom",
        "x-obs-custom",
        "x-api-key",
        "upgrade",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }
    let wire = String::from_utf8_lossy(&up.wire().concat()).into_owned();
    assert!(
        !wire.contains(KEY),
        "caller key on the upstream wire: {wire}"
    );
    assert!(!wire.contains("dXNlcjpwYXNz"));

    // Back to the caller: the upstream's hop-by-hop headers, the header its
    // Connection named and its trailer are gone; ordinary headers cross.
    assert_eq!(r.header("x-kept"), Some("yes"));
    for name in [
        "x-hop-secret",
        "x-obs-secret",
        "keep-alive",
        "proxy-authenticate",
        "upgrade",
        "trailer",
    ] {
        assert_eq!(r.header(name), None, "{name} reached the caller");
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.to_ascii_lowercase().contains("x-trailer-secret"),
        "{text}"
    );
    assert_no_canary("the caller's bytes", &bytes, &CANARIES);
    assert!(!proxy.read("audit.jsonl").contains(KEY));

    // Request trailers stop at customs too: only the body crosses.
    let chunked = "POST /acme/api/x HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nTrailer: X-Trailer-Secret\r\nConnection: close\r\n\r\n\
        2\r\n{}\r\n0\r\nX-Trailer-Secret: 078-05-1120\r\n\r\n";
    let replies = raw(&proxy, chunked.as_bytes());
    assert_eq!(replies.first().map(|r| r.status), Some(200));
    assert_eq!(up.last().text(), "{}");
    let wire = String::from_utf8_lossy(&up.wire().concat()).to_ascii_lowercase();
    assert!(
        !wire.contains("x-trailer-secret") && !wire.contains("trailer:"),
        "{wire}"
    );
    assert_quiet(&proxy);
}

/// Area 10: The policy reads JSON as the strictest upstream would, and leaves
/// untouched values byte for byte.
#[test]
fn json_semantics_cannot_slip_past_rules() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let url = proxy.url();
    // (request body, what the upstream must receive): `replace` yields
    // `***-**-****`; a key the rule missed would show `[US_SSN]` instead.
    let cases = [
        (r#"{"SSN":"078-05-1120"}"#, r#"{"SSN":"***-**-****"}"#), // case
        (r#"{"Ssn":"078-05-1120"}"#, r#"{"Ssn":"***-**-****"}"#),
        (r#"{"ſsn":"078-05-1120"}"#, r#"{"ſsn":"***-**-****"}"#), // U+017F folds to s
        (r#"{"s\u0073n":"078-05-1120"}"#, r#"{"ssn":"***-**-****"}"#), // escaped key
        (r#"[{"ssn":"078-05-1120"}]"#, r#"[{"ssn":"***-**-****"}]"#), // top-level array
        (r#""078-05-1120""#, r#""[US_SSN]""#),                    // top-level string
        (
            r#"{"a":[{"b":{"ssn":"078-05-1120"}}]}"#,
            r#"{"a":[{"b":{"ssn":"***-**-****"}}]}"#,
        ),
        (
            r#"{"id":18446744073709551616,"amount":1.10,"n":-0,"big":9007199254740993,"ssn":"078-05-1120"}"#,
            r#"{"id":18446744073709551616,"amount":1.10,"n":-0,"big":9007199254740993,"ssn":"***-**-****"}"#,
        ),
        (
            r#"{"card_number":4111111111111111}"#,
            r#"{"card_number":"************1111"}"#,
        ),
        // Keys distinct to JSON but one to the rule: every one is replaced.
        (
            r#"{"ssn":null,"SSN":"078-05-1120"}"#,
            r#"{"ssn":"***-**-****","SSN":"***-**-****"}"#,
        ),
    ];
    for (body, expected) in cases {
        let r = send(&url, "POST", "/acme/api/x", &[JSON], body.as_bytes());
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        assert_eq!(up.last().text(), expected, "{body}");
    }
    // Duplicates in either order are refused, whichever value a parser keeps.
    for body in [
        r#"{"ssn":"078-05-1120","ssn":null}"#,
        r#"{"ssn":null,"ssn":"078-05-1120"}"#,
    ] {
        let r = send(&url, "POST", "/acme/api/x", &[JSON], body.as_bytes());
        assert_refused(&r, 400, "bad_request", body);
    }
    assert_no_canary("the upstream", &up.wire().concat(), &[SSN, CARD, EMAIL]);

    // The same folding applies to what the upstream answers.
    let up = Upstream::json(
        200,
        r#"[{"ſsn":"078-05-1120","Card_Number":"4111111111111111"}]"#,
    );
    let proxy = start(&up.url());
    let r = send(&proxy.url(), "GET", "/acme/api/x", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"[{"ſsn":"***-**-****","Card_Number":"************1111"}]"#
    );
    assert_quiet(&proxy);
}

/// Area 11: An HTTP/2 caller meets the same refusals as an HTTP/1.1 one.
#[test]
fn http2_callers_get_the_same_refusals() {
    let up = Upstream::json(200, r#"{"ok":true}"#);
    let proxy = start(&up.url());
    let url = proxy.url();
    let big = format!(r#"{{"ssn":"{SSN}","pad":"{}"}}"#, "x".repeat(5000));
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let (plain, zstd, gz) = (
        vec![("content-type", "text/plain")],
        vec![JSON, ("content-encoding", "zstd")],
        vec![JSON, ("content-encoding", "gzip")],
    );
    let dup: &[u8] = br#"{"ssn":"078-05-1120","ssn":null}"#;
    #[rustfmt::skip]
    let cases: [Case; 8] = [
        ("traversal", "/acme/api/%2e%2e/x", &[JSON], PII.as_bytes(), 400, "bad_request"),
        ("undeclared", "/ACME/api/x", &[JSON], PII.as_bytes(), 404, "no_route"),
        ("text/plain", "/acme/api/x", &plain, PII.as_bytes(), 415, "unsupported_content"),
        ("no type", "/acme/api/x", &[], PII.as_bytes(), 415, "unsupported_content"),
        ("zstd", "/acme/api/x", &zstd, PII.as_bytes(), 415, "unsupported_content"),
        ("duplicate key", "/acme/api/x", &[JSON], dup, 400, "bad_request"),
        ("too large", "/acme/api/x", &[JSON], big.as_bytes(), 413, "too_large"),
        ("bomb", "/acme/api/x", &gz, &bomb, 413, "too_large"),
    ];
    for (case, path, headers, body, status, code) in cases {
        let r = send_h2(&url, "POST", path, headers, body);
        assert_eq!(r.version, http::Version::HTTP_2, "{case}");
        assert_refused(&r, status, code, case);
    }
    assert_eq!(up.hits(), 0, "no refused h2 request crossed");

    // Control: the same route filters an h2 body like an h1 one.
    let r = send_h2(&url, "POST", "/acme/api/x", &[JSON], PII.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().text(), PII_GUARDED);
    assert_quiet(&proxy);
}

/// Area 12: A governed response is judged whole: a caller cannot ask for a byte
/// range that is valid JSON on its own (a bare number, a bare string) and
/// so slips past rules written for the whole document.
#[test]
fn range_requests_cannot_cut_a_fragment_out_of_a_governed_response() {
    // `000-00-0000` is no valid SSN, so only the `ssn` rule hides it.
    const DOC: &str = r#"{"ssn":"000-00-0000"}"#;
    // An upstream that honours `Range: bytes=A-B` with a 206.
    let up = Upstream::start(UpstreamOpts::new().handler(|rec| {
        let range = rec.header("range").and_then(|r| r.strip_prefix("bytes="));
        let span = range
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        let (status, body) = match span {
            Some((a, b)) => (206, DOC.get(a..=b).unwrap_or_default()),
            None => (200, DOC),
        };
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(body.to_string().into()))
            .expect("response")
    }));
    let proxy = start(&up.url());
    // Bytes 7-19 are `"000-00-0000"`: a whole JSON document by itself.
    let range = [("range", "bytes=7-19"), ("if-range", "\"v1\"")];
    let r = send(&proxy.url(), "GET", "/acme/api/x", &range, b"");
    assert!(!r.text().contains("000-00-0000"), "{}", r.text());
    let seen = up.last();
    assert_eq!(seen.header("range"), None, "Range stripped upstream");
    assert_eq!(seen.header("if-range"), None);
    assert_eq!(r.text(), r#"{"ssn":"***-**-****"}"#);

    // An upstream that answers 206 unasked is refused, not judged in part.
    let up = Upstream::start(UpstreamOpts::new().respond(
        206,
        &[JSON, ("content-range", "bytes 7-19/21")],
        r#""000-00-0000""#,
    ));
    let proxy = start(&up.url());
    let r = send(&proxy.url(), "GET", "/acme/api/x", &[], b"");
    assert_refused(&r, 502, "response_refused", "unasked 206");
    assert!(!r.text().contains("000-00-0000"));
    assert_quiet(&proxy);
}
