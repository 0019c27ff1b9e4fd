//! The request-target normaliser and query splitting on arbitrary text.
//!
//! Invariants: nothing panics; a normalised path is a fixed point and holds
//! none of what normalisation refuses; query filtering accounts for every
//! pair and keeps exactly the pairs it is asked to keep.
#![no_main]

use customs::proxy::uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Ok(norm) = uri::normalize_path(path) {
        check_normalized(&norm);
    }
    check_query(query);
});

fn check_normalized(norm: &str) {
    assert_eq!(
        uri::normalize_path(norm).as_deref(),
        Ok(norm),
        "not a fixed point"
    );
    assert!(norm.starts_with('/'));
    assert!(!norm.contains("//"), "empty segment kept");
    assert!(norm.is_ascii(), "raw non-ASCII kept");
    assert!(
        !norm
            .bytes()
            .any(|b| b.is_ascii_control() || b"\\;?# ".contains(&b)),
        "refused character kept"
    );
    for segment in norm.split('/') {
        assert!(
            segment.is_empty() || !segment.bytes().all(|b| b == b'.'),
            "dot segment kept"
        );
    }
    let lower = norm.to_ascii_lowercase();
    for escape in ["%2f", "%5c", "%3b", "%3f", "%23", "%2e", "%00"] {
        assert!(!lower.contains(escape), "{escape} kept");
    }
}

fn check_query(query: &str) {
    let pairs = uri::query_pairs(query);
    let (all, none_dropped) = uri::filter_query(query, &|_| true);
    assert_eq!(none_dropped, 0);
    let (nothing, dropped) = uri::filter_query(query, &|_| false);
    assert!(nothing.is_empty());
    assert_eq!(dropped, pairs.len(), "filtering miscounts pairs");
    // Keeping what was kept changes nothing.
    assert_eq!(uri::filter_query(&all, &|_| true), (all.clone(), 0));
    let odd = |name: &str| name.len() % 2 == 1;
    let (kept, dropped) = uri::filter_query(query, &odd);
    let expect_dropped = pairs.iter().filter(|(name, _)| !odd(name)).count();
    assert_eq!(dropped, expect_dropped);
    assert!(
        uri::query_pairs(&kept).iter().all(|(name, _)| odd(name)),
        "a dropped name survived filtering"
    );
    // Names only: as many pieces as pairs, each ending in `=` or being `*`.
    let elided = uri::elide_query(query, &|name| std::borrow::Cow::Borrowed(name));
    let raw_pieces = query.split(['&', ';']).filter(|p| !p.is_empty()).count();
    assert_eq!(raw_pieces, pairs.len());
    assert!(elided.len() <= query.len(), "elision grew the query");
    let elided_pieces: Vec<&str> = elided.split(['&', ';']).filter(|p| !p.is_empty()).collect();
    assert_eq!(elided_pieces.len(), pairs.len());
    assert!(
        elided_pieces.iter().all(|p| *p == "*" || p.ends_with('=')),
        "a value survived elision"
    );
}
