//! Protocol upgrades: WebSocket only, HTTP/1.1 only, on routes that say
//! `upgrade: true` (whose policies are `pass` both ways: after a 101 the bytes
//! are no longer HTTP, so nothing could inspect them).
//!
//! The upgrade request crosses like any other (identity, credential
//! injection, `X-Forwarded-*`, request id, one audit record), plus
//! `Connection: upgrade` and `Upgrade: websocket`, on a dedicated HTTP/1.1
//! connection. Only a 101 that switches to WebSocket and proves, with
//! `Sec-WebSocket-Accept`, that the upstream answered this very handshake is
//! relayed (attacks.md §E.38); then both upgraded connections are joined
//! until either side closes, no byte moves for `limits.tunnel_idle_timeout`,
//! or customs shuts down. Anything else is refused before a byte is copied.

use super::Runtime;
use super::error::{Kind, Refusal};
use super::observe::{Observed, Observer};
use super::route::Matched;
use crate::audit::{Auditor, Event};
use crate::metrics::Metrics;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
// tokio's clock: what `sleep_until` takes.
use tokio::time::Instant;

/// The only protocol customs switches to.
const WEBSOCKET: &str = "websocket";
/// RFC 6455 §1.3: appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// A WebSocket handshake the caller asked for, checked.
#[derive(Debug)]
pub struct Asked {
    /// The `Sec-WebSocket-Accept` value a genuine answer carries.
    accept: String,
    /// Resolves to the caller's connection once the 101 is written.
    caller: OnUpgrade,
}

/// Checks an upgrade request: HTTP/1.1, `GET`, `Upgrade: websocket` named
/// in `Connection`, one valid `Sec-WebSocket-Key`, and no body (a body on an
/// upgrade request is a smuggling vehicle, attacks.md §E.38).
pub fn asked<B>(req: &mut Request<B>) -> Result<Asked, Refusal> {
    let refuse = |why: &str| Err(Refusal::new(Kind::BadRequest, why));
    if req.version() != Version::HTTP_11 {
        return refuse("upgrade outside HTTP/1.1");
    }
    if req.method() != Method::GET {
        return refuse("upgrade on a method other than GET");
    }
    let headers = req.headers();
    if !single_token(headers, &header::UPGRADE, WEBSOCKET) {
        return refuse("upgrade to a protocol other than websocket");
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return refuse("Upgrade not named in Connection");
    }
    if has_body(headers) {
        return refuse("upgrade request with a body");
    }
    let Some(key) = websocket_key(headers) else {
        return refuse("missing or invalid Sec-WebSocket-Key");
    };
    Ok(Asked {
        accept: accept_for(key),
        caller: hyper::upgrade::on(req),
    })
}

impl Asked {
    /// Checks the upstream's 101: it switched to WebSocket, and its
    /// `Sec-WebSocket-Accept` answers the caller's key.
    pub fn accepted(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let refuse = |why: &str| Err(Refusal::new(Kind::UpstreamUnavailable, why));
        if !single_token(headers, &header::UPGRADE, WEBSOCKET) {
            return refuse("upstream switched to a protocol other than the one asked for");
        }
        if !has_token(headers, &header::CONNECTION, "upgrade") {
            return refuse("upstream 101 without Connection: upgrade");
        }
        let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(v), None) if v.as_bytes() == self.accept.as_bytes() => Ok(()),
            _ => refuse("upstream 101 with a wrong Sec-WebSocket-Accept"),
        }
    }
}

/// Sets the headers that ask for (or, on the 101, confirm) the switch. They
/// are hop-by-hop, so customs removed the caller's and the upstream's own.
pub fn mark(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(WEBSOCKET));
}

/// Whether `name` is present once, holding exactly `token` (any case).
fn single_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(token.as_bytes()),
        _ => false,
    }
}

/// Whether any `name` line lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0")
}

/// The one `Sec-WebSocket-Key`, if it is base64 of 16 bytes (RFC 6455 §4.1).
fn websocket_key(headers: &HeaderMap) -> Option<&[u8]> {
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return None;
    };
    let key = key.as_bytes().trim_ascii();
    let decoded = BASE64.decode(key).ok()?;
    (decoded.len() == 16).then_some(key)
}

