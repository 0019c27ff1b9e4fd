use super::*;

#[test]
fn baseline_is_an_ewma_and_empty_windows_decay_it() {
    let mut v = Volume {
        counts: [10, 1000, 0],
        ..Volume::default()
    };
    v.roll(1, 0.5);
    assert_eq!(v.counts, [0; 3]);
    assert_eq!(v.window, 1);
    assert!((v.base[0] - 5.0).abs() < 1e-9, "{:?}", v.base);
    // Two windows later: the closed one (empty) and one more empty one.
    v.roll(3, 0.5);
    assert!((v.base[0] - 1.25).abs() < 1e-9, "{:?}", v.base);
    // Going back in time (same window) changes nothing.
    v.counts[0] = 7;
    v.roll(3, 0.5);
    assert_eq!(v.counts[0], 7);
}

#[test]
fn a_signal_repeats_only_after_the_quiet_time() {
    let now = Instant::now();
    let quiet = Duration::from_secs(600);
    let mut next = None;
    assert!(allow(&mut next, now, quiet));
    assert!(!allow(&mut next, now + Duration::from_secs(599), quiet));
    assert!(allow(&mut next, now + quiet, quiet));
}

#[test]
fn seen_paths_are_keyed_by_integration_route_and_direction() {
    let mut state = State::default();
    if let Some(s) = seen_entry(&mut state, "a", "r", 1) {
        s.paths.insert("$.x".into());
    }
    let again = seen_entry(&mut state, "a", "r", 1).map(|s| s.paths.len());
    assert_eq!(again, Some(1));
    let other = seen_entry(&mut state, "a", "r", 0).map(|s| s.paths.len());
    assert_eq!(other, Some(0));
    assert!(seen_entry(&mut state, "a", "r", 2).is_none());
}

#[test]
fn shape_drift_is_reported_once_then_after_the_quiet_time() {
    let mut seen = Seen::default();
    let now = Instant::now();
    let quiet = Duration::from_secs(600);
    let side = Direction {
        new_paths: vec![(1, "$['a']".into()), (2, "$['b']".into())],
        ..Direction::default()
    };
    assert_eq!(seen.drift(&side, now, quiet), ["$['a']", "$['b']"]);
    assert!(seen.drift(&side, now, quiet).is_empty(), "marked as seen");
    let later = Direction {
        new_paths: vec![(2, "$['b']".into()), (3, "$['c']".into())],
        ..Direction::default()
    };
    assert!(seen.drift(&later, now, quiet).is_empty(), "quiet time");
    assert_eq!(seen.drift(&later, now + quiet, quiet), ["$['c']"]);
}

#[test]
fn drift_events_are_bounded_and_stop_when_memory_is_full() {
    let mut next = None;
    let now = Instant::now();
    let quiet = Duration::ZERO;
    assert_eq!(room(0, 0, &mut next, now, quiet), 0);
    assert!(next.is_none(), "nothing new does not start the quiet time");
    assert_eq!(room(100, 0, &mut next, now, quiet), MAX_EVENT_PATHS);
    assert_eq!(room(100, MAX_SEEN_PATHS - 3, &mut next, now, quiet), 3);
    assert_eq!(room(100, MAX_SEEN_PATHS, &mut next, now, quiet), 0);
}
