//! Stage 5: the upstream exchange. Builds the request customs sends — its
//! own framing, no hop-by-hop or caller credential headers, the injected
//! credential, `X-Forwarded-*` and `X-Request-Id` — and bounds the whole
//! exchange, body included, by `upstream_timeout` (a streamed `pass` body:
//! the head only).

use super::auth::CREDENTIAL_HEADERS;
use super::body::{self, BodyError};
use super::budget::{Budget, Charge};
use super::client::UpstreamClient;
use super::error::{Kind, Refusal};
use super::headers;
use super::tunnel::Asked;
use super::upload::UpstreamBody;
use crate::config::{Limits, Upstream};
use crate::policy::Policy;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, Uri};

/// `X-Request-Id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers a caller may not set for the upstream: customs sets them itself.
const PROXY_SET: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "forwarded",
];

/// Headers that make common upstreams read another method or path than the
/// one routed (re-opening default deny), or another client address than the
/// one customs forwards in `X-Forwarded-For`. Never forwarded.
const NEVER_FORWARDED: [&str; 15] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-originating-ip",
];

/// Whether a caller's header is one customs owns or never forwards. Names
/// are compared with `_` read as `-`: CGI, WSGI and Rack map `X_Real_IP` and
/// `X-Real-IP` to the same variable.
fn is_withheld(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    let same = |h: &&str| {
        h.len() == name.len()
            && h.bytes()
                .zip(name)
                .all(|(h, n)| h == *n || (h == b'-' && *n == b'_'))
    };
    CREDENTIAL_HEADERS
        .iter()
        .chain(PROXY_SET.iter())
        .chain(NEVER_FORWARDED.iter())
        .any(same)
}

/// Facts about the caller's hop, for `X-Forwarded-*`.
#[derive(Debug, Clone)]
pub struct Hop<'a> {
    /// Caller IP.
    pub peer_ip: String,
    /// `http` or `https`.
    pub proto: &'static str,
    /// Host the caller asked for.
    pub host: Option<&'a str>,
    /// Request id.
    pub request_id: &'a str,
}

/// A response from the upstream: its head, and its body read whole or left to stream.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers, hop-by-hop removed.
    pub headers: HeaderMap,
    /// Body, at most `max_body_bytes`.
    pub body: Bytes,
    /// The body's bytes in the shared budget, held until the crossing is answered.
    pub charge: Charge,
    /// The upstream's side of a WebSocket switch (a checked 101 only).
    pub switched: Option<hyper::upgrade::OnUpgrade>,
    /// The body, unread, when it is to be streamed (a `pass` response).
    pub streamed: Option<hyper::body::Incoming>,
    /// The body's `Content-Length`, when the upstream framed it by length.
    pub declared: Option<u64>,
}

/// Builds the upstream request head from the caller's, minus everything
/// customs owns and whatever the request policy's header rules remove (and
/// with the values they redact: counted in the returned number), plus the
/// injected credential.
pub fn request_head(
    parts: &Parts,
    upstream: &Upstream,
    path_and_query: &str,
    hop: &Hop<'_>,
    policy: Option<&Policy>,
    credential: Option<&HeaderValue>,
) -> Result<(http::request::Builder, u64), Refusal> {
    let scheme = if upstream.https { "https" } else { "http" };
    let uri: Uri = format!("{scheme}://{}{path_and_query}", upstream.authority)
        .parse()
        .map_err(|_| Refusal::new(Kind::BadRequest, "path cannot be forwarded"))?;
    let mut headers = parts.headers.clone();
    headers::strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    let withheld: Vec<HeaderName> = headers.keys().filter(|n| is_withheld(n)).cloned().collect();
    for name in &withheld {
        headers.remove(name);
    }
    // The policy judges the caller's headers only: what customs adds below
    // (forwarding headers, request id, credential) is not the caller's to
    // filter, and an allow-list must not strip the injected credential.
    let mut redacted = 0;
    if let Some(p) = policy {
        headers::apply_rules(&mut headers, &p.headers);
        if let Some(rules) = &p.header_redact {
            redacted = headers::redact_values(&mut headers, rules);
        }
    }
    set(&mut headers, "x-forwarded-for", &hop.peer_ip);
    set(&mut headers, "x-forwarded-proto", hop.proto);
    if let Some(host) = hop.host {
        set(&mut headers, "x-forwarded-host", host);
    }
    set(&mut headers, "x-request-id", hop.request_id);
    if let (Some(inject), Some(value)) = (&upstream.inject, credential) {
        headers.insert(inject.header.clone(), value.clone());
    }
    let mut builder = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    Ok((builder, redacted))
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// How an answer's body may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Whole (governed, upgrades).
    Whole,
    /// Streamed when it is long or of unknown length (a `pass` response).
    Stream,
    /// As `Stream`, unless compressed (a `pass` response scanned for the
    /// injected credential).
    StreamPlain,
}

