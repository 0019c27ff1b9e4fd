//! Header hygiene on both legs: hop-by-hop headers (and those a `Connection`
//! header names) never cross, framing is always recomputed by customs, and
//! policy header rules decide the rest.

use crate::policy::headers::HeaderRedact;
use crate::policy::names::NameFilter;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

/// Removed on every hop (RFC 9110 §7.6.1, including the non-standard
/// `Proxy-Connection` it names and HTTP/2's `HTTP2-Settings`), plus framing
/// headers customs recomputes itself.
const HOP_BY_HOP: [HeaderName; 11] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("http2-settings"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

/// Headers that describe the exact bytes of a body; invalid once a policy
/// re-serialises it.
const BODY_DIGESTS: [HeaderName; 5] = [
    header::CONTENT_ENCODING,
    header::ETAG,
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("digest"),
    HeaderName::from_static("content-digest"),
];

/// Removes hop-by-hop headers, including every header named in
/// `Connection`. Run this before customs adds its own headers, so a
/// `Connection` header cannot make customs drop them.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        // Tokens are read from the raw bytes: a value that is not visible
        // ASCII (obs-text, which hyper accepts) must not hide the names beside it.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes headers that no longer hold after the body was re-serialised.
pub fn strip_body_digests(headers: &mut HeaderMap) {
    for name in &BODY_DIGESTS {
        headers.remove(name);
    }
    headers.remove(header::CONTENT_LENGTH);
}

/// Applies a policy's header rules; returns how many headers were removed.
pub fn apply_rules(headers: &mut HeaderMap, rules: &NameFilter) -> usize {
    if matches!(rules, NameFilter::KeepAll) {
        return 0;
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| !rules.keeps(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// Rule id under which a record counts header values redacted by detectors.
pub const HEADER_REDACT: &str = "header-redact";

/// Redacts the values of the headers `rules` covers: each detected span
/// becomes `[LABEL]`; a value that is not text cannot be scanned and is
/// removed. Returns how many values changed.
pub fn redact_values(headers: &mut HeaderMap, rules: &HeaderRedact) -> u64 {
    let covered: Vec<HeaderName> = headers
        .keys()
        .filter(|name| rules.covers(name.as_str()))
        .cloned()
        .collect();
    let mut changed = 0;
    for name in covered {
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        let mut kept = Vec::with_capacity(values.len());
        for value in values {
            let redacted = match value.to_str().map(|text| rules.redactor.redact(text)) {
                Ok(None) => {
                    kept.push(value);
                    continue;
                }
                Ok(Some(found)) => HeaderValue::from_str(&found.text).ok(),
                Err(_) => None,
            };
            changed += 1;
            kept.extend(redacted);
        }
        headers.remove(&name);
        for value in kept {
            headers.append(name.clone(), value);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn obs_text_in_connection_does_not_hide_names() {
        let mut h = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"x-secret, \xff").expect("obs-text is valid");
        h.insert(header::CONNECTION, value);
        h.insert("x-secret", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }
}
