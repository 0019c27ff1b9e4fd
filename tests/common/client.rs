//! HTTP clients for tests: pooled HTTP/1.1 and h2c (prior knowledge) clients,
//! and a one-connection TLS client that honours the config's ALPN list.
//! Header pairs are appended in order (duplicates kept); a `host` pair
//! replaces the default Host header.

use super::block_on;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

/// Upper bound for one request/response exchange.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A response as the test client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The first value of header `name`, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }
}

/// How a request travels.
#[derive(Clone)]
pub enum Via {
    /// HTTP/1.1 over plain TCP, pooled keep-alive connections.
    H1,
    /// HTTP/2 with prior knowledge over plain TCP, pooled.
    H2c,
    /// One TLS connection per request; ALPN from the config (`h2` wins if
    /// negotiated, else HTTP/1.1).
    Tls(Arc<ClientConfig>),
}

/// HTTP/1.1 request to `url` + `path` (e.g. `proxy.url()`, `/demo/x?q=1`).
/// Panics on transport errors; see [`request`] to observe them.
#[track_caller]
pub fn send(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    request(&Via::H1, url, method, path, headers, body).expect("HTTP/1.1 request")
}

/// Like [`send`], over HTTP/2 with prior knowledge (h2c).
#[track_caller]
pub fn send_h2(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    request(&Via::H2c, url, method, path, headers, body).expect("h2c request")
}

/// Like [`send`], over TLS with `tls` (e.g. `pki.client_config(Some(&cert))`).
#[track_caller]
pub fn send_tls(
    tls: &ClientConfig,
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let via = Via::Tls(Arc::new(tls.clone()));
    request(&via, url, method, path, headers, body).expect("TLS request")
}

/// Sends one request; `Err` describes a transport failure or timeout.
pub fn request(
    via: &Via,
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let uri: Uri = format!("{}{path}", url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad URI {url}{path}: {e}"))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = Request::builder().method(method).uri(uri.clone());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let via = via.clone();
    block_on(async move {
        let exchange = async move {
            let res = match via {
                Via::H1 => H1.request(req).await.map_err(|e| format!("{e:?}"))?,
                Via::H2c => H2C.request(req).await.map_err(|e| format!("{e:?}"))?,
                Via::Tls(cfg) => tls_request(cfg, &uri, req).await?,
            };
            let (parts, body) = res.into_parts();
            let body = body.collect().await.map_err(|e| format!("body: {e:?}"))?;
            Ok(Reply {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        let limit = REQUEST_TIMEOUT;
        (timeout(limit, exchange).await).unwrap_or_else(|_| Err(format!("timeout after {limit:?}")))
    })
}

type Pooled = Client<HttpConnector, Full<Bytes>>;
static H1: LazyLock<Pooled> = LazyLock::new(|| Client::builder(TokioExecutor::new()).build_http());
static H2C: LazyLock<Pooled> = LazyLock::new(|| {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
});

async fn tls_request(
    cfg: Arc<ClientConfig>,
    uri: &Uri,
    mut req: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let host = uri.host().ok_or("URI without host")?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let res = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e:?}"))?;
        tokio::spawn(conn);
        sender.send_request(req).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("h1 handshake: {e:?}"))?;
        tokio::spawn(conn);
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or(host);
        let origin = uri.path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = origin.parse().map_err(|e| format!("origin form: {e}"))?;
        let headers = req.headers_mut();
        if !headers.contains_key(http::header::HOST) {
            let host = authority.parse().map_err(|e| format!("host: {e}"))?;
            headers.insert(http::header::HOST, host);
        }
        sender.send_request(req).await
    };
    res.map_err(|e| format!("{e:?}"))
}

/// `data` gzip-compressed, as a caller or upstream would send it.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}
