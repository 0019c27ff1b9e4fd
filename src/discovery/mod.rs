//! Field-level data discovery (the workbench's "what crosses"): for each
//! integration, route and direction, the wildcarded paths seen in sampled
//! bodies, in how many bodies each appeared, its JSON types and how many of
//! its values each built-in detector matched. Never a value: key names go
//! through [`crate::audit::redact::key`] as in the crossing log (an e-mail
//! used as a key is `<email>`, an id `<key>`), and counts are all that is
//! kept.
//!
//! Bounded: at most [`MAX_ROUTES`] integration/route/direction entries,
//! [`MAX_FIELDS`] paths each (later paths are counted as `dropped_fields`),
//! [`MAX_DEPTH`] levels per body. Sampling: at most one body per entry per
//! interval (`signals.drift_sample`), decided before the body is parsed, so
//! unsampled bodies cost nothing. The store lives as long as the process
//! and survives reloads.

pub mod draft;

use crate::audit::redact;
use crate::policy::detect::{Detector, Redactor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Integration/route/direction entries kept.
pub const MAX_ROUTES: usize = 1024;
/// Paths kept per entry.
pub const MAX_FIELDS: usize = 1024;
/// Levels walked per body.
pub const MAX_DEPTH: usize = 32;

/// Which body of a crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The caller's body.
    Request = 0,
    /// The upstream's body.
    Response = 1,
}

impl Direction {
    /// `request` | `response`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// JSON types seen at a path, as bits.
const TYPES: [&str; 6] = ["object", "array", "string", "number", "boolean", "null"];

fn type_bit(v: &Value) -> u8 {
    1 << match v {
        Value::Object(_) => 0,
        Value::Array(_) => 1,
        Value::String(_) => 2,
        Value::Number(_) => 3,
        Value::Bool(_) => 4,
        Value::Null => 5,
    }
}

/// What is known of one path.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// Bodies in which the path appeared.
    pub bodies: u64,
    /// String values seen at the path.
    pub strings: u64,
    types: u8,
    /// Values at the path each detector matched, by [`Detector::ALL`] index.
    hits: [u64; Detector::ALL.len()],
    /// Values that were one match and nothing else (a card number, not a
    /// sentence holding one), by the same index.
    whole: [u64; Detector::ALL.len()],
}

impl Field {
    /// The JSON types seen, by name.
    pub fn types(&self) -> Vec<&'static str> {
        TYPES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.types & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Detector matches, by detector: values matched, values matched whole.
    pub fn hits(&self) -> impl Iterator<Item = (Detector, u64, u64)> + '_ {
        Detector::ALL
            .into_iter()
            .zip(self.hits.into_iter().zip(self.whole))
            .filter(|(_, (n, _))| *n > 0)
            .map(|(d, (n, w))| (d, n, w))
    }

    /// Whether values here were objects or arrays only.
    pub fn container_only(&self) -> bool {
        self.types & 0b11 != 0 && self.types & !0b11 == 0
    }
}

/// What is known of one integration, route and direction.
#[derive(Debug, Default)]
pub struct Fields {
    /// Sampled bodies.
    pub bodies: u64,
    /// Paths by wildcarded name (`$['a'][*]['b']`), in first-seen order.
    pub paths: Vec<(String, Field)>,
    index: HashMap<String, usize>,
    /// Paths not kept because the entry was full.
    pub dropped_fields: u64,
    next_sample: Option<Instant>,
}

type Entry = Arc<Mutex<Fields>>;

/// The discovery store: one per process, shared by every runtime.
#[derive(Default)]
pub struct Discovery {
    /// integration → route → [request, response]; looked up without allocating.
    entries: Mutex<HashMap<String, HashMap<String, [Entry; 2]>>>,
}

/// One redactor per detector, to count matches by kind; a detector that
/// cannot be built is left out (its column stays zero).
static KINDS: LazyLock<Vec<(usize, Redactor)>> = LazyLock::new(|| {
    Detector::ALL
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| Redactor::new(&[d], &[]).ok().map(|r| (i, r)))
        .collect()
});

