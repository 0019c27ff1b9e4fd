//! Stage 0: request framing guards. hyper accepts several ambiguous framings
//! as they are; an upstream or a front proxy may read them differently, so
//! customs rejects them with 400 and closes the connection (attacks.md §A).

use super::error::{Kind, Refusal};
use super::listener::ConnInfo;
use super::sniff::{Verdict, only_h2c};
use http::{HeaderMap, Method, Request, Version, header};

/// Rejects requests whose framing or authority is ambiguous.
pub fn check<B>(req: &Request<B>, conn: &ConnInfo) -> Result<(), Refusal> {
    let bad = |detail: &str| Err(Refusal::new(Kind::BadRequest, detail).closing());
    if let Verdict::Reject(why) = conn.framing.take() {
        return bad(why);
    }
    let te: Vec<_> = req
        .headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .collect();
    if te.len() > 1
        || te
            .iter()
            .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"))
    {
        return bad("transfer-encoding other than a single chunked");
    }
    let hosts: Vec<_> = req.headers().get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        return bad("several Host headers");
    }
    if req.version() == Version::HTTP_11 && hosts.is_empty() {
        return bad("HTTP/1.1 request without Host");
    }
    if let (Some(authority), Some(host)) = (req.uri().authority(), hosts.first())
        && !authority
            .as_str()
            .eq_ignore_ascii_case(host.to_str().unwrap_or_default())
    {
        return bad("request target authority differs from Host");
    }
    // Userinfo (`user@host`) in `:authority` or Host is deprecated (RFC 9110
    // §4.2.4) and a credential on the way to logs and upstream routing.
    let host_text = hosts.first().map(|h| h.as_bytes()).unwrap_or_default();
    let authority = req.uri().authority().map(|a| a.as_str().as_bytes());
    if host_text.contains(&b'@') || authority.unwrap_or_default().contains(&b'@') {
        return bad("userinfo in the request authority");
    }
    // A tunnel cannot be inspected; TRACE is refused unless a route declares it.
    if req.method() == Method::CONNECT {
        return bad("CONNECT is not proxied");
    }
    Ok(())
}

/// Whether the caller asks to switch protocols (WebSocket and the like).
pub fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        || req.extensions().get::<hyper::ext::Protocol>().is_some()
}

/// Like nginx, ignores an upgrade to h2c (`Upgrade: h2c` with
/// `HTTP2-Settings`, as `curl --http2` sends on plain HTTP): its headers are
/// removed and the request is answered in HTTP/1.1. h2c with prior
/// knowledge (the preface) still speaks HTTP/2.
pub fn ignore_h2c_upgrade(headers: &mut HeaderMap) {
    let upgrades = headers.get_all(header::UPGRADE);
    if upgrades.iter().next().is_some() && upgrades.iter().all(|v| only_h2c(v.as_bytes())) {
        headers.remove(header::UPGRADE);
        headers.remove("http2-settings");
    }
}
