//! Loopback tests: a real listener, real clients (hyper, tokio-rustls, raw
//! TCP), and a handler that echoes what it learned about the connection.

use super::*;
use crate::config::{TlsFiles, Upstream};
use crate::proxy::client;
use crate::proxy::sniff::Verdict;
use http::StatusCode;
use http::header::{CONNECTION, HOST, HeaderValue};
use http_body_util::Full;
use http_body_util::{BodyExt, Empty};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(5);

// ---- test PKI ----

/// A throw-away certificate authority.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A certificate and its key, both PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        Ca(CertifiedIssuer::self_signed(params, key).expect("self-sign CA"))
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    fn server(&self) -> Leaf {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(names).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    fn client(&self, cn: &str, uri: Option<&str>) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.to_string().try_into().expect("IA5")));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &*self.0).expect("sign leaf");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A client config trusting this CA, offering `alpn`, presenting `identity`.
    fn client_config(&self, alpn: &[&[u8]], identity: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.pem().as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("anchor");
        }
        let builder = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(leaf) => {
                let chain =
                    CertificateDer::pem_slice_iter(leaf.cert.as_bytes()).collect::<Result<_, _>>();
                let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
                builder
                    .with_client_auth_cert(chain.expect("chain"), key)
                    .expect("identity")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Writes the listener's TLS files into `dir`.
fn tls_files(dir: &Path, server: &Leaf, client_ca: Option<&Ca>) -> TlsFiles {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    TlsFiles {
        cert: write("server.pem", &server.cert),
        key: write("server.key", &server.key),
        client_ca: client_ca.map(|ca| write("clients.pem", &ca.pem())),
    }
}

// ---- server and clients ----

struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start<H, F>(opts: ListenerOptions, handler: H) -> Running
where
    H: Fn(Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(serve(listener, opts, handler, shutdown, WAIT));
    Running { addr, stop, task }
}

fn tls_opts(files: &TlsFiles) -> ListenerOptions {
    ListenerOptions {
        tls: Some(tls::server_config(files).expect("server config")),
        ..ListenerOptions::default()
    }
}

/// Answers 400 + close on a framing rejection, else echoes the connection.
async fn echo(req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Full<Bytes>> {
    if let Verdict::Reject(why) = conn.framing.take() {
        let mut response = Response::new(Full::new(Bytes::from(why)));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let cert = conn.peer_cert.clone().unwrap_or_default();
    let body = format!(
        "{:?} tls={} cn={} sans={}",
        req.version(),
        conn.tls,
        cert.subject_cn.unwrap_or_default(),
        cert.sans
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    Response::new(Full::new(Bytes::from(body)))
}

/// One GET over `io` (HTTP/2 when `h2`); the response body as text.
async fn get<I>(io: I, h2: bool) -> Result<String, hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let request = Request::get("https://localhost/x")
        .header(HOST, "localhost")
        .body(Empty::<Bytes>::new());
    let request = request.expect("request");
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    };
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(config)
        .connect(name, tcp(addr).await)
        .await
}

/// Everything the server sends until it closes the connection.
async fn read_until_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut out)).await;
    read.expect("server closes the connection").expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

// ---- tests ----

#[tokio::test]
async fn plain_http1() {
    let server = start(ListenerOptions::default(), echo).await;
    let body = get(tcp(server.addr).await, false).await.expect("GET");
    assert_eq!(body, "HTTP/1.1 tls=false cn= sans=");
}

#[tokio::test]
async fn h2c_by_prior_knowledge() {
    let server = start(ListenerOptions::default(), echo).await;
    let body = get(tcp(server.addr).await, true).await.expect("GET");
    assert_eq!(body, "HTTP/2.0 tls=false cn= sans=");
}

