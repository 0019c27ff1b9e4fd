use super::*;
use serde_json::json;

fn paths(doc: &Value) -> Vec<String> {
    let mut d = Distinct::default();
    let mut hashes = Vec::new();
    d.collect(doc, &mut hashes);
    let wanted: PathSet = hashes.iter().copied().collect();
    name(doc, &wanted, usize::MAX)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn members_are_wildcarded_paths_without_values() {
    let doc = json!({
        "incidents": [
            {"id": "SECRET-1", "customer": {"tier": "gold"}},
            {"id": "SECRET-2", "tags": ["a", "b"]}
        ],
        "n": 2
    });
    assert_eq!(
        paths(&doc),
        [
            "$['incidents']",
            "$['incidents'][*]['id']",
            "$['incidents'][*]['customer']",
            "$['incidents'][*]['customer']['tier']",
            "$['incidents'][*]['tags']",
            "$['n']",
        ]
    );
    assert_eq!(
        paths(&json!([{"a": 1}, [{"b": 2}]])),
        ["$[*]['a']", "$[*][*]['b']"]
    );
    assert!(paths(&json!("scalar")).is_empty());
}

#[test]
fn hashes_tell_nesting_and_arrays_apart() {
    let hashes = |doc: Value| {
        let mut out = Vec::new();
        Distinct::default().collect(&doc, &mut out);
        out
    };
    let nested = hashes(json!({"a": {"b": 1}}));
    let flat = hashes(json!({"ab": 1}));
    let in_array = hashes(json!({"a": [{"b": 1}]}));
    assert_eq!(nested.len(), 2);
    assert!(!flat.contains(&nested[1]));
    assert_ne!(nested[1], in_array[1]);
    // Same path, other values and positions: same hash.
    assert_eq!(in_array, hashes(json!({"a": [7, {"b": "x"}]})));
}

#[test]
fn distinct_paths_are_collected_once_per_body() {
    let mut d = Distinct::default();
    let mut out = Vec::new();
    d.collect(&json!({"a": 1, "b": 2}), &mut out);
    d.collect(&json!({"b": 3, "c": 4}), &mut out);
    assert_eq!(out.len(), 3, "b is not repeated across NDJSON lines");
    assert!(!d.truncated);
}

#[test]
fn collection_is_bounded_in_paths_and_depth() {
    let wide: serde_json::Map<String, Value> = (0..MAX_PATHS + 10)
        .map(|i| (format!("k{i}"), json!(i)))
        .collect();
    let mut d = Distinct::default();
    let mut out = Vec::new();
    d.collect(&Value::Object(wide), &mut out);
    assert_eq!(out.len(), MAX_PATHS);
    assert!(d.truncated);

    let mut deep = json!({"leaf": 1});
    for _ in 0..MAX_DEPTH + 5 {
        deep = json!({ "x": deep });
    }
    let mut d = Distinct::default();
    let mut out = Vec::new();
    d.collect(&deep, &mut out);
    assert_eq!(out.len(), MAX_DEPTH);
    assert!(d.truncated);
}

#[test]
fn naming_stops_at_the_limit_and_formats_only_wanted_paths() {
    let doc = json!({"a": 1, "b": {"c": 2}, "d": 3});
    let mut all = Vec::new();
    Distinct::default().collect(&doc, &mut all);
    let wanted: PathSet = [all[2], all[3]].into_iter().collect();
    let named = name(&doc, &wanted, 1);
    assert_eq!(named, [(all[2], "$['b']['c']".to_string())]);
    assert!(name(&doc, &PathSet::default(), 5).is_empty());
}

#[test]
fn quoted_names_are_escaped_like_unknown_fields() {
    assert_eq!(paths(&json!({"it's": 1})), ["$['it\\'s']"]);
}
