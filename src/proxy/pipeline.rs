//! The request path, top to bottom: framing guard → route → expiry →
//! identity → request policy → upstream → response policy → record. Every
//! stage either passes the crossing on or refuses it; a refusal sends nothing
//! further and answers with the JSON error of SPEC §2.3. A WebSocket
//! handshake on an `upgrade` route takes the same path; once its 101 is
//! recorded, the connection is handed to a [`tunnel`].

use super::auth::{self, Principal};
use super::body::{self, BodyError, Governed};
use super::budget::Charge;
use super::echo::{CREDENTIAL_ECHO, Echo, Holdback};
use super::error::{Kind, Refusal};
use super::listener::ConnInfo;
use super::stream::{self, ProxyBody, Streamed};
use super::trail::Trail;
use super::upload::{self, Begun, UpstreamBody, request_body_refusal};
use super::upstream::{self, Hop, REQUEST_ID};
use super::{Runtime, framing, headers, offload, route, tunnel, uri};
use crate::audit::redact;
use crate::config::{Config, OnFailure};
use crate::policy::Policy;
use crate::signals::{ShapeProbe, Side};
use bytes::Bytes;
use http::header::{self, CONTENT_ENCODING, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// The response type of every crossing: a body released whole, or a `pass`
/// body streamed (see [`stream`]).
pub type ProxyResponse = Response<ProxyBody>;

/// What a crossing answers, and the tunnel to open once the answer (a 101)
/// has been recorded and released.
type Crossed = (ProxyResponse, Option<tunnel::Pending>);

/// Handles one request; always answers, always records.
pub async fn handle(
    rt: Arc<Runtime>,
    conn: Arc<ConnInfo>,
    mut req: Request<Incoming>,
) -> ProxyResponse {
    framing::ignore_h2c_upgrade(req.headers_mut());
    let upgrade_asked = req.version() < Version::HTTP_2 && framing::wants_upgrade(&req);
    let mut trail = Trail::start(&req, &rt);
    let (mut response, tunnel) = match cross(&rt, &conn, req, &mut trail).await {
        Ok(crossed) => crossed,
        Err(refusal) => {
            let response = refusal.response(&trail.request_id).map(ProxyBody::from);
            trail.refused(refusal);
            (response, None)
        }
    };
    let mut response = match response.body_mut() {
        // A streamed body writes the record when it ends.
        ProxyBody::Streamed(body) => {
            body.attach(trail);
            response
        }
        ProxyBody::Whole(_) => trail.finish(&rt, response).await,
    };
    match tunnel {
        // Only a 101 whose record was written opens the tunnel.
        Some(tunnel) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            conn.hand_over(Box::pin(tunnel.run()));
        }
        // Nothing after an upgrade request is read as HTTP (see `sniff`):
        // without a switch, the connection ends with this answer.
        _ if upgrade_asked => {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

async fn cross(
    rt: &Runtime,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    trail: &mut Trail,
) -> Result<Crossed, Refusal> {
    framing::check(&req, conn)?;
    let path = uri::normalize_path(req.uri().path())
        .map_err(|e| Refusal::new(Kind::BadRequest, format!("path rejected: {e}")))?;
    trail.path = path.clone();
    let config = &rt.config;
    let mounted = route::mounted(config, &path)?;
    trail.mounted(mounted.index, mounted.integration);
    let found = route::find(mounted, req.method());
    if let Ok(matched) = &found {
        trail.matched(matched);
    }
    // Refused before authentication, a request still names the client its
    // credential identifies.
    let expired = rt.today() >= mounted.integration.expires;
    if expired || found.is_err() {
        let peer = conn.peer_cert.as_ref();
        if let Some(p) = auth::presented(mounted.integration, req.headers(), peer) {
            trail.principal(&p);
        }
    }
    // Past its end date, everything under the mount is refused, declared or not.
    if expired {
        return Err(Refusal::new(
            Kind::IntegrationExpired,
            "integration past its end date",
        ));
    }
    let matched = found?;
    let integration = matched.integration;
    let principal = authenticate(rt, conn, &req, &matched, trail)?;
    trail.principal(&principal);
    let upgrade = match (framing::wants_upgrade(&req), matched.route.upgrade) {
        (false, _) => None,
        (true, true) => Some(tunnel::asked(&mut req)?),
        (true, false) => {
            return Err(Refusal::new(
                Kind::BadRequest,
                "protocol upgrade not allowed on this route",
            ));
        }
    };
    if config.audit.on_failure == OnFailure::Refuse && !rt.auditor.healthy() {
        return Err(Refusal::new(Kind::AuditUnavailable, "audit log is failing"));
    }
    let credential = rt.credential(&matched)?;
    let echo = credential.as_ref().and_then(Echo::new);
    let (parts, body) = req.into_parts();
    let limits = config.limits;
    // Charges to the body budget are held until the crossing is answered.
    let (body, _request_charge, rewritten) =
        request_body(rt, &matched, &parts.headers, body, trail, upgrade.is_some()).await?;
    // Header and query rules apply only when enforced (monitor changes nothing).
    let request_policy = matched.route.request.as_deref().filter(|p| enforced(p));
    let forward_path = forward_path(&matched, &parts, request_policy);
    trail.path = forward_path.clone();
    let hop = Hop {
        peer_ip: conn.peer.ip().to_string(),
        proto: if conn.tls { "https" } else { "http" },
        host: host_of(&parts),
        request_id: &trail.request_id,
    };
    let (mut head, redacted) = upstream::request_head(
        &parts,
        &integration.upstream,
        &forward_path,
        &hop,
        request_policy,
        credential.as_ref(),
    )?;
    count_header_redactions(trail.request_side(), redacted);
    if let Some(h) = head.headers_mut() {
        prepare_request_headers(
            h,
            matched.route.response.is_some() || echo.is_some(),
            rewritten,
        );
        if upgrade.is_some() {
            tunnel::mark(h);
        }
    }
    let request = head
        .body(body)
        .map_err(|_| Refusal::new(Kind::BadRequest, "request cannot be forwarded"))?;
    let client = match upgrade {
        Some(_) => rt.upgrade_client(&matched).ok_or_else(|| {
            Refusal::new(
                Kind::UpstreamUnavailable,
                "no upgrade client for this integration",
            )
        })?,
        None => rt.client(&matched, conn.shard),
    };
    // Only a body no policy reads streams (the echo scan reads it as it goes).
    let reading = match (matched.route.response.is_some() || upgrade.is_some(), &echo) {
        (true, _) => upstream::Reading::Whole,
        (false, None) => upstream::Reading::Stream,
        (false, Some(_)) => upstream::Reading::StreamPlain,
    };
    let sent = std::time::Instant::now();
    let mut head_status = None;
    let answer = upstream::exchange(
        client,
        request,
        &limits,
        &rt.budget,
        upgrade.as_ref(),
        &mut head_status,
        reading,
    )
    .await;
    trail.upstream_elapsed = Some(sent.elapsed());
    trail.upstream_status = head_status;
    let mut answer = answer?;
    if let Some(incoming) = answer.streamed.take() {
        let counters = rt.meters(matched.index).map(|m| m.response_bytes());
        let scan = echo.map(Holdback::new);
        return Ok((
            streamed(answer, incoming, &limits, counters, scan, trail)?,
            None,
        ));
    }
    let switched = answer.switched.take();
    // Error bodies have shapes of their own: not the API's drift.
    let probe = (answer.status.is_success() && !answer.body.is_empty())
        .then(|| rt.signals.shape_probe(config, &matched, Side::Response))
        .flatten();
    let policy = matched.route.response.as_ref();
    let mut response = respond(rt, policy, answer, trail, probe, echo.as_ref()).await?;
    let tunnel = match (upgrade, switched) {
        (Some(asked), Some(upstream)) => {
            tunnel::mark(response.headers_mut());
            Some(tunnel::Pending::new(
                asked,
                upstream,
                rt,
                &matched,
                &trail.request_id,
            ))
        }
        _ => None,
    };
    Ok((response, tunnel))
}

fn enforced(policy: &Policy) -> bool {
    policy.mode == crate::policy::Mode::Enforce
}

/// Stage 4: the request body, governed whole by its policy, or — on a
/// `pass` direction of a route that does not upgrade — streamed when long
/// (see [`upload`]). Also whether the policy rewrote it, and its charge to
/// the body budget.
async fn request_body(
    rt: &Runtime,
    matched: &route::Matched<'_>,
    headers: &http::HeaderMap,
    body: Incoming,
    trail: &mut Trail,
    upgrades: bool,
) -> Result<(UpstreamBody, Charge, bool), Refusal> {
    let policy = matched.route.request.as_ref();
    let pass = policy.is_none() && !upgrades;
    let counters = rt.meters(matched.index).map(|m| m.request_bytes());
    let (limits, budget) = (&rt.config.limits, &rt.budget);
    let (raw, charge) = match upload::begin(headers, body, limits, budget, pass, counters).await? {
        Begun::Whole(raw, charge) => (raw, charge),
        Begun::Streamed(upload) => {
            trail.streams_upload(upload.progress());
            return Ok((UpstreamBody::Streamed(upload), Charge::default(), false));
        }
    };
    // Empty bodies are not governed (GETs): no shape, no signals lock.
    let probe = (!raw.is_empty())
        .then(|| rt.signals.shape_probe(&rt.config, matched, Side::Request))
        .flatten();
    let side = trail.request_side();
    let governed = govern(rt, matched.index, policy, headers, raw, side, probe)
        .await
        .map_err(|e| request_body_refusal(&e))?;
    let rewritten = governed.outcome.is_some();
    Ok((UpstreamBody::from(governed.body), charge, rewritten))
}

fn authenticate<'c>(
    rt: &'c Runtime,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    matched: &route::Matched<'c>,
    trail: &mut Trail,
) -> Result<Principal<'c>, Refusal> {
    auth::authenticate(
        matched.integration,
        &matched.route.id,
        req.headers(),
        conn.peer_cert.as_ref(),
        rt.today(),
    )
    .map_err(|failure| {
        trail.auth_failure = Some(failure.reason);
        if let Some(p) = &failure.presented {
            trail.principal(p);
        }
        failure.refusal
    })
}

/// Applies a direction's policy (or `pass`) to a body, recording it (and
/// its drift candidates when `probe` samples it). Large bodies are governed
/// on a policy thread ([`offload`]), so the shard goes on serving, in the
/// integration's `lane`.
async fn govern(
    rt: &Runtime,
    lane: usize,
    policy: Option<&Arc<Policy>>,
    headers: &http::HeaderMap,
    raw: Bytes,
    side: &mut crate::audit::record::Direction,
    probe: Option<ShapeProbe>,
) -> Result<Governed, BodyError> {
    side.bytes_in = raw.len() as u64;
    let (governed, probe) = match policy {
        None => (
            Ok(Governed {
                body: raw,
                outcome: None,
            }),
            probe,
        ),
        // A compressed body's size says nothing of the work it holds.
        Some(p) if raw.len() >= offload::OFFLOAD_MIN || headers.contains_key(CONTENT_ENCODING) => {
            let (p, headers, config) = (p.clone(), headers.clone(), rt.config.clone());
            let job = move || apply(&p, &headers, raw, &config, probe);
            let answer = rt.offload.run(lane, job).await;
            answer.unwrap_or_else(|| (Err(could_not_run()), None))
        }
        Some(p) => apply(p, headers, raw, &rt.config, probe),
    };
    // A refused body's record still says which rules acted, the refusing one too.
    if let (Some(p), Err(BodyError::Refused(_, outcome))) = (policy, &governed) {
        Trail::record_actions(side, p, outcome);
    }
    let governed = governed?;
    let named = probe.map(ShapeProbe::finish).unwrap_or_default();
    side.new_paths = named
        .into_iter()
        .map(|(hash, path)| (hash, redact::field_path(&path)))
        .collect();
    side.bytes_out = governed.body.len() as u64;
    if let (Some(p), Some(outcome)) = (policy, &governed.outcome) {
        Trail::record_actions(side, p, outcome);
    }
    Ok(governed)
}

/// Runs `policy` on a body, showing `probe` each parsed document. A policy
/// that panics (a bug) refuses its crossing, inline as on a policy thread.
fn apply(
    policy: &Policy,
    headers: &http::HeaderMap,
    raw: Bytes,
    config: &Config,
    mut probe: Option<ShapeProbe>,
) -> (Result<Governed, BodyError>, Option<ShapeProbe>) {
    let governed = catch_unwind(AssertUnwindSafe(|| {
        // Only a body the probe may sample is shown to it (and so parsed into a tree).
        let mut show = probe
            .as_mut()
            .filter(|p| p.due())
            .map(|p| |doc: &serde_json::Value| p.document(doc));
        body::govern(
            policy,
            headers,
            raw,
            &config.limits,
            config.hash_key.as_ref(),
            show.as_mut()
                .map(|f| f as &mut dyn FnMut(&serde_json::Value)),
        )
    }));
    match governed {
        Ok(governed) => (governed, probe),
        Err(_) => {
            tracing::error!(policy = %policy.name, "the policy panicked; the crossing is refused");
            (Err(could_not_run()), None)
        }
    }
}

fn could_not_run() -> BodyError {
    BodyError::Internal("the policy could not run".into())
}

fn response_body_refusal(e: &BodyError) -> Refusal {
    let detail = match e {
        BodyError::Overloaded => {
            return Refusal::new(
                Kind::Overloaded,
                "no room in max_buffered_bytes for the body",
            );
        }
        BodyError::TooLarge => "response body over max_body_bytes".to_string(),
        BodyError::Broken => "upstream body broke off".to_string(),
        BodyError::Unsupported(d)
        | BodyError::Malformed(d)
        | BodyError::Refused(d, _)
        | BodyError::Internal(d) => d.clone(),
    };
    Refusal::new(Kind::ResponseRefused, detail)
}

/// The path sent upstream, with the request policy's query rules applied.
fn forward_path(matched: &route::Matched<'_>, parts: &Parts, policy: Option<&Policy>) -> String {
    let mut path = matched.upstream_path();
    if let Some(query) = parts.uri.query() {
        let kept = match policy {
            Some(p) => uri::filter_query(query, &|name| p.query.keeps(name)).0,
            None => query.to_string(),
        };
        if !kept.is_empty() {
            path.push('?');
            path.push_str(&kept);
        }
    }
    path
}

fn host_of(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
}

/// `inspected`: the answer will be read, by a response policy or by the
/// credential-echo scan.
fn prepare_request_headers(h: &mut http::HeaderMap, inspected: bool, rewritten: bool) {
    if rewritten {
        headers::strip_body_digests(h);
    }
    // Ask for plain, whole bodies the response policy (and the echo scan)
    // can read as they are: no content coding, and no byte range (a slice of
    // a document can be a valid document that the rules, written for the
    // whole, never match; a slice can split an echoed credential).
    if inspected {
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        h.remove(header::RANGE);
        h.remove(header::IF_RANGE);
    }
}

/// Stage 6: the response policy, then the answer the caller gets.
async fn respond(
    rt: &Runtime,
    policy: Option<&Arc<Policy>>,
    answer: upstream::Answer,
    trail: &mut Trail,
    probe: Option<ShapeProbe>,
    echo: Option<&Echo>,
) -> Result<ProxyResponse, Refusal> {
    // A part of a document is not judged as if it were the document.
    if (policy.is_some() || echo.is_some()) && answer.status == http::StatusCode::PARTIAL_CONTENT {
        return Err(Refusal::new(
            Kind::ResponseRefused,
            "partial content under a response policy",
        ));
    }
    let mut headers = answer.headers;
    let lane = trail.lane();
    let side = trail.response_side();
    let governed = govern(rt, lane, policy, &headers, answer.body, side, probe)
        .await
        .map_err(|e| response_body_refusal(&e))?;
    if let Some(p) = policy.filter(|p| enforced(p)) {
        headers::apply_rules(&mut headers, &p.headers);
        if let Some(rules) = &p.header_redact {
            let redacted = headers::redact_values(&mut headers, rules);
            count_header_redactions(trail.response_side(), redacted);
        }
    }
    if governed.outcome.is_some() {
        headers::strip_body_digests(&mut headers);
    }
    let mut body = governed.body;
    if let Some(echo) = echo {
        let limit = rt.config.limits.max_body_bytes;
        guard_echo(
            echo,
            &mut headers,
            &mut body,
            governed.outcome.is_some(),
            trail,
            limit,
        )?;
    }
    if let Ok(id) = HeaderValue::from_str(&trail.request_id) {
        headers.insert(REQUEST_ID, id);
    }
    let mut response = Response::new(ProxyBody::from(Full::new(body)));
    *response.status_mut() = answer.status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The answer of a `pass` response: its head now, its body as it arrives.
fn streamed(
    answer: upstream::Answer,
    incoming: Incoming,
    limits: &crate::config::Limits,
    counters: Option<[prometheus::IntCounter; 2]>,
    scan: Option<Holdback>,
    trail: &mut Trail,
) -> Result<ProxyResponse, Refusal> {
    // A slice of a body can split an echoed credential (see `respond`).
    if scan.is_some() && answer.status == StatusCode::PARTIAL_CONTENT {
        return Err(Refusal::new(
            Kind::ResponseRefused,
            "partial content under the credential scan",
        ));
    }
    // A body declared too large is refused before anything is sent.
    if let (Some(max), Some(declared)) = (limits.max_pass_bytes, answer.declared)
        && declared > max
    {
        return Err(Refusal::new(
            Kind::ResponseRefused,
            "response body declared over limits.max_pass_bytes",
        ));
    }
    let bounds = stream::Bounds {
        max: limits.max_pass_bytes,
        idle: limits.stream_idle_timeout,
        declared: answer.declared,
    };
    let mut headers = answer.headers;
    if let Some(dropped) = scan.as_ref().map(|s| s.drop_headers(&mut headers))
        && dropped > 0
    {
        let side = trail.response_side();
        side.actions.insert(CREDENTIAL_ECHO.to_string(), dropped);
    }
    let body = Streamed::new(incoming, answer.status.as_u16(), bounds, counters, scan);
    let mut response = Response::new(ProxyBody::Streamed(Box::new(body)));
    *response.status_mut() = answer.status;
    *response.headers_mut() = headers;
    if let Ok(id) = HeaderValue::from_str(&trail.request_id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    Ok(response)
}

/// The injected credential never reaches the caller (see [`super::echo`]):
/// what was removed is counted in the record as `credential-echo`.
fn guard_echo(
    echo: &Echo,
    headers: &mut http::HeaderMap,
    body: &mut Bytes,
    rewritten: bool,
    trail: &mut Trail,
    limit: usize,
) -> Result<(), Refusal> {
    let scrubbed = echo.scrub(headers, body, rewritten, limit);
    let side = trail.response_side();
    if scrubbed.echoes > 0 {
        side.actions
            .insert(CREDENTIAL_ECHO.to_string(), scrubbed.echoes);
        side.bytes_out = body.len() as u64;
    }
    match scrubbed.refusal {
        Some(refusal) => {
            side.bytes_out = 0;
            Err(refusal)
        }
        None => Ok(()),
    }
}

fn count_header_redactions(side: &mut crate::audit::Direction, n: u64) {
    if n > 0 {
        side.actions.insert(headers::HEADER_REDACT.to_string(), n);
    }
}