/// `base64(SHA-1(key + GUID))`, RFC 6455 §4.2.2. SHA-1 is what the protocol
/// mandates; it proves freshness here, not integrity.
fn accept_for(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(ACCEPT_GUID.as_bytes());
    BASE64.encode(ctx.finish())
}

/// A switch both sides agreed to, waiting for the 101 to reach the caller.
pub struct Pending {
    caller: OnUpgrade,
    upstream: OnUpgrade,
    idle: Duration,
    report: Report,
}

impl Pending {
    /// Joins the caller's side of `asked` with the upstream's upgrade.
    pub fn new(
        asked: Asked,
        upstream: OnUpgrade,
        rt: &Runtime,
        matched: &Matched<'_>,
        request_id: &str,
    ) -> Self {
        Pending {
            caller: asked.caller,
            upstream,
            idle: rt.config.limits.tunnel_idle_timeout,
            report: Report {
                metrics: rt.metrics.clone(),
                auditor: rt.auditor.clone(),
                integration: matched.integration.name.clone(),
                route: matched.route.id.clone(),
                request_id: request_id.to_string(),
            },
        }
    }

    /// Copies bytes both ways until a side closes or the tunnel idles. The
    /// listener drops this future on shutdown, which closes both sides.
    pub async fn run(self) {
        let (caller, upstream) = match tokio::try_join!(self.caller, self.upstream) {
            Ok(both) => both,
            Err(error) => {
                let id = &self.report.request_id;
                tracing::debug!(request_id = %id, %error, "upgrade did not complete");
                return;
            }
        };
        let meter = Meter::new();
        let mut caller = metered(TokioIo::new(caller), &meter, &meter.caller);
        let mut upstream = metered(TokioIo::new(upstream), &meter, &meter.upstream);
        // Reports on drop too: a shutdown drops this future mid-copy.
        let mut closed = Closed {
            report: &self.report,
            meter: &meter,
            why: "shutdown",
        };
        closed.why = tokio::select! {
            done = tokio::io::copy_bidirectional(&mut caller, &mut upstream) => match done {
                Ok(_) => "closed",
                Err(_) => "broken",
            },
            () = idle(&meter, self.idle) => "idle",
        };
    }
}

/// Where a tunnel's counts go when it closes.
struct Report {
    metrics: Arc<Metrics>,
    auditor: Auditor,
    integration: String,
    route: String,
    request_id: String,
}

/// Bytes and last activity of one tunnel.
struct Meter {
    start: Instant,
    /// Milliseconds from `start` to the last byte either way.
    last: AtomicU64,
    caller: Counts,
    upstream: Counts,
}

/// Bytes read from and written to one side.
#[derive(Default)]
struct Counts {
    read: AtomicU64,
    written: AtomicU64,
}

