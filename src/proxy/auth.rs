//! Stage 3: identity. Who is calling, whether the credential is still valid,
//! and whether it may use the matched route. API keys are compared as
//! SHA-256 digests in constant time; the config never holds a key.
//!
//! Precedence: a presented API key (`X-Api-Key`, or `Authorization: Bearer`)
//! is always judged, even on a connection with a valid client certificate;
//! an `Authorization` header that is not a usable Bearer key, several
//! different keys, or an empty or oversized one is refused (401), never
//! ignored in favour of another credential. Without a key, the verified
//! client certificate decides; without either, only `anonymous: true`
//! admits. Identities are looked up in the matched integration only, so a
//! credential of one integration gives nothing on another.

use super::error::{Kind, Refusal};
use crate::config::{Client, Integration, MtlsIdentity, San};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest API key accepted; longer values are refused unread.
const MAX_KEY_LEN: usize = 512;

/// Headers that carry caller credentials; never forwarded upstream.
pub const CREDENTIAL_HEADERS: [&str; 2] = ["x-api-key", "authorization"];

/// How the caller was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `X-Api-Key` or `Authorization: Bearer`.
    ApiKey,
    /// TLS client certificate.
    Mtls,
    /// `anonymous: true`.
    None,
}

impl AuthMethod {
    /// Audit value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Mtls => "mtls",
            AuthMethod::None => "none",
        }
    }
}

/// Why authentication failed (metric label `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// No credential presented.
    Missing,
    /// Not a credential of this integration.
    Unknown,
    /// The credential is past its `expires`.
    Expired,
    /// The route is outside the client's subset.
    Route,
}

impl FailReason {
    /// Every reason, exported at 0 from the start.
    pub const ALL: [FailReason; 4] = [
        FailReason::Missing,
        FailReason::Unknown,
        FailReason::Expired,
        FailReason::Route,
    ];

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Missing => "missing",
            FailReason::Unknown => "unknown",
            FailReason::Expired => "expired",
            FailReason::Route => "route",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'c> {
    /// The client, `None` for anonymous callers.
    pub client: Option<&'c Client>,
    /// How it was identified.
    pub method: AuthMethod,
}

/// Identity of a verified TLS client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCert {
    /// The subject common name, when the subject has exactly one and it decodes: a
    /// certificate that could name two callers names none.
    pub subject_cn: Option<String>,
    /// DNS, URI and e-mail subject alternative names.
    pub sans: Vec<San>,
}

/// An authentication failure.
#[derive(Debug)]
pub struct AuthFailure<'c> {
    /// What the caller gets.
    pub refusal: Refusal,
    /// The metric reason.
    pub reason: FailReason,
    /// The client whose credential was presented, when it identified one
    /// (expired, or outside its routes): the record names who was refused.
    pub presented: Option<Principal<'c>>,
}

/// Authenticates a request to `integration` for `route_id` on day `today`.
pub fn authenticate<'c>(
    integration: &'c Integration,
    route_id: &str,
    headers: &HeaderMap,
    peer: Option<&PeerCert>,
    today: jiff::civil::Date,
) -> Result<Principal<'c>, AuthFailure<'c>> {
    let principal = identify(integration, headers, peer)?;
    let Some(client) = principal.client else {
        return Ok(principal);
    };
    let refused = |reason, detail| {
        let mut failure = fail(Kind::Forbidden, reason, detail);
        failure.presented = Some(principal);
        Err(failure)
    };
    if client.expires.is_some_and(|d| today >= d) {
        return refused(FailReason::Expired, "credential expired");
    }
    if client
        .routes
        .as_ref()
        .is_some_and(|rs| !rs.iter().any(|r| r == route_id))
    {
        return refused(FailReason::Route, "route outside the client's subset");
    }
    Ok(principal)
}

/// The client a request's credential identifies in `integration`, without
/// judging it: for the record of a request refused before authentication
/// (integration past its end date, no route).
pub fn presented<'c>(
    integration: &'c Integration,
    headers: &HeaderMap,
    peer: Option<&PeerCert>,
) -> Option<Principal<'c>> {
    identify(integration, headers, peer)
        .ok()
        .filter(|p| p.client.is_some())
}

fn fail<'c>(kind: Kind, reason: FailReason, detail: &str) -> AuthFailure<'c> {
    AuthFailure {
        refusal: Refusal::new(kind, detail),
        reason,
        presented: None,
    }
}

