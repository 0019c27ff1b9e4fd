//! The admin listener: `/metrics`, `/healthz`, `/readyz` for probes and
//! scrapers; `/inventory`, `/discovery` and the security team's page `/ui`
//! (with its API under `/ui/api/`) for people, behind `admin.token` when it
//! is set.
//! Separate from the proxy listener so operators can firewall it apart.

mod playground;

use super::listener::{self, ListenerOptions};
use super::server::Shared;
use crate::discovery::{self, Direction};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The page: one file, styles and script inline, no data of its own.
const UI_PAGE: &str = include_str!("ui.html");

/// Largest request body the playground reads (a policy and a document).
const MAX_API_BODY: usize = 1 << 20;

/// How long the playground waits for its request body.
const API_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves admin requests until `shutdown`.
pub async fn serve(l: TcpListener, shared: Shared, shutdown: watch::Receiver<bool>) {
    let handler = move |req: Request<hyper::body::Incoming>, _conn| {
        let shared = shared.clone();
        async move { answer(&shared, req).await }
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

async fn answer(shared: &Shared, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let rt = shared.load_full();
    let path = req.uri().path().to_owned();
    let guarded = path == "/inventory" || path == "/discovery" || path.starts_with("/ui/api/");
    if guarded && rt.config.admin_token.is_none() && !addressed_directly(&req) {
        return text(
            StatusCode::FORBIDDEN,
            "text/plain",
            "without admin.token these pages answer only requests to an IP address or localhost; set admin.token to use a host name\n".into(),
        );
    }
    if guarded && !authorized(rt.config.admin_token.as_ref(), req.headers()) {
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            "token needed\n".into(),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"customs admin\""),
        );
        return r;
    }
    match (req.method(), path.as_str()) {
        (&Method::POST, "/ui/api/apply") => match read_body(req).await {
            Ok(body) => json(playground::apply(&rt, &body)),
            Err(status) => text(
                status,
                "text/plain",
                "cannot read the request body\n".into(),
            ),
        },
        (&Method::GET, "/ui/api/draft") => draft(&rt, req.uri().query().unwrap_or_default()),
        (&Method::GET, _) => get(&rt, &path),
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only (POST for /ui/api/apply)\n".into(),
        ),
    }
}

fn get(rt: &super::Runtime, path: &str) -> Response<Full<Bytes>> {
    match path {
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
        "/inventory" => json(crate::inventory::json(
            &rt.config,
            rt.today(),
            &rt.metrics.usage(&rt.config),
        )),
        "/discovery" => {
            json(serde_json::to_string(&rt.signals.discovery().report()).unwrap_or_default())
        }
        "/ui" | "/ui/" => page(),
        "/ui/api/policies" => json(playground::policies(&rt.config)),
        "/ui/api/activity" => {
            json(serde_json::to_string(&rt.signals.activity(&rt.config)).unwrap_or_default())
        }
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// `?integration=I&route=R&direction=request|response`: the policy drafted
/// from discovery (404 with the reason when nothing was seen yet).
fn draft(rt: &super::Runtime, query: &str) -> Response<Full<Bytes>> {
    let arg = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let (Some(integration), Some(route), Some(direction)) = (
        arg("integration"),
        arg("route"),
        arg("direction").and_then(Direction::parse),
    ) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "needs ?integration=NAME&route=ID&direction=request|response\n".into(),
        );
    };
    let report = rt.signals.discovery().report();
    let seen = report
        .iter()
        .find(|r| r.integration == integration && r.route == route && r.direction == direction);
    let today = rt.today().to_string();
    let drafted = match seen {
        Some(r) => discovery::draft::draft(r, rt.config.hash_key.is_some(), &today),
        None => Err(discovery::draft::DraftError::NothingSeen(format!(
            "{integration} / {route} ({})",
            direction.name()
        ))),
    };
    match drafted {
        Ok(policy) => text(StatusCode::OK, "application/yaml", policy),
        Err(e) => text(StatusCode::NOT_FOUND, "text/plain", format!("{e}\n")),
    }
}

/// Whether the request names the listener by an IP address or `localhost`.
/// Without a token this is what keeps another site out: a page whose host name
/// an attacker re-points at this address (DNS rebinding) sends its own name.
fn addressed_directly<B>(req: &Request<B>) -> bool {
    let host = req.uri().host().map(str::to_owned).or_else(|| {
        let value = req.headers().get(header::HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = value.parse().ok()?;
        Some(authority.host().to_owned())
    });
    host.is_some_and(|h| {
        let bare = h.trim_start_matches('[').trim_end_matches(']');
        bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok()
    })
}

/// Whether the request may read guarded paths: always when no token is
/// configured, else with `Authorization: Bearer <token>` whose SHA-256 matches.
fn authorized(token: Option<&[u8; 32]>, headers: &HeaderMap) -> bool {
    let Some(want) = token else { return true };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    presented.is_some_and(|t| Sha256::digest(t.as_bytes()).as_slice().ct_eq(want).into())
}

async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes, StatusCode> {
    let body = Limited::new(req.into_body(), MAX_API_BODY);
    match tokio::time::timeout(API_BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
    }
}

fn page() -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::OK, "text/html; charset=utf-8", UI_PAGE.into());
    let h = r.headers_mut();
    // The page runs only its own inline script and talks only to this listener.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    r
}

fn json(body: String) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::OK, "application/json", body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
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
