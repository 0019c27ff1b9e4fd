//! The floor under customs: a bare hyper reverse proxy with the same stack
//! (one single-threaded tokio runtime per CPU accepting on a shared socket,
//! hyper-util auto server, a pooled legacy client per thread, mimalloc) and
//! no policy, audit, auth or metrics. It buffers bodies whole, as customs
//! does. `benches/load.sh` runs it as the `hyper-bare` target with
//! `LOAD_BARE=1`, to tell the cost of the stack from the cost of customs.
//!
//! `cargo run --release --example bare_proxy -- 127.0.0.1:0 http://127.0.0.1:8080`
//! prints `ready proxy=ADDR`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;

type Upstream = Client<HttpConnector, Full<Bytes>>;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream: http::Uri = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
        .parse()
        .map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    println!("ready proxy={}", listener.local_addr()?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (socket, upstream) = (listener.try_clone()?, upstream.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(std::thread::spawn(move || {
            runtime.block_on(accept(socket, upstream))
        }));
    }
    for handle in handles {
        handle
            .join()
            .map_err(|_| std::io::Error::other("thread panicked"))??;
    }
    Ok(())
}

async fn accept(socket: std::net::TcpListener, upstream: http::Uri) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(socket)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new()).build(http);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                forward(client.clone(), upstream.clone(), req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn forward(
    client: Upstream,
    upstream: http::Uri,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let bad_gateway = || {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = http::StatusCode::BAD_GATEWAY;
        r
    };
    let (mut parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(bad_gateway());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{upstream}{}", path.trim_start_matches('/')).parse() else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    parts.headers.remove(http::header::HOST);
    let Ok(resp) = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return Ok(bad_gateway());
    };
    let (parts, body) = resp.into_parts();
    match body.collect().await {
        Ok(b) => Ok(Response::from_parts(parts, Full::new(b.to_bytes()))),
        Err(_) => Ok(bad_gateway()),
    }
}