fn identify<'c>(
    integration: &'c Integration,
    headers: &HeaderMap,
    peer: Option<&PeerCert>,
) -> Result<Principal<'c>, AuthFailure<'c>> {
    if let Some(key) = presented_key(headers)? {
        let digest: [u8; 32] = Sha256::digest(key).into();
        return match client_by_key(integration, &digest) {
            Some(client) => Ok(Principal {
                client: Some(client),
                method: AuthMethod::ApiKey,
            }),
            None => Err(fail(
                Kind::Unauthenticated,
                FailReason::Unknown,
                "unknown api key",
            )),
        };
    }
    if let Some(cert) = peer {
        return match client_by_cert(integration, cert) {
            Some(client) => Ok(Principal {
                client: Some(client),
                method: AuthMethod::Mtls,
            }),
            None => Err(fail(
                Kind::Unauthenticated,
                FailReason::Unknown,
                "unknown client certificate",
            )),
        };
    }
    if integration.anonymous {
        return Ok(Principal {
            client: None,
            method: AuthMethod::None,
        });
    }
    Err(fail(
        Kind::Unauthenticated,
        FailReason::Missing,
        "no credential",
    ))
}

/// The API key from `X-Api-Key` or `Authorization: Bearer`. Several keys,
/// empty or oversized values, and non-Bearer schemes are refused rather than
/// guessed at.
fn presented_key(headers: &HeaderMap) -> Result<Option<&[u8]>, AuthFailure<'static>> {
    let bad = |detail| fail(Kind::Unauthenticated, FailReason::Unknown, detail);
    let mut found: Option<&[u8]> = None;
    for value in headers.get_all("x-api-key") {
        if found.is_some() {
            return Err(bad("several api keys"));
        }
        found = Some(value.as_bytes());
    }
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let v = value.as_bytes();
        let token = v
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case(b"bearer "))
            .map(|_| v[7..].trim_ascii());
        match (token, found) {
            (Some(t), None) => found = Some(t),
            (Some(t), Some(prev)) if t == prev => {}
            _ => return Err(bad("conflicting or unsupported authorization")),
        }
    }
    match found {
        Some(k) if k.is_empty() || k.len() > MAX_KEY_LEN => Err(bad("malformed api key")),
        other => Ok(other),
    }
}

/// Compares against every hash of every client, without stopping early.
fn client_by_key<'c>(integration: &'c Integration, digest: &[u8; 32]) -> Option<&'c Client> {
    let mut found = None;
    for client in &integration.clients {
        for hash in &client.key_hashes {
            if bool::from(hash.ct_eq(digest)) && found.is_none() {
                found = Some(client);
            }
        }
    }
    found
}

fn client_by_cert<'c>(integration: &'c Integration, cert: &PeerCert) -> Option<&'c Client> {
    integration.clients.iter().find(|c| match &c.mtls {
        Some(MtlsIdentity::SubjectCn(cn)) => cert.subject_cn.as_deref() == Some(cn.as_str()),
        Some(MtlsIdentity::San { san, .. }) => cert.sans.iter().any(|s| san.matches(s)),
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn presented_keys() {
        let key = |pairs: &[(&'static str, &'static str)]| {
            presented_key(&headers(pairs))
                .map(|k| k.map(<[u8]>::to_vec))
                .map_err(|f| f.reason)
        };
        assert_eq!(key(&[]), Ok(None));
        assert_eq!(key(&[("x-api-key", "k1")]), Ok(Some(b"k1".to_vec())));
        assert_eq!(
            key(&[("authorization", "bEaReR  k1 ")]),
            Ok(Some(b"k1".to_vec()))
        );
        assert_eq!(
            key(&[("x-api-key", "k1"), ("authorization", "Bearer k1")]),
            Ok(Some(b"k1".to_vec()))
        );
        for bad in [
            &[("x-api-key", "")][..],
            &[("authorization", "Bearer ")],
            &[("authorization", "Bearer")],
            &[("authorization", "Basic azE=")],
            &[("x-api-key", "k1"), ("x-api-key", "k1")],
            &[("x-api-key", "k1"), ("authorization", "Bearer k2")],
            &[("x-api-key", "k1"), ("authorization", "Basic azE=")],
        ] {
            assert_eq!(key(bad), Err(FailReason::Unknown), "{bad:?}");
        }
        let long = HeaderValue::from_str(&"k".repeat(MAX_KEY_LEN + 1)).expect("value");
        let mut h = HeaderMap::new();
        h.insert("x-api-key", long);
        assert!(presented_key(&h).is_err());
    }
}
