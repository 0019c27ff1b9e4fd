//! The upstream client: one pooled hyper client per integration, trusting
//! the OS roots plus the integration's own `upstream.ca`. HTTP/2 is used when
//! the upstream picks it by ALPN, HTTP/1.1 otherwise.

use super::tls::{self, TlsError};
use super::upload::UpstreamBody;
use crate::config::{DEFAULT_RESPONSE_HEADERS, Upstream};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use std::time::Duration;

/// The client type every integration uses.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// TCP connect deadline (the whole exchange is bounded by `upstream_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// Idle pooled connections kept per upstream.
const POOL_MAX_IDLE: usize = 64;
/// TCP keep-alive probes on upstream sockets.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// HTTP/2 PING interval and the deadline for its answer.
const H2_KEEPALIVE: Duration = Duration::from_secs(30);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds the client for `upstream`.
pub fn build(upstream: &Upstream) -> Result<UpstreamClient, TlsError> {
    Ok(pooled(tls_config(upstream)?, DEFAULT_RESPONSE_HEADERS))
}

/// Builds `copies` clients for `upstream`, each with its own connection
/// pool: one per listener shard, so a request and the pooled connection it
/// uses stay on one thread (see [`super::listener::shards`]).
/// Response heads may carry at most `max_headers` fields.
pub fn build_per_shard(
    upstream: &Upstream,
    copies: usize,
    max_headers: usize,
) -> Result<Vec<UpstreamClient>, TlsError> {
    let tls = tls_config(upstream)?;
    Ok((0..copies.max(1))
        .map(|_| pooled(tls.clone(), max_headers))
        .collect())
}

fn pooled(tls: ClientConfig, max_headers: usize) -> UpstreamClient {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp_connector());
    Client::builder(TokioExecutor::new())
        // Without timers the idle timeout and h2 keep-alive do nothing.
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .http2_keep_alive_interval(H2_KEEPALIVE)
        .http2_keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .http1_max_headers(max_headers)
        .build(connector)
}

/// Builds the client that carries protocol upgrades to `upstream`: HTTP/1.1
/// only (ALPN offers nothing else, since an h2 connection cannot switch
/// protocols), and no idle pool: an upgraded connection never returns to it.
pub fn build_for_upgrades(
    upstream: &Upstream,
    max_headers: usize,
) -> Result<UpstreamClient, TlsError> {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(upstream)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp_connector());
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_max_idle_per_host(0)
        .http1_max_headers(max_headers)
        .build(connector))
}

/// Trust: the OS roots plus the integration's own `upstream.ca`.
fn tls_config(upstream: &Upstream) -> Result<ClientConfig, TlsError> {
    let mut roots = native_roots();
    if let Some(ca) = &upstream.ca {
        roots = tls::roots_from(ca, roots)?;
    }
    if upstream.https && roots.is_empty() {
        tracing::warn!(
            upstream = %upstream.authority,
            "no trust anchors: HTTPS to this upstream will fail"
        );
    }
    Ok(ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn tcp_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false); // the HTTPS layer above handles `https://`
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http
}

/// The OS trust store; unreadable entries are skipped and an empty or
/// missing store is not an error (an explicit `upstream.ca` may suffice).
fn native_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::debug!(
            errors = found.errors.len(),
            "some OS trust store entries could not be read"
        );
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "some OS trust anchors are unusable");
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn upstream(ca: Option<PathBuf>) -> Upstream {
        Upstream {
            https: true,
            authority: http::uri::Authority::from_static("api.example:443"),
            base_path: String::new(),
            ca,
            inject: None,
        }
    }

    #[tokio::test]
    async fn builds_with_and_without_an_extra_ca() {
        let pools =
            build_per_shard(&upstream(None), 2, DEFAULT_RESPONSE_HEADERS).expect("OS roots only");
        assert_eq!(pools.len(), 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .self_signed(&key)
            .expect("self-sign");
        let path = dir.path().join("acme-ca.pem");
        std::fs::write(&path, ca.pem()).expect("write");
        build(&upstream(Some(path))).expect("with CA");
    }

    #[test]
    fn bad_ca_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing-ca.pem");
        let msg = build(&upstream(Some(missing)))
            .map(|_| ())
            .expect_err("must fail")
            .to_string();
        assert!(msg.contains("missing-ca.pem: cannot read"), "{msg}");
        let empty = dir.path().join("empty-ca.pem");
        std::fs::write(&empty, "").expect("write");
        let msg = build(&upstream(Some(empty)))
            .map(|_| ())
            .expect_err("must fail")
            .to_string();
        assert!(msg.contains("empty-ca.pem: no certificate found"), "{msg}");
    }
}
