use super::*;
use serde_json::json;

const EVERY: Duration = Duration::from_secs(1);

/// Samples `docs` as one body at `now`; returns the drift candidates' paths.
fn sample(base: &Shared, warming: bool, now: Instant, docs: &[Value]) -> Vec<String> {
    let mut probe = ShapeProbe::new(base.clone(), EVERY, warming, now, true, None);
    for doc in docs {
        probe.document(doc);
    }
    probe.finish().into_iter().map(|(_, p)| p).collect()
}

#[test]
fn the_first_sample_is_learned_and_later_new_paths_are_drift() {
    let base = Shared::default();
    let t = Instant::now();
    let v1 = json!({"items": [{"id": 1, "name": "a"}]});
    assert!(sample(&base, false, t, std::slice::from_ref(&v1)).is_empty());
    assert_eq!(lock(&base).known.len(), 3);
    assert!(sample(&base, false, t + EVERY, &[v1]).is_empty());
    let v2 = json!({"items": [{"id": 1, "name": "a", "tier": {"level": 2}}]});
    let drift = sample(&base, false, t + 2 * EVERY, &[v2]);
    assert_eq!(
        drift,
        ["$['items'][*]['tier']", "$['items'][*]['tier']['level']"]
    );
    // Candidates are not learned by the probe: the signal marks what it reports.
    assert_eq!(lock(&base).known.len(), 3);
}

#[test]
fn warm_up_learns_silently_whatever_the_number_of_samples() {
    let base = Shared::default();
    let t = Instant::now();
    assert!(sample(&base, true, t, &[json!({"a": 1})]).is_empty());
    assert!(sample(&base, true, t + EVERY, &[json!({"a": 1, "b": 2})]).is_empty());
    assert!(sample(&base, false, t + 2 * EVERY, &[json!({"b": 2, "a": 1})]).is_empty());
    assert_eq!(lock(&base).known.len(), 2);
}

#[test]
fn one_body_per_interval_is_sampled_and_empty_bodies_take_no_turn() {
    let base = Shared::default();
    let t = Instant::now();
    assert!(sample(&base, false, t, &[]).is_empty(), "no document");
    assert!(sample(&base, false, t, &[json!({"a": 1})]).is_empty());
    assert_eq!(lock(&base).known.len(), 1, "the empty body left the turn");
    let new = [json!({"a": 1, "b": 2})];
    let half = EVERY / 2;
    assert!(sample(&base, false, t + half, &new).is_empty(), "skipped");
    assert_eq!(sample(&base, false, t + EVERY, &new), ["$['b']"]);
}

#[test]
fn ndjson_documents_are_one_sample_without_repeats() {
    let base = Shared::default();
    let t = Instant::now();
    assert!(sample(&base, false, t, &[json!({"a": 1})]).is_empty());
    let lines = [json!({"a": 1, "b": 1}), json!({"b": 2, "c": 3})];
    assert_eq!(
        sample(&base, false, t + EVERY, &lines),
        ["$['b']", "$['c']"]
    );
}

#[test]
fn drift_names_at_most_one_event_worth_and_learning_is_bounded() {
    let base = Shared::default();
    let t = Instant::now();
    assert!(sample(&base, false, t, &[json!({})]).is_empty());
    let wide: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
    let drift = sample(&base, false, t + EVERY, &[Value::Object(wide)]);
    assert_eq!(drift.len(), MAX_EVENT_PATHS);

    let mut full = Baseline::default();
    full.learn(0..(MAX_SEEN_PATHS as u64 + 10));
    assert_eq!(full.known.len(), MAX_SEEN_PATHS);
}