fn detect(s: &str, field: &mut Field) {
    for (i, r) in KINDS.iter() {
        if let Some(found) = r.redact(s) {
            field.hits[*i] += 1;
            let text = found.text.trim();
            if text.starts_with('[') && text.ends_with(']') && found.count == 1 {
                field.whole[*i] += 1;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A body chosen for sampling: feed it every parsed document, then
/// [`Sample::finish`] it.
pub struct Sample {
    entry: Arc<Mutex<Fields>>,
    index: HashMap<String, usize>,
    found: Vec<(String, Field)>,
    dropped: u64,
}

impl Discovery {
    /// A sample when this entry's turn has come (at most one per `every`),
    /// else `None`. Cheap: one map lookup and a clock comparison.
    pub fn sample(
        &self,
        integration: &str,
        route: &str,
        direction: Direction,
        every: Duration,
        now: Instant,
    ) -> Option<Sample> {
        let entry = self.entry(integration, route, direction)?;
        {
            let mut fields = lock(&entry);
            if fields.next_sample.is_some_and(|t| now < t) {
                return None;
            }
            fields.next_sample = Some(now + every);
        }
        Some(Sample {
            entry,
            index: HashMap::new(),
            found: Vec::new(),
            dropped: 0,
        })
    }

    /// The entry of an integration, route and direction; allocates only the
    /// first time it is seen, `None` once [`MAX_ROUTES`] are known.
    fn entry(&self, integration: &str, route: &str, direction: Direction) -> Option<Entry> {
        let mut entries = lock(&self.entries);
        let side = direction as usize;
        if let Some(e) = entries.get(integration).and_then(|r| r.get(route)) {
            return Some(e[side].clone());
        }
        let known: usize = entries.values().map(HashMap::len).sum();
        if known >= MAX_ROUTES {
            return None;
        }
        let routes = entries.entry(integration.to_string()).or_default();
        Some(routes.entry(route.to_string()).or_default()[side].clone())
    }

    /// Every entry, sorted, as served at `/discovery`.
    pub fn report(&self) -> Vec<RouteReport> {
        let entries: Vec<(String, String, Direction, Entry)> = lock(&self.entries)
            .iter()
            .flat_map(|(integration, routes)| {
                routes.iter().flat_map(move |(route, sides)| {
                    [Direction::Request, Direction::Response]
                        .into_iter()
                        .map(move |d| {
                            (
                                integration.clone(),
                                route.clone(),
                                d,
                                sides[d as usize].clone(),
                            )
                        })
                })
            })
            .collect();
        let mut out: Vec<RouteReport> = entries
            .into_iter()
            .map(|(integration, route, direction, fields)| {
                let f = lock(&fields);
                RouteReport {
                    integration,
                    route,
                    direction,
                    bodies: f.bodies,
                    dropped_fields: f.dropped_fields,
                    fields: f
                        .paths
                        .iter()
                        .map(|(p, field)| FieldReport::of(p, field))
                        .collect(),
                }
            })
            .filter(|r| r.bodies > 0)
            .collect();
        out.sort_by(|a, b| {
            (&a.integration, &a.route, a.direction).cmp(&(&b.integration, &b.route, b.direction))
        });
        out
    }
}

impl Sample {
    /// Reads one document as received.
    pub fn document(&mut self, doc: &Value) {
        let mut path = String::from("$");
        self.node(doc, &mut path, 0);
    }

    fn node(&mut self, v: &Value, path: &mut String, depth: usize) {
        if depth > 0 {
            self.note(path, v);
        }
        if depth >= MAX_DEPTH {
            return;
        }
        let len = path.len();
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    path.push_str("['");
                    path.push_str(&redact::key(k));
                    path.push_str("']");
                    self.node(child, path, depth + 1);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                path.push_str("[*]");
                for child in items {
                    self.node(child, path, depth + 1);
                }
                path.truncate(len);
            }
            _ => {}
        }
    }

    fn note(&mut self, path: &str, v: &Value) {
        let i = match self.index.get(path) {
            Some(&i) => i,
            None if self.found.len() >= MAX_FIELDS => {
                self.dropped += 1;
                return;
            }
            None => {
                let i = self.found.len();
                self.index.insert(path.to_string(), i);
                self.found.push((path.to_string(), Field::default()));
                i
            }
        };
        let field = &mut self.found[i].1;
        field.types |= type_bit(v);
        if let Value::String(s) = v {
            field.strings += 1;
            detect(s, field);
        }
    }

    /// Adds what this body held to the store.
    pub fn finish(self) {
        let mut fields = lock(&self.entry);
        fields.bodies += 1;
        fields.dropped_fields += self.dropped;
        for (path, found) in self.found {
            let i = match fields.index.get(&path) {
                Some(&i) => i,
                None if fields.paths.len() >= MAX_FIELDS => {
                    fields.dropped_fields += 1;
                    continue;
                }
                None => {
                    let i = fields.paths.len();
                    fields.index.insert(path.clone(), i);
                    fields.paths.push((path, Field::default()));
                    i
                }
            };
            let field = &mut fields.paths[i].1;
            field.bodies += 1;
            field.strings += found.strings;
            field.types |= found.types;
            for (total, n) in field.hits.iter_mut().zip(found.hits) {
                *total += n;
            }
            for (total, n) in field.whole.iter_mut().zip(found.whole) {
                *total += n;
            }
        }
    }
}

/// One integration, route and direction, as served.
#[derive(Debug, Serialize, Deserialize)]
pub struct RouteReport {
    /// Integration name.
    pub integration: String,
    /// Route id.
    pub route: String,
    /// request | response.
    pub direction: Direction,
    /// Sampled bodies.
    pub bodies: u64,
    /// Paths not kept because the entry was full.
    pub dropped_fields: u64,
    /// Paths in first-seen order.
    pub fields: Vec<FieldReport>,
}

/// One path, as served.
#[derive(Debug, Serialize, Deserialize)]
pub struct FieldReport {
    /// Wildcarded path; data-like keys are placeholders.
    pub path: String,
    /// Bodies in which it appeared.
    pub bodies: u64,
    /// String values seen.
    pub strings: u64,
    /// JSON types seen.
    pub types: Vec<String>,
    /// Values each detector matched (detector name → count), only non-zero.
    pub detectors: BTreeMap<String, u64>,
    /// Of those, values that were the match and nothing else.
    pub whole_values: BTreeMap<String, u64>,
}

impl FieldReport {
    fn of(path: &str, f: &Field) -> FieldReport {
        FieldReport {
            path: path.to_string(),
            bodies: f.bodies,
            strings: f.strings,
            types: f.types().into_iter().map(String::from).collect(),
            detectors: f
                .hits()
                .map(|(d, n, _)| (d.name().to_string(), n))
                .collect(),
            whole_values: f
                .hits()
                .filter(|(_, _, w)| *w > 0)
                .map(|(d, _, w)| (d.name().to_string(), w))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observe(d: &Discovery, docs: &[Value], at: Instant) -> bool {
        let Some(mut s) = d.sample("acme", "incidents", Direction::Response, Duration::ZERO, at)
        else {
            return false;
        };
        for doc in docs {
            s.document(doc);
        }
        s.finish();
        true
    }

    #[test]
    fn paths_types_and_detector_hits_are_counted_per_body_without_values() {
        let d = Discovery::default();
        let now = Instant::now();
        let doc = json!({"incidents": [
            {"id": 7, "customer": {"cc": "4111 1111 1111 1111", "mail": "jane@example.com"}},
            {"id": "x", "customer": {"cc": "4012888888881881", "mail": null}},
        ], "jane.doe@example.com": true});
        assert!(observe(&d, std::slice::from_ref(&doc), now));
        assert!(observe(&d, &[doc], now));
        let report = d.report();
        assert_eq!(report.len(), 1);
        let r = &report[0];
        assert_eq!((r.bodies, r.direction.name()), (2, "response"));
        let field = |p: &str| r.fields.iter().find(|f| f.path == p).expect(p);
        let cc = field("$['incidents'][*]['customer']['cc']");
        assert_eq!((cc.bodies, cc.types.join(",")), (2, "string".to_string()));
        assert_eq!(cc.detectors.get("credit_card"), Some(&4));
        assert_eq!(cc.whole_values.get("credit_card"), Some(&4));
        let id = field("$['incidents'][*]['id']");
        assert_eq!(id.types.join(","), "string,number");
        assert_eq!(
            field("$['incidents'][*]['customer']['mail']")
                .detectors
                .get("email"),
            Some(&2)
        );
        assert_eq!(field("$['<email>']").types.join(","), "boolean");
        let text = serde_json::to_string(&report).expect("json");
        for value in ["4111", "jane", "example.com"] {
            assert!(!text.contains(value), "{value} in {text}");
        }
    }

    #[test]
    fn one_sample_per_interval_and_bounded_paths() {
        let d = Discovery::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(1);
        let take = |at| {
            d.sample("a", "r", Direction::Request, every, at)
                .map(Sample::finish)
                .is_some()
        };
        assert!(take(t0));
        assert!(!take(t0 + Duration::from_millis(500)));
        assert!(take(t0 + every));

        let wide: serde_json::Map<String, Value> = (0..MAX_FIELDS + 10)
            .map(|i| (format!("f{i}"), json!(1)))
            .collect();
        let mut s = d
            .sample("a", "wide", Direction::Request, every, t0)
            .expect("first sample");
        s.document(&Value::Object(wide));
        s.finish();
        let report = d.report();
        let wide = report.iter().find(|r| r.route == "wide").expect("wide");
        assert_eq!((wide.fields.len(), wide.dropped_fields), (MAX_FIELDS, 10));
    }
}
