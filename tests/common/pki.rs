//! Test PKI: a throw-away CA (rcgen) issuing server and client certificates,
//! and rustls configs that trust it. Certificates are `(cert PEM, key PEM)`.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

/// The names a loopback server certificate normally carries.
pub const LOCAL: &[&str] = &["127.0.0.1", "localhost"];

/// ALPN offered by the configs built here (tests may overwrite the field).
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Installs ring as rustls' process-wide crypto provider (idempotent).
pub fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A test certificate authority.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    /// A fresh CA named "customs test CA".
    pub fn new() -> Self {
        Self::named("customs test CA")
    }

    fn named(cn: &str) -> Self {
        init_crypto();
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(p, key).expect("self-sign CA");
        Pki { ca }
    }

    /// The CA certificate (PEM), e.g. for `client_ca:` or `upstream.ca:`.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for exactly `names` (DNS names or IPs; see [`LOCAL`]).
    pub fn server_cert(&self, names: &[&str]) -> (String, String) {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = CertificateParams::new(sans).expect("server SANs");
        let cn = names.first().copied().unwrap_or("server");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(&p)
    }

    /// A client certificate with subject CN `cn` and an optional URI SAN
    /// (e.g. `spiffe://corp/servicenow`).
    pub fn client_cert(&self, cn: &str, san_uri: Option<&str>) -> (String, String) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(uri) = san_uri {
            let uri = uri.to_string().try_into().expect("URI SAN must be IA5");
            p.subject_alt_names.push(SanType::URI(uri));
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&p)
    }

    /// A client certificate with the subject and SANs of `p`, issued by this CA.
    pub fn client_cert_from(&self, mut p: CertificateParams) -> (String, String) {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&p)
    }

    /// A client certificate named `cn`, issued by a fresh, unrelated CA.
    pub fn other_ca_client_cert(&self, cn: &str) -> (String, String) {
        Pki::named("unrelated CA").client_cert(cn, None)
    }

    /// A client config trusting this CA, presenting `identity` if given.
    pub fn client_config(&self, identity: Option<&(String, String)>) -> ClientConfig {
        client_config(&self.ca_pem(), identity)
    }

    fn issue(&self, p: &CertificateParams) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let cert = p.signed_by(&key, &*self.ca).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes `pem` to `dir/name` (creating parent folders) and returns the path.
pub fn write_pem(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create PEM folder");
    }
    std::fs::write(&path, pem).expect("write PEM");
    path
}

/// A client config trusting `ca_pem`, with ALPN [`ALPN`].
pub fn client_config(ca_pem: &str, identity: Option<&(String, String)>) -> ClientConfig {
    init_crypto();
    let builder = ClientConfig::builder().with_root_certificates(roots(ca_pem));
    let mut cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs(cert), private_key(key))
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// A server config for `cert` (with ALPN [`ALPN`]); with `client_ca_pem`,
/// client certificates issued by that CA are required.
pub fn server_config(cert: &(String, String), client_ca_pem: Option<&str>) -> ServerConfig {
    init_crypto();
    let builder = ServerConfig::builder();
    let builder = match client_ca_pem {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(roots(ca)))
                .build()
                .expect("client verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs(&cert.0), private_key(&cert.1))
        .expect("server identity");
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    cfg
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificate PEM")
}

fn private_key(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("private key PEM")
}

fn roots(ca_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_pem) {
        roots.add(cert).expect("trust anchor");
    }
    roots
}
