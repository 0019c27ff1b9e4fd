//! TLS material: the listener's server config (optionally verifying client
//! certificates for mTLS identities), the identity of a verified client
//! certificate, and the PEM loading shared with the upstream client.
//!
//! The crypto provider is always ring, passed explicitly, so nothing depends
//! on which provider happens to be installed process-wide.

use super::auth::PeerCert;
use crate::config::{San, read};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::AttributeTypeAndValue;

/// ALPN protocols the listener offers, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why TLS material cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: read::ReadError,
    },
    /// The file is not valid PEM.
    #[error("{}: invalid PEM: {source}", .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("{}: no certificate found (expected PEM \"CERTIFICATE\" blocks)", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key.
    #[error("{}: no private key found (expected PKCS#8, PKCS#1 or SEC1 PEM)", .path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate cannot be used as a trust anchor.
    #[error("{}: unusable CA certificate: {source}", .path.display())]
    Anchor {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The client CA file cannot back a client certificate verifier.
    #[error("{}: cannot verify client certificates with it: {source}", .path.display())]
    ClientVerifier {
        /// The client CA file.
        path: PathBuf,
        /// Why.
        source: rustls::server::VerifierBuilderError,
    },
    /// The certificate chain and key do not make a usable identity.
    #[error("{} with {}: {source}", .cert.display(), .key.display())]
    Identity {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why (unsupported key type, key does not match the certificate, ...).
        source: rustls::Error,
    },
    /// rustls refused the configuration itself.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The listener's TLS config: chain and key from `files`; with `client_ca`,
/// client certificates are verified against it but stay optional (callers
/// may use API keys instead), and a certificate from another CA fails the
/// handshake.
pub fn server_config(files: &crate::config::TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = Arc::new(roots_from(ca, RootCertStore::empty())?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .allow_unauthenticated()
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: ca.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Identity {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The identity of the client certificate rustls verified on `conn`, if the
/// client presented one.
pub fn peer_cert(conn: &ServerConnection) -> Option<PeerCert> {
    let leaf = conn.peer_certificates()?.first()?;
    identity(leaf)
}

/// Subject CN and DNS/URI/e-mail subject alternative names of a DER certificate.
fn identity(der: &[u8]) -> Option<PeerCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    // Tools that read "the" CN differently (first, last, first decodable) must not
    // disagree about who calls: only a single CN that decodes names anyone.
    let mut cns = cert.subject().iter_common_name();
    let subject_cn = match (cns.next(), cns.next()) {
        (Some(cn), None) => decode_cn(cn),
        _ => None,
    };
    // A malformed or duplicated SAN extension yields no SANs, so no SAN match.
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(san_text)
            .collect(),
        _ => Vec::new(),
    };
    Some(PeerCert { subject_cn, sans })
}

/// A CN in any of the string types CAs use, BMPString (UCS-2) included.
fn decode_cn(cn: &AttributeTypeAndValue<'_>) -> Option<String> {
    if let Ok(s) = cn.as_str() {
        return Some(s.to_owned());
    }
    let value = cn.attr_value();
    if value.tag() != Tag::BmpString || value.data.len() % 2 != 0 {
        return None;
    }
    let units = value
        .data
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

fn san_text(name: &GeneralName<'_>) -> Option<San> {
    match name {
        GeneralName::DNSName(s) => Some(San::Dns((*s).to_owned())),
        GeneralName::URI(s) => Some(San::Uri((*s).to_owned())),
        GeneralName::RFC822Name(s) => Some(San::Email((*s).to_owned())),
        _ => None,
    }
}

/// The ring provider, used for every TLS config customs builds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Adds every certificate in the PEM file `path` to `roots`.
pub(crate) fn roots_from(path: &Path, mut roots: RootCertStore) -> Result<RootCertStore, TlsError> {
    for cert in certificates(path)? {
        roots.add(cert).map_err(|source| TlsError::Anchor {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(&read(path)?) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoKey {
            path: path.to_owned(),
        }),
        Err(source) => Err(TlsError::Pem {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    read::read_bytes(path, read::MAX_PEM_BYTES).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsFiles;
    use rcgen::{CertificateParams, CertifiedKey, DnType, DnValue, KeyPair, SanType};

    fn self_signed(cn: &str, sans: Vec<SanType>) -> CertifiedKey<KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let signing_key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&signing_key).expect("self-sign");
        CertifiedKey { cert, signing_key }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn files(dir: &Path, cert: &str, key: &str, client_ca: Option<&str>) -> TlsFiles {
        TlsFiles {
            cert: write(dir, "server.pem", cert),
            key: write(dir, "server.key", key),
            client_ca: client_ca.map(|ca| write(dir, "clients.pem", ca)),
        }
    }

    fn error(files: &TlsFiles) -> String {
        server_config(files)
            .map(|_| ())
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn loads_chain_key_and_client_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = self_signed("localhost", vec![]);
        let ca = self_signed("clients", vec![]);
        let files = files(
            dir.path(),
            &server.cert.pem(),
            &server.signing_key.serialize_pem(),
            Some(&ca.cert.pem()),
        );
        let config = server_config(&files).expect("config");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = self_signed("localhost", vec![]);
        let (cert, key) = (server.cert.pem(), server.signing_key.serialize_pem());

        let no_key = files(dir.path(), &cert, &cert, None);
        let msg = error(&no_key);
        assert!(
            msg.ends_with("server.key: no private key found (expected PKCS#8, PKCS#1 or SEC1 PEM)"),
            "{msg}"
        );

        let no_cert = files(dir.path(), &key, &key, None);
        assert!(
            error(&no_cert).contains("server.pem: no certificate found"),
            "{}",
            error(&no_cert)
        );

        let bad_pem = files(dir.path(), "-----BEGIN CERTIFICATE-----\n!!\n", &key, None);
        assert!(
            error(&bad_pem).contains("server.pem: invalid PEM"),
            "{}",
            error(&bad_pem)
        );

        let mut missing = files(dir.path(), &cert, &key, None);
        missing.key = dir.path().join("absent.key");
        assert!(
            error(&missing).contains("absent.key: cannot read"),
            "{}",
            error(&missing)
        );

        let other = self_signed("other", vec![]).signing_key.serialize_pem();
        let mismatch = files(dir.path(), &cert, &other, None);
        let msg = error(&mismatch);
        assert!(
            msg.contains("server.pem with ") && msg.contains("server.key: "),
            "{msg}"
        );

        let empty_ca = files(dir.path(), &cert, &key, Some("# no certificates\n"));
        assert!(
            error(&empty_ca).contains("clients.pem: no certificate found"),
            "{}",
            error(&empty_ca)
        );
    }

    #[test]
    fn identity_reads_cn_dns_and_uri_sans() {
        let uri = "spiffe://corp/servicenow"
            .to_string()
            .try_into()
            .expect("ia5");
        let dns = "sn.corp.example".to_string().try_into().expect("ia5");
        let ip = SanType::IpAddress([10, 0, 0, 1].into());
        let cert = self_signed(
            "servicenow-dr",
            vec![SanType::URI(uri), SanType::DnsName(dns), ip],
        );
        let got = identity(cert.cert.der()).expect("parse");
        assert_eq!(got.subject_cn.as_deref(), Some("servicenow-dr"));
        assert_eq!(
            got.sans,
            vec![
                San::Uri("spiffe://corp/servicenow".into()),
                San::Dns("sn.corp.example".into())
            ]
        );
        assert_eq!(identity(b"not a certificate"), None);
    }

    /// The CN customs reads from a subject with these CNs (at most two: the DN is a map,
    /// so the second goes in under the CN's OID written as a custom type).
    fn with_cns(cns: Vec<DnValue>) -> Option<String> {
        let mut params = CertificateParams::default();
        let types = [DnType::CommonName, DnType::CustomDnType(vec![2, 5, 4, 3])];
        for (ty, cn) in types.into_iter().zip(cns) {
            params.distinguished_name.push(ty, cn);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        identity(cert.der()).expect("parse").subject_cn
    }

    #[test]
    fn a_subject_with_two_cns_names_nobody_and_a_bmp_cn_decodes() {
        let utf8 = |s: &str| DnValue::Utf8String(s.into());
        assert_eq!(with_cns(vec![utf8("svc-a")]), Some("svc-a".into()));
        let bmp = DnValue::BmpString("svc-ü".try_into().expect("bmp"));
        assert_eq!(with_cns(vec![bmp.clone()]), Some("svc-ü".into()));
        assert_eq!(with_cns(vec![bmp, utf8("svc-a")]), None);
        assert_eq!(with_cns(vec![utf8("svc-a"), utf8("svc-b")]), None);
    }
}
