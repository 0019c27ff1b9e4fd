//! A certificate names exactly one identity: SANs are compared by type (a DNS name never
//! matches a URI of the same text, nor the other way round), and a subject with two CNs
//! names nobody, so customs and other tools cannot disagree about who is calling.

mod common;

use common::{LOCAL, Pki, Proxy, Upstream, send_tls};
use rcgen::{CertificateParams, DnType, SanType};

const CONFIG: &str = r#"listen:
  address: 127.0.0.1:0
  tls: { cert: tls/server.pem, key: tls/server.key, client_ca: tls/clients.pem }
admin: { address: 127.0.0.1:0 }
audit: { path: "{dir}/audit.jsonl" }
integrations:
  - name: acme
    owner: itsm@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    upstream: { url: "{upstream}" }
    clients:
      - { id: by-dns, mtls: { san: "dns:svc-a.example" }, expires: 2099-01-01 }
      - { id: by-uri, mtls: { san: "uri:spiffe://corp/svc-s" }, expires: 2099-01-01 }
      - { id: by-cn, mtls: { subject_cn: svc-cn }, expires: 2099-01-01 }
    routes:
      - { id: all, methods: [GET], path: /**, request: pass, response: pass }
"#;

fn cert(pki: &Pki, cns: &[&str], sans: Vec<SanType>) -> (String, String) {
    let mut p = CertificateParams::default();
    // The DN is a map: a second CN goes in under the CN's OID written as a custom type.
    let types = [DnType::CommonName, DnType::CustomDnType(vec![2, 5, 4, 3])];
    for (ty, cn) in types.into_iter().zip(cns) {
        p.distinguished_name.push(ty, *cn);
    }
    p.subject_alt_names = sans;
    pki.client_cert_from(p)
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.to_string().try_into().expect("ia5"))
}

fn uri(name: &str) -> SanType {
    SanType::URI(name.to_string().try_into().expect("ia5"))
}

#[test]
fn sans_match_by_type_and_two_cns_name_nobody() {
    let up = Upstream::json(200, "{}");
    let pki = Pki::new();
    let server = pki.server_cert(LOCAL);
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("tls/server.pem", &server.0)
        .file("tls/server.key", &server.1)
        .file("tls/clients.pem", pki.ca_pem())
        .start(CONFIG, &[]);
    let status = |identity: &(String, String)| {
        let tls = pki.client_config(Some(identity));
        send_tls(&tls, &proxy.https_url(), "GET", "/acme/x", &[], b"").status
    };
    // The right name of the right type is the client.
    assert_eq!(status(&cert(&pki, &["w"], vec![dns("SVC-A.example")])), 200);
    assert_eq!(
        status(&cert(&pki, &["w"], vec![uri("spiffe://corp/svc-s")])),
        200
    );
    assert_eq!(status(&cert(&pki, &["svc-cn"], vec![])), 200);
    // The same text under another type is nobody.
    assert_eq!(status(&cert(&pki, &["w"], vec![uri("svc-a.example")])), 401);
    assert_eq!(
        status(&cert(&pki, &["w"], vec![dns("spiffe://corp/svc-s")])),
        401
    );
    // Two CNs: whichever a tool reads first, customs reads none.
    assert_eq!(status(&cert(&pki, &["svc-cn", "other"], vec![])), 401);
    assert_eq!(status(&cert(&pki, &["other", "svc-cn"], vec![])), 401);
    assert_eq!(up.hits(), 3, "only the three named callers crossed");
    let clients: Vec<String> = proxy
        .crossings("audit.jsonl")
        .iter()
        .map(|r| r["client"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(&clients[..3], ["by-dns", "by-uri", "by-cn"]);
}

#[test]
fn check_warns_about_a_san_without_its_type() {
    let dir = tempfile::tempdir().expect("dir");
    let config = CONFIG
        .replace("dns:svc-a.example", "svc-a.example")
        .replace("{upstream}", "http://127.0.0.1:9")
        .replace("{dir}", &dir.path().display().to_string())
        .replace(
            "  tls: { cert: tls/server.pem, key: tls/server.key, client_ca: tls/clients.pem }\n",
            "",
        );
    std::fs::create_dir(dir.path().join("policies")).expect("policies folder");
    let path = dir.path().join("customs.yaml");
    std::fs::write(&path, config).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("san is read as dns:svc-a.example"), "{text}");
    assert!(
        !text.contains("read as uri:"),
        "typed SANs are not warned about: {text}"
    );
}