#[tokio::test]
async fn tls_protocol_follows_alpn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("server CA");
    let server = start(tls_opts(&tls_files(dir.path(), &ca.server(), None)), echo).await;

    let stream = tls_connect(server.addr, ca.client_config(&[b"h2", b"http/1.1"], None))
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    assert_eq!(
        get(stream, true).await.expect("GET"),
        "HTTP/2.0 tls=true cn= sans="
    );

    let stream = tls_connect(server.addr, ca.client_config(&[b"http/1.1"], None))
        .await
        .expect("handshake");
    assert_eq!(
        get(stream, false).await.expect("GET"),
        "HTTP/1.1 tls=true cn= sans="
    );
}

#[tokio::test]
async fn mtls_identity_reaches_the_handler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = tls_files(dir.path(), &server_ca.server(), Some(&client_ca));
    let server = start(tls_opts(&files), echo).await;

    let identity = client_ca.client("servicenow-dr", Some("spiffe://corp/servicenow"));
    let config = server_ca.client_config(&[b"h2"], Some(&identity));
    let stream = tls_connect(server.addr, config).await.expect("handshake");
    let body = get(stream, true).await.expect("GET");
    assert_eq!(
        body,
        "HTTP/2.0 tls=true cn=servicenow-dr sans=uri:spiffe://corp/servicenow"
    );

    // A certificate stays optional: API-key callers connect without one.
    let stream = tls_connect(server.addr, server_ca.client_config(&[b"h2"], None))
        .await
        .expect("handshake");
    assert_eq!(
        get(stream, true).await.expect("GET"),
        "HTTP/2.0 tls=true cn= sans="
    );
}

#[tokio::test]
async fn client_cert_from_another_ca_fails_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = tls_files(dir.path(), &server_ca.server(), Some(&client_ca));
    let server = start(tls_opts(&files), echo).await;

    let stranger = Ca::new("unrelated CA").client("servicenow-dr", None);
    let config = server_ca.client_config(&[b"http/1.1"], Some(&stranger));
    // With TLS 1.3 the client learns of the refusal on its first read.
    let refused = match tls_connect(server.addr, config).await {
        Err(_) => true,
        Ok(stream) => get(stream, false).await.is_err(),
    };
    assert!(refused, "a certificate from another CA must not be served");

    // The accept loop carries on.
    let stream = tls_connect(server.addr, server_ca.client_config(&[b"h2"], None))
        .await
        .expect("handshake");
    assert!(get(stream, true).await.is_ok());
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_rejected() {
    let server = start(ListenerOptions::default(), echo).await;
    let mut stream = tcp(server.addr).await;
    let ok = "GET /first HTTP/1.1\r\nHost: t\r\n\r\n";
    let smuggle = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5c\r\nGPOST /admin HTTP/1.1\r\n\r\n0\r\n\r\n";
    stream
        .write_all(format!("{ok}{smuggle}").as_bytes())
        .await
        .expect("write");
    let raw = read_until_close(&mut stream).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let second = &raw[raw.find("HTTP/1.1 400").expect("second response is 400")..];
    assert!(second.contains("connection: close"), "{second}");
    assert!(
        second.ends_with("both Content-Length and Transfer-Encoding"),
        "{second}"
    );
    assert_eq!(
        raw.matches("\r\n\r\n").count(),
        2,
        "exactly two responses: {raw}"
    );
}

#[tokio::test]
async fn oversized_head_is_refused_by_hyper() {
    let server = start(ListenerOptions::default(), echo).await;
    let mut stream = tcp(server.addr).await;
    let cookie = "a".repeat(sniff::MAX_HEAD);
    let head = format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n");
    // The server may close before taking the whole head.
    let _ = stream.write_all(head.as_bytes()).await;
    let raw = read_until_close(&mut stream).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let handler = {
        let (entered, release) = (entered.clone(), release.clone());
        move |_req: Request<Incoming>, _conn: Arc<ConnInfo>| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                entered.notify_one();
                release.notified().await;
                Response::new(Full::new(Bytes::from_static(b"finished")))
            }
        }
    };
    let mut server = start(ListenerOptions::default(), handler).await;
    let stream = tcp(server.addr).await;
    let request = tokio::spawn(get(stream, false));
    entered.notified().await;

    server.stop.send(true).expect("stop");
    let still_serving = tokio::time::timeout(Duration::from_millis(200), &mut server.task).await;
    assert!(
        still_serving.is_err(),
        "serve must wait for the in-flight request"
    );

    release.notify_one();
    let body = tokio::time::timeout(WAIT, request)
        .await
        .expect("response")
        .expect("task")
        .expect("GET");
    assert_eq!(body, "finished");
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("serve returns")
        .expect("serve task");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn connection_cap_holds_further_clients() {
    let opts = ListenerOptions {
        max_connections: 1,
        ..ListenerOptions::default()
    };
    let server = start(opts, echo).await;
    let mut first = tcp(server.addr).await;
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).await.expect("first answered");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let second = tokio::spawn(get(tcp(server.addr).await, false));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second client waits for a free slot"
    );
    drop(first);
    let body = tokio::time::timeout(WAIT, second)
        .await
        .expect("served")
        .expect("task")
        .expect("GET");
    assert_eq!(body, "HTTP/1.1 tls=false cn= sans=");
}

