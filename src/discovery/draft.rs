//! `customs draft`: a policy file drafted from what discovery saw on one
//! integration, route and direction. An allow-list of the paths seen; a rule
//! at each path where detectors matched, by kind (cards and IBANs keep their
//! last four, e-mails hashed — replaced when no `secrets.hash_key` is set —,
//! other kinds replaced by their label; free text where a detector matched
//! only some values is redacted); a `redact` backstop; `mode: monitor`; and
//! a test built from synthetic values of the same shapes (never captured
//! data), whose expectation is what the draft itself does to them. Comments
//! say why each rule is there. The draft compiles and passes its own test
//! by construction, or [`draft`] fails.

use super::{Direction, FieldReport, RouteReport};
use crate::policy::detect::Detector;
use crate::policy::transform::HashKey;
use crate::policy::{self, Apply, Mode};
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::path::Path;

/// Why no draft could be made.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// Nothing was sampled for this route and direction yet.
    #[error("no body of {0} has been sampled yet: send traffic first (monitor mode is enough)")]
    NothingSeen(String),
    /// The draft does not compile or fails its test (a bug: please report).
    #[error("the drafted policy is not valid: {0}")]
    Invalid(String),
}

/// Share of a path's string values that must be one detector's match and
/// nothing else for the path to be treated as holding that kind of value
/// (else it is free text, and only the matches are redacted).
const WHOLE_SHARE: f64 = 0.9;

/// Detectors in the order a path's kind is chosen.
const PRIORITY: [Detector; 9] = [
    Detector::CreditCard,
    Detector::Iban,
    Detector::UsSsn,
    Detector::Email,
    Detector::Phone,
    Detector::Jwt,
    Detector::AwsAccessKey,
    Detector::PrivateKey,
    Detector::Ipv4,
];

/// One segment of a discovered path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    /// A key that looked like data (`<key>`, `<email>`): any member.
    AnyKey,
    /// Array elements.
    Elements,
}

/// What the draft does at one path.
#[derive(Debug, Clone, PartialEq)]
enum Treatment {
    KeepLastFour(Detector),
    Hash,
    Replace(Detector),
    Redact(Vec<Detector>),
}

/// Drafts the policy for `r`; `hash_key` says whether the config has
/// `secrets.hash_key` (without one, `hash` rules would not load).
pub fn draft(r: &RouteReport, hash_key: bool, today: &str) -> Result<String, DraftError> {
    let what = format!("{} / {} ({})", r.integration, r.route, r.direction.name());
    if r.bodies == 0 || r.fields.is_empty() {
        return Err(DraftError::NothingSeen(what));
    }
    let leaves = leaves(&r.fields);
    let mut text = header(r, &what, today);
    allow_list(&mut text, &leaves);
    rules(&mut text, &leaves, hash_key);
    let input = synthetic(&leaves);
    let expect = enforce(&text, &input)?;
    let _ = writeln!(
        text,
        "tests:\n  # Synthetic values of the shapes seen (never captured data); the expectation is\n  # what this draft does to them: edit both as you tighten the policy.\n  - name: the shapes seen, with synthetic values\n    input: {}\n    expect: {}",
        input, expect
    );
    check(&text)?;
    Ok(text)
}

/// The paths to name: every path except containers whose members were seen.
fn leaves(fields: &[FieldReport]) -> Vec<(Vec<Seg>, &FieldReport)> {
    let parsed: Vec<(Vec<Seg>, &FieldReport)> = fields
        .iter()
        .filter_map(|f| parse(&f.path).map(|p| (p, f)))
        .collect();
    let mut out: Vec<(Vec<Seg>, &FieldReport)> = Vec::new();
    for (path, f) in &parsed {
        let container = f.types.iter().all(|t| t == "object" || t == "array");
        let has_members = parsed
            .iter()
            .any(|(p, _)| p.len() > path.len() && p.starts_with(path));
        if (container && has_members) || out.iter().any(|(p, _)| p == path) {
            continue;
        }
        out.push((path.clone(), f));
    }
    out
}

