//! Header hygiene on an arbitrary header block (`name: value` per line).
//!
//! Invariants: nothing panics; no hop-by-hop header, none a `Connection`
//! header names and no body digest survives; header rules leave only names
//! they keep and count what they removed; redacted values hold nothing the
//! detectors would redact again.
#![no_main]

use customs::proxy::headers::{apply_rules, redact_values, strip_body_digests, strip_hop_by_hop};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];
const DIGESTS: [&str; 6] = [
    "content-encoding",
    "etag",
    "content-md5",
    "digest",
    "content-digest",
    "content-length",
];

fn header_map(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

fn connection_names(map: &HeaderMap) -> Vec<HeaderName> {
    map.get_all("connection")
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let original = header_map(data);
    let mut map = original.clone();
    strip_hop_by_hop(&mut map);
    for name in HOP_BY_HOP {
        assert!(!map.contains_key(name), "{name} crossed");
    }
    for name in connection_names(&original) {
        assert!(
            !map.contains_key(&name),
            "a header named in Connection crossed"
        );
    }
    let mut digests = original.clone();
    strip_body_digests(&mut digests);
    for name in DIGESTS {
        assert!(
            !digests.contains_key(name),
            "{name} kept after re-serialising"
        );
    }
    for policy in customs_fuzz::policies() {
        let mut ruled = map.clone();
        let removed = apply_rules(&mut ruled, &policy.headers);
        assert_eq!(
            removed,
            map.keys_len() - ruled.keys_len(),
            "removals miscounted"
        );
        assert!(ruled.keys().all(|name| policy.headers.keeps(name.as_str())));
        if let Some(rules) = &policy.header_redact {
            redact_values(&mut ruled, rules);
            let mut again = ruled.clone();
            assert_eq!(
                redact_values(&mut again, rules),
                0,
                "redacted value still holds data"
            );
        }
    }
});