#[tokio::test]
async fn slow_request_head_times_out() {
    let opts = ListenerOptions {
        header_read_timeout: Duration::from_millis(200),
        ..ListenerOptions::default()
    };
    let server = start(opts, echo).await;
    let mut stream = tcp(server.addr).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("write");
    // Closed by the header timer, not by the test's own deadline.
    read_until_close(&mut stream).await;
}

#[tokio::test]
async fn silent_connections_are_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("server CA");
    let quick = ListenerOptions {
        header_read_timeout: Duration::from_millis(200),
        ..ListenerOptions::default()
    };
    let tls = ListenerOptions {
        tls: tls_opts(&tls_files(dir.path(), &ca.server(), None)).tls,
        ..quick.clone()
    };
    // Plain TCP: hyper's protocol detection has no timer of its own.
    let plain = start(quick, echo).await;
    let mut stream = tcp(plain.addr).await;
    assert_eq!(read_until_close(&mut stream).await, "");
    stream = tcp(plain.addr).await;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("write");
    assert_eq!(read_until_close(&mut stream).await, "");
    // TLS with h2 by ALPN, then silence.
    let server = start(tls, echo).await;
    let mut stream = tls_connect(server.addr, ca.client_config(&[b"h2"], None))
        .await
        .expect("handshake");
    // The server's SETTINGS may arrive first; then the connection ends
    // (without close_notify, so the read may fail).
    let mut settings = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut settings)).await;
    let _ = read.expect("server closes the connection");
}

#[tokio::test]
async fn stalled_tls_handshake_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("server CA");
    let opts = ListenerOptions {
        handshake_timeout: Duration::from_millis(200),
        ..tls_opts(&tls_files(dir.path(), &ca.server(), None))
    };
    let server = start(opts, echo).await;
    let mut stream = tcp(server.addr).await;
    assert_eq!(read_until_close(&mut stream).await, "");
}

#[tokio::test]
async fn upstream_client_uses_the_integration_ca_and_alpn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("acme CA");
    let server = start(tls_opts(&tls_files(dir.path(), &ca.server(), None)), echo).await;
    let ca_path = dir.path().join("acme-ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write CA");
    let authority: http::uri::Authority = format!("127.0.0.1:{}", server.addr.port())
        .parse()
        .expect("authority");
    let upstream = Upstream {
        https: true,
        authority,
        base_path: String::new(),
        ca: Some(ca_path),
        inject: None,
    };
    let client = client::build(&upstream).expect("client");
    let uri = format!("https://127.0.0.1:{}/x", server.addr.port());
    let request = Request::get(uri)
        .body(Bytes::new().into())
        .expect("request");
    let response = client.request(request).await.expect("upstream answers");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "HTTP/2.0 tls=true cn= sans=");

    // Without the integration's CA the upstream is not trusted.
    let strict = Upstream {
        ca: None,
        ..upstream
    };
    let request = Request::get(format!("https://127.0.0.1:{}/x", server.addr.port()))
        .body(Bytes::new().into());
    let refused = client::build(&strict)
        .expect("client")
        .request(request.expect("request"))
        .await;
    assert!(refused.is_err());
}
