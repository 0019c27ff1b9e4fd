//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/inventory`.
//! Separate from the proxy listener so operators can firewall it apart.

use super::listener::{self, ListenerOptions};
use super::server::Shared;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves admin requests until `shutdown`.
pub async fn serve(l: TcpListener, shared: Shared, shutdown: watch::Receiver<bool>) {
    let handler = move |req: Request<hyper::body::Incoming>, _conn| {
        let shared = shared.clone();
        async move { answer(&shared, &req) }
    };
    listener::serve(
        l,
        ListenerOptions::default(),
        handler,
        shutdown,
        Duration::from_secs(5),
    )
    .await;
}

fn answer<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let rt = shared.load();
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            rt.metrics.render(&rt.auditor),
        ),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if rt.auditor.healthy() => text(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "audit log failing\n".into(),
        ),
        "/inventory" => text(
            StatusCode::OK,
            "application/json",
            crate::inventory::json(&rt.config, rt.today(), &rt.metrics.usage(&rt.config)),
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}