impl Meter {
    fn new() -> Self {
        Meter {
            start: Instant::now(),
            last: AtomicU64::new(0),
            caller: Counts::default(),
            upstream: Counts::default(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    fn last_activity(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// Resolves once no byte has moved for `limit`. Sleeps to the deadline and
/// looks again, rather than resetting a timer on every read.
async fn idle(meter: &Meter, limit: Duration) {
    loop {
        let deadline = meter.last_activity() + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Records the tunnel's end: a `tunnel_closed` event in the crossing log
/// (the crossing's own record was written at the 101, before a byte
/// crossed, so this is where the volume that went through is kept), its
/// bytes in `customs_bytes_total` (request = caller → upstream, response =
/// upstream → caller) and a log line.
struct Closed<'a> {
    report: &'a Report,
    meter: &'a Meter,
    why: &'static str,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        let m = self.meter;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let request = (load(&m.caller.read), load(&m.upstream.written));
        let response = (load(&m.upstream.read), load(&m.caller.written));
        let r = self.report;
        let seconds = m.start.elapsed().as_secs();
        r.metrics.tunnel_bytes(&r.integration, request, response);
        let event = Event::new("tunnel_closed", Some(r.integration.clone()))
            .with("route", r.route.as_str())
            .with("request_id", r.request_id.as_str())
            .with("bytes_to_upstream", request.1)
            .with("bytes_to_caller", response.1)
            .with("seconds", seconds)
            .with("why", self.why);
        if let Err(error) = r.auditor.event_now(event) {
            tracing::warn!(request_id = %r.request_id, %error, "tunnel end not recorded");
        }
        tracing::info!(
            request_id = %r.request_id,
            integration = %r.integration,
            bytes_to_upstream = request.1,
            bytes_to_caller = response.1,
            seconds,
            why = self.why,
            "tunnel closed"
        );
    }
}

/// One side of a tunnel: counts its bytes and notes activity.
struct Side<'a> {
    meter: &'a Meter,
    counts: &'a Counts,
}

impl Side<'_> {
    fn note(&self, counter: &AtomicU64, n: usize) {
        if n > 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
            self.meter.touch();
        }
    }
}

impl Observer for Side<'_> {
    fn read(&mut self, bytes: &[u8]) {
        self.note(&self.counts.read, bytes.len());
    }

    fn wrote(&mut self, n: usize) {
        self.note(&self.counts.written, n);
    }
}

/// `io` as one metered side of a tunnel.
fn metered<'a, T>(io: T, meter: &'a Meter, counts: &'a Counts) -> Observed<T, Side<'a>> {
    Observed::new(io, Side { meter, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("GET").uri("/ws");
        for (n, v) in lines {
            b = b.header(*n, *v);
        }
        b.body(()).expect("request")
    }

    const KEY: (&str, &str) = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    const UPGRADE: (&str, &str) = ("upgrade", "WebSocket");
    const CONNECTION: (&str, &str) = ("connection", "keep-alive, Upgrade");

    #[test]
    fn accept_matches_rfc_6455_example() {
        // RFC 6455 §1.3's worked example.
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_websocket_handshake_is_asked() {
        let mut req = request(&[UPGRADE, CONNECTION, KEY]);
        let asked = asked(&mut req).expect("valid handshake");
        let mut ok = HeaderMap::new();
        mark(&mut ok);
        ok.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        asked.accepted(&ok).expect("genuine 101");
        let mut wrong = ok.clone();
        wrong.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(asked.accepted(&wrong).is_err(), "other protocol");
        let mut forged = ok.clone();
        forged.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("bm9wZQ=="));
        assert!(asked.accepted(&forged).is_err(), "wrong accept");
        let mut bare = ok;
        bare.remove(header::CONNECTION);
        assert!(asked.accepted(&bare).is_err(), "no Connection: upgrade");
    }

    #[test]
    fn other_handshakes_are_refused() {
        let cases: [(&str, Vec<(&str, &str)>); 7] = [
            ("h2c", vec![("upgrade", "h2c"), CONNECTION, KEY]),
            ("list", vec![("upgrade", "websocket, h2c"), CONNECTION, KEY]),
            ("no connection", vec![UPGRADE, KEY]),
            ("no key", vec![UPGRADE, CONNECTION]),
            (
                "short key",
                vec![UPGRADE, CONNECTION, ("sec-websocket-key", "c2hvcnQ=")],
            ),
            (
                "body",
                vec![UPGRADE, CONNECTION, KEY, ("content-length", "5")],
            ),
            (
                "chunked",
                vec![UPGRADE, CONNECTION, KEY, ("transfer-encoding", "chunked")],
            ),
        ];
        for (case, lines) in cases {
            assert!(asked(&mut request(&lines)).is_err(), "{case}");
        }
        let mut post = request(&[UPGRADE, CONNECTION, KEY]);
        *post.method_mut() = Method::POST;
        assert!(asked(&mut post).is_err(), "POST");
        let mut old = request(&[UPGRADE, CONNECTION, KEY]);
        *old.version_mut() = Version::HTTP_10;
        assert!(asked(&mut old).is_err(), "HTTP/1.0");
    }
}