/// Sends the request and reads the whole answer within
/// `limits.upstream_timeout` — or, when `reading` lets it stream, only
/// its head: the body is then left in [`Answer::streamed`] for the caller
/// to forward as it arrives. A 101 is accepted only as the answer to
/// `upgrade`, the handshake the caller asked for; its connection is then in
/// [`Answer::switched`]. `head_status` gets the upstream's status as soon as
/// its head arrives, so the record has it even when the body then stalls
/// or breaks off.
pub async fn exchange(
    client: &UpstreamClient,
    request: Request<UpstreamBody>,
    limits: &Limits,
    budget: &Budget,
    upgrade: Option<&Asked>,
    head_status: &mut Option<u16>,
    reading: Reading,
) -> Result<Answer, Refusal> {
    let upload = request.body().progress();
    let sent = async {
        let mut answer = head(client, request, limits, upgrade, head_status).await?;
        match answer.streamed.take() {
            Some(incoming) if streams(reading, &answer, &incoming, limits) => {
                answer.streamed = Some(incoming);
                Ok(answer)
            }
            Some(incoming) => read_whole(answer, incoming, limits, budget).await,
            None => Ok(answer),
        }
    };
    // A streamed upload runs under the idle timeout; the upstream then has
    // `upstream_timeout` for its answer.
    let deadline = async {
        if let Some(upload) = &upload {
            upload.settled(limits.stream_idle_timeout).await?;
        }
        tokio::time::sleep(limits.upstream_timeout).await;
        Err(Refusal::new(Kind::UpstreamTimeout, "upstream timed out"))
    };
    let answer = tokio::select! {
        biased;
        answer = sent => answer,
        late = deadline => late,
    };
    // An upload that broke off is why the exchange failed.
    match (answer, upload.and_then(|u| u.failure())) {
        (Err(_), Some(broke)) => Err(broke),
        (answer, _) => answer,
    }
}

/// Whether a `pass` body streams: an empty one has nothing to stream, and
/// one declared within `max_body_bytes` is read whole as before, so that its
/// record is written before it is released (and a failing log refuses it).
fn streams(
    reading: Reading,
    answer: &Answer,
    incoming: &hyper::body::Incoming,
    limits: &Limits,
) -> bool {
    let coded = answer.headers.contains_key(header::CONTENT_ENCODING);
    let streamable = match reading {
        Reading::Whole => false,
        Reading::Stream => true,
        // The echo scan reads a compressed body whole, decoded.
        Reading::StreamPlain => !coded,
    };
    streamable
        && !hyper::body::Body::is_end_stream(incoming)
        && answer
            .declared
            .is_none_or(|n| n > limits.max_body_bytes as u64)
}

/// Sends the request and reads the answer's head; its body is left in
/// [`Answer::streamed`].
async fn head(
    client: &UpstreamClient,
    request: Request<UpstreamBody>,
    limits: &Limits,
    upgrade: Option<&Asked>,
    head_status: &mut Option<u16>,
) -> Result<Answer, Refusal> {
    let response: Response<hyper::body::Incoming> = client
        .request(request)
        .await
        .map_err(|e| request_failed(&e, limits))?;
    *head_status = Some(response.status().as_u16());
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return switched(response, upgrade);
    }
    let (parts, incoming) = response.into_parts();
    let mut headers = parts.headers;
    if headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Err(Refusal::new(
            Kind::UpstreamUnavailable,
            "upstream used a transfer coding other than chunked",
        ));
    }
    // Framing is read before the hop-by-hop headers go.
    let declared = declared_length(&headers);
    headers::strip_hop_by_hop(&mut headers);
    Ok(Answer {
        status: parts.status,
        headers,
        body: Bytes::new(),
        charge: Charge::default(),
        switched: None,
        streamed: Some(incoming),
        declared,
    })
}

/// Reads a body whole, within `max_body_bytes` and the shared budget.
async fn read_whole(
    mut answer: Answer,
    incoming: hyper::body::Incoming,
    limits: &Limits,
    budget: &Budget,
) -> Result<Answer, Refusal> {
    let (body, charge) = body::read(&answer.headers, incoming, limits.max_body_bytes, budget)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Refusal::new(Kind::ResponseRefused, "response body too large"),
            BodyError::Overloaded => Refusal::new(
                Kind::Overloaded,
                "no room in max_buffered_bytes for the body",
            ),
            _ => Refusal::new(Kind::UpstreamUnavailable, "upstream body broke off"),
        })?;
    (answer.body, answer.charge) = (body, charge);
    Ok(answer)
}

/// The body length the upstream declared, when its framing is by length.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why the upstream exchange failed before a response head was read. A
/// head with more fields than `limits.max_response_headers` (or larger than
/// hyper's buffer) is a refused response, named as such.
fn request_failed(e: &hyper_util::client::legacy::Error, limits: &Limits) -> Refusal {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return Refusal::new(
                Kind::ResponseRefused,
                format!(
                    "upstream response head too large: more than {} header fields (limits.max_response_headers) or over the head size limit",
                    limits.max_response_headers
                ),
            );
        }
        source = s.source();
    }
    Refusal::new(
        Kind::UpstreamUnavailable,
        format!("upstream request failed: {}", error_chain(e)),
    )
}

/// A 101: an upstream may switch protocols only when asked to, and only to
/// the protocol asked for, answering this very handshake.
fn switched(
    mut response: Response<hyper::body::Incoming>,
    upgrade: Option<&Asked>,
) -> Result<Answer, Refusal> {
    let Some(asked) = upgrade else {
        return Err(Refusal::new(
            Kind::UpstreamUnavailable,
            "unrequested 101 from upstream",
        ));
    };
    asked.accepted(response.headers())?;
    let upgraded = hyper::upgrade::on(&mut response);
    let mut headers = std::mem::take(response.headers_mut());
    headers::strip_hop_by_hop(&mut headers);
    Ok(Answer {
        status: StatusCode::SWITCHING_PROTOCOLS,
        headers,
        body: Bytes::new(),
        charge: Charge::default(),
        switched: Some(upgraded),
        streamed: None,
        declared: None,
    })
}

/// The error and its sources, for the audit detail (no payload data).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