/// Parses `$['a'][*]['<key>']` as discovery writes it.
fn parse(path: &str) -> Option<Vec<Seg>> {
    let mut rest = path.strip_prefix('$')?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            segs.push(Seg::Elements);
            rest = r;
        } else {
            let (name, r) = rest.strip_prefix("['")?.split_once("']")?;
            segs.push(if name.starts_with('<') {
                Seg::AnyKey
            } else {
                Seg::Key(name.to_string())
            });
            rest = r;
        }
    }
    Some(segs)
}

/// The path in RFC 9535 syntax: dot names where they are plain words.
fn jsonpath(segs: &[Seg]) -> String {
    let mut out = String::from("$");
    for s in segs {
        match s {
            Seg::Key(k) if plain(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Key(k) => {
                let _ = write!(out, "['{k}']");
            }
            Seg::AnyKey => out.push_str(".*"),
            Seg::Elements => out.push_str("[*]"),
        }
    }
    out
}

fn plain(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn header(r: &RouteReport, what: &str, today: &str) -> String {
    let name = format!("{}-{}-{}", r.integration, r.route, r.direction.name());
    format!(
        "# Drafted by `customs draft` on {today} from {} sampled bodies of {what}.\n\
         # Review every rule, then switch `mode` to enforce. Paths and counts come from\n\
         # discovery; no value was kept.\n\
         policy: {name}\n\
         description: Drafted for {what}\n\
         mode: monitor\n\
         body:\n",
        r.bodies
    )
}

fn allow_list(text: &mut String, leaves: &[(Vec<Seg>, &FieldReport)]) {
    text.push_str("  # Every path seen; anything else is dropped once enforced.\n  allow:\n");
    for (segs, f) in leaves {
        let _ = writeln!(
            text,
            "    - \"{}\"   # {}, in {} of the sampled bodies",
            jsonpath(segs),
            f.types.join("/"),
            f.bodies
        );
    }
    text.push_str("  unknown_fields: drop\n  rules:\n");
}

fn treatment(f: &FieldReport, hash_key: bool) -> Option<Treatment> {
    let count = |d: Detector, of: &std::collections::BTreeMap<String, u64>| {
        of.get(d.name()).copied().unwrap_or(0)
    };
    let found: Vec<Detector> = PRIORITY
        .into_iter()
        .filter(|d| count(*d, &f.detectors) > 0)
        .collect();
    // The kind of value a path holds: the detector that matched most values whole.
    let kind = PRIORITY
        .into_iter()
        .rev() // max_by_key keeps the last of equals: the first in PRIORITY
        .max_by_key(|d| count(*d, &f.whole_values))
        .filter(|d| count(*d, &f.whole_values) > 0)
        .or(found.first().copied())?;
    let share = count(kind, &f.whole_values) as f64 / f.strings.max(1) as f64;
    let whole = share >= WHOLE_SHARE;
    Some(match kind {
        _ if !whole => Treatment::Redact(found),
        Detector::CreditCard | Detector::Iban => Treatment::KeepLastFour(kind),
        Detector::Email if hash_key => Treatment::Hash,
        other => Treatment::Replace(other),
    })
}

fn rules(text: &mut String, leaves: &[(Vec<Seg>, &FieldReport)], hash_key: bool) {
    let mut groups: Vec<(Treatment, Vec<(String, &FieldReport)>)> = Vec::new();
    for (segs, f) in leaves {
        let Some(t) = treatment(f, hash_key) else {
            continue;
        };
        let entry = (jsonpath(segs), *f);
        match groups.iter_mut().find(|(g, _)| *g == t) {
            Some((_, paths)) => paths.push(entry),
            None => groups.push((t, vec![entry])),
        }
    }
    for (t, paths) in &groups {
        for (path, f) in paths {
            let found: Vec<String> = f
                .detectors
                .iter()
                .map(|(d, n)| {
                    let whole = f.whole_values.get(d).copied().unwrap_or(0);
                    format!("{d} matched {n} ({whole} entirely)")
                })
                .collect();
            let _ = writeln!(
                text,
                "    # {path}: of {} string values, {}",
                f.strings,
                found.join(", ")
            );
        }
        let list: Vec<String> = paths.iter().map(|(p, _)| format!("\"{p}\"")).collect();
        let list = list.join(", ");
        let _ = match t {
            Treatment::KeepLastFour(d) => writeln!(
                text,
                "    - {{ id: {}-last-four, mask: [{list}], keep_last: 4 }}   # enough to recognise, not to use",
                d.name().replace('_', "-")
            ),
            Treatment::Hash => writeln!(
                text,
                "    - {{ id: email-pseudonym, hash: [{list}] }}   # stable pseudonym: joins still work"
            ),
            Treatment::Replace(d) => writeln!(
                text,
                "    - {{ id: {}-replaced, replace: [{list}], with: \"[{}]\" }}",
                d.name().replace('_', "-"),
                d.label()
            ),
            Treatment::Redact(ds) => {
                let names: Vec<&str> = ds.iter().map(|d| d.name()).collect();
                writeln!(
                    text,
                    "    - {{ id: text-{}, redact: [{list}], detectors: [{}] }}   # free text: only the matches go",
                    names.join("-").replace('_', "-"),
                    names.join(", ")
                )
            }
        };
    }
    text.push_str(
        "    # Last: every detector over every string, number and key the rules above left.\n    - { id: backstop, redact: [] }\n",
    );
}

/// A document with each leaf path holding a synthetic value of its shape.
fn synthetic(leaves: &[(Vec<Seg>, &FieldReport)]) -> Value {
    let mut doc = Value::Object(Map::new());
    for (segs, f) in leaves {
        insert(&mut doc, segs, sample_value(f));
    }
    doc
}

fn insert(node: &mut Value, segs: &[Seg], leaf: Value) {
    let Some((first, rest)) = segs.split_first() else {
        if node.is_null() || (node.as_object().is_some_and(Map::is_empty) && !leaf.is_object()) {
            *node = leaf;
        }
        return;
    };
    let child = match first {
        Seg::Elements => {
            if !node.is_array() {
                *node = json!([null]);
            }
            node.as_array_mut().and_then(|a| a.first_mut())
        }
        Seg::Key(_) | Seg::AnyKey => {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let key = match first {
                Seg::Key(k) => k.clone(),
                _ => "k1".to_string(),
            };
            node.as_object_mut()
                .map(|m| m.entry(key).or_insert(Value::Null))
        }
    };
    if let Some(child) = child {
        insert(child, rest, leaf);
    }
}

fn sample_value(f: &FieldReport) -> Value {
    let kind = PRIORITY
        .into_iter()
        .find(|d| f.detectors.get(d.name()).is_some_and(|n| *n > 0));
    let pii = |d: Detector| match d {
        Detector::CreditCard => "4111 1111 1111 1111",
        Detector::Iban => "DE89 3704 0044 0532 0130 00",
        Detector::UsSsn => "078-05-1120",
        Detector::Email => "jane.doe@example.com",
        Detector::Phone => "+1 415 555 0134",
        Detector::Ipv4 => "192.0.2.10",
        _ => "synthetic-secret",
    };
    match (f.types.first().map(String::as_str), kind) {
        (Some("string"), Some(d)) => json!(pii(d)),
        (Some("string"), None) => json!("text"),
        (Some("number"), _) => json!(1),
        (Some("boolean"), _) => json!(true),
        (Some("object"), _) => json!({}),
        (Some("array"), _) => json!([]),
        _ => Value::Null,
    }
}

/// What the draft (without tests) does to `input`, enforced, with the test key.
fn enforce(text: &str, input: &Value) -> Result<Value, DraftError> {
    let p = policy::compile(Path::new("draft"), text)
        .map_err(|d| DraftError::Invalid(crate::diag::Diagnostics(d).to_string()))?;
    let key = HashKey::new(policy::TEST_HASH_KEY);
    let how = Apply {
        hash_key: Some(&key),
        report: false,
    };
    let mut doc = input.clone();
    p.apply_in(Mode::Enforce, &mut doc, &how)
        .map_err(|e| DraftError::Invalid(e.to_string()))?;
    Ok(doc)
}

fn check(text: &str) -> Result<(), DraftError> {
    let p = policy::compile(Path::new("draft"), text)
        .map_err(|d| DraftError::Invalid(crate::diag::Diagnostics(d).to_string()))?;
    match policy::run_tests(&p).1.first() {
        Some(f) => Err(DraftError::Invalid(format!("{}: {}", f.name, f.message))),
        None => Ok(()),
    }
}

impl Direction {
    /// `request` | `response` (a CLI argument).
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "request" => Some(Direction::Request),
            "response" => Some(Direction::Response),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{Direction, Discovery};
    use std::time::{Duration, Instant};

    fn seen(docs: &[Value]) -> RouteReport {
        let d = Discovery::default();
        let t0 = Instant::now();
        for (i, doc) in docs.iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            let mut s = d
                .sample(
                    "acme-soc",
                    "incidents",
                    Direction::Response,
                    Duration::from_secs(1),
                    at,
                )
                .expect("sample");
            s.document(doc);
            s.finish();
        }
        d.report().pop().expect("one route")
    }

    #[test]
    fn the_draft_masks_what_was_seen_passes_its_test_and_keeps_no_value() {
        let docs: Vec<Value> = (0..3)
            .map(|i| {
                json!({"incidents": [{
                    "id": i,
                    "customer": {"cc": "4012 8888 8888 1881", "mail": format!("user{i}@corp.example"), "ssn": "219-09-9999"},
                    "note": if i == 0 { "call bob@corp.example" } else { "nothing here" },
                    "open": true
                }]})
            })
            .collect();
        let r = seen(&docs);
        let text = draft(&r, true, "2026-12-08").expect("draft");
        assert!(text.contains("mode: monitor"), "{text}");
        assert!(
            text.contains("mask: [\"$.incidents[*].customer.cc\"], keep_last: 4"),
            "{text}"
        );
        assert!(
            text.contains("hash: [\"$.incidents[*].customer.mail\"]"),
            "{text}"
        );
        assert!(
            text.contains("replace: [\"$.incidents[*].customer.ssn\"], with: \"[US_SSN]\""),
            "{text}"
        );
        assert!(
            text.contains("redact: [\"$.incidents[*].note\"], detectors: [email]"),
            "{text}"
        );
        assert!(text.contains("- { id: backstop, redact: [] }"), "{text}");
        for captured in ["4012", "corp.example", "219-09"] {
            assert!(!text.contains(captured), "{captured} in\n{text}");
        }
        // Enforced on the same traffic, nothing planted crosses.
        let p = policy::compile(Path::new("d"), &text).expect("compiles");
        let key = HashKey::new(policy::TEST_HASH_KEY);
        let how = Apply {
            hash_key: Some(&key),
            report: false,
        };
        for doc in &docs {
            let mut out = doc.clone();
            p.apply_in(Mode::Enforce, &mut out, &how).expect("applies");
            let s = out.to_string();
            for planted in ["4012 8888 8888 1881", "corp.example", "219-09-9999"] {
                assert!(!s.contains(planted), "{planted} in {s}");
            }
        }
    }

    #[test]
    fn without_a_hash_key_e_mails_are_replaced_and_nothing_seen_is_an_error() {
        let r = seen(&[json!({"mail": "a@corp.example", "keyed": {"jane@corp.example": 1}})]);
        let text = draft(&r, false, "2026-12-08").expect("draft");
        assert!(
            text.contains("replace: [\"$.mail\"], with: \"[EMAIL]\""),
            "{text}"
        );
        assert!(
            text.contains("\"$.keyed.*\""),
            "a data-like key is any member: {text}"
        );
        assert!(!text.contains("hash:"), "{text}");
        let empty = RouteReport {
            integration: "a".into(),
            route: "r".into(),
            direction: Direction::Request,
            bodies: 0,
            dropped_fields: 0,
            fields: Vec::new(),
        };
        assert!(matches!(
            draft(&empty, true, "x"),
            Err(DraftError::NothingSeen(_))
        ));
    }
}
