//! Policies as YAML text: every action, `..`, `*`, unions, indices and slices, filters,
//! allow-lists with each `unknown_fields`, `exact_names`, `embedded_json`, both modes.

use proptest::prelude::*;

/// Names rule paths select: some match [`super::KEYS`] exactly, some only once folded.
const NAMES: [&str; 18] = [
    "ssn",
    "SSN",
    "ｓｓｎ",
    "email",
    "Email",
    "card_number",
    "password",
    "name",
    "id",
    "items",
    "meta",
    "note",
    "data",
    "user",
    "caf\u{e9}",
    "file",
    "k",
    "a\"b",
];

const DETECTORS: [&str; 9] = [
    "email",
    "credit_card",
    "iban",
    "us_ssn",
    "phone",
    "ipv4",
    "jwt",
    "aws_access_key",
    "private_key",
];

/// Values a `replace` rule writes (YAML flow text).
const WITH: [&str; 6] = [
    "'***'",
    "null",
    "0",
    "{\"x\": [1, null, \"é\"]}",
    "true",
    "\"q\\\"u/o\\u00e9\"",
];

/// A generated policy and what the stream engine may leave to the tree engine.
#[derive(Debug, Clone)]
pub struct GenPolicy {
    pub yaml: String,
    /// Some path has a filter selector.
    pub filters: bool,
    /// Some path has a negative index or a negative slice step.
    pub negative: bool,
    /// Some rule hashes (needs the key).
    pub hashes: bool,
    /// `mode: monitor`.
    pub monitor: bool,
}

/// One path segment and what it uses.
#[derive(Debug, Clone)]
struct Segment {
    text: String,
    filter: bool,
    negative: bool,
}

impl Segment {
    fn plain(text: String) -> Segment {
        Segment {
            text,
            filter: false,
            negative: false,
        }
    }
}

/// A name as a JSONPath name selector, in a double-quoted literal (safe inside YAML single
/// quotes).
fn quoted(name: &str) -> String {
    serde_json::to_string(name).expect("a string serialises")
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&NAMES[..])
}

fn segment() -> impl Strategy<Value = Segment> {
    let index = -2i32..3;
    prop_oneof![
        6 => name().prop_map(|n| Segment::plain(format!("[{}]", quoted(n)))),
        8 => name().prop_map(|n| Segment::plain(format!("..[{}]", quoted(n)))),
        1 => "[a-z]{1,5}".prop_map(|n| Segment::plain(format!(".{n}"))),
        2 => Just(Segment::plain("[*]".into())),
        1 => Just(Segment::plain(".*".into())),
        1 => Just(Segment::plain("..*".into())),
        2 => index.clone().prop_map(|i| Segment {
            text: format!("[{i}]"),
            filter: false,
            negative: i < 0,
        }),
        1 => (0i32..3, 0i32..4, prop::sample::select(&[1i32, 2, -1][..])).prop_map(|(a, b, s)| {
            Segment {
                text: format!("[{a}:{b}:{s}]"),
                filter: false,
                negative: s < 0,
            }
        }),
        2 => (name(), name()).prop_map(|(a, b)| {
            Segment::plain(format!("[{},{}]", quoted(a), quoted(b)))
        }),
        1 => (index.clone(), index).prop_map(|(a, b)| Segment {
            text: format!("[{a},{b}]"),
            filter: false,
            negative: a < 0 || b < 0,
        }),
        1 => prop::sample::select(&["[?@.id > 1]", "[?@.name == 'x']", "[?@.ssn]"][..])
            .prop_map(|f| Segment {
                text: f.to_string(),
                filter: true,
                negative: false,
            }),
    ]
}

/// A path, and whether it uses a filter or a negative index.
fn path() -> impl Strategy<Value = (String, bool, bool)> {
    prop::collection::vec(segment(), 1..3).prop_map(|segs| {
        let text = segs.iter().fold("$".to_string(), |p, s| p + &s.text);
        let filter = segs.iter().any(|s| s.filter);
        let negative = segs.iter().any(|s| s.negative);
        (format!("'{}'", text.replace('\'', "''")), filter, negative)
    })
}

/// A rule as one YAML flow mapping (without its id), with its path flags.
#[derive(Debug, Clone)]
struct GenRule {
    body: String,
    filter: bool,
    negative: bool,
    hashes: bool,
}

fn paths() -> impl Strategy<Value = (String, bool, bool)> {
    prop::collection::vec(path(), 1..3).prop_map(|ps| {
        let list = ps
            .iter()
            .map(|p| p.0.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let filter = ps.iter().any(|p| p.1);
        let negative = ps.iter().any(|p| p.2);
        (format!("[{list}]"), filter, negative)
    })
}

fn action() -> impl Strategy<Value = (String, bool)> {
    let mask_opts = (
        prop::option::of(0usize..3),
        prop::option::of(0usize..5),
        prop::sample::select(&["", ", char: '#'", ", char: 'é'"][..]),
    )
        .prop_map(|(first, last, ch)| {
            let mut opts = String::new();
            if let Some(n) = first {
                opts += &format!(", keep_first: {n}");
            }
            if let Some(n) = last {
                opts += &format!(", keep_last: {n}");
            }
            opts + ch
        });
    let detectors = prop::option::of(prop::sample::subsequence(&DETECTORS[..], 1..4));
    let redact_opts = (detectors, any::<bool>()).prop_map(|(ds, pattern)| {
        let mut opts = String::new();
        if let Some(ds) = ds {
            opts += &format!(", detectors: [{}]", ds.join(", "));
        }
        if pattern {
            opts += ", patterns: { ticket: 'T-[0-9]{3}' }";
        }
        opts
    });
    prop_oneof![
        3 => Just(("drop".to_string(), String::new())),
        3 => mask_opts.prop_map(|o| ("mask".to_string(), o)),
        2 => prop::sample::select(&WITH[..]).prop_map(|w| ("replace".to_string(), format!(", with: {w}"))),
        2 => Just(("hash".to_string(), String::new())),
        3 => redact_opts.prop_map(|o| ("redact".to_string(), o)),
        2 => Just(("refuse".to_string(), String::new())),
    ]
    .prop_map(|(verb, opts)| (format!("{verb}: PATHS{opts}"), verb == "hash"))
}

fn rule() -> impl Strategy<Value = GenRule> {
    let every_string = Just(("[]".to_string(), false, false));
    (action(), prop_oneof![6 => paths(), 1 => every_string]).prop_map(
        |((body, hashes), (list, filter, negative))| {
            // `redact: []` means every string; other actions need a path.
            let list = if list == "[]" && !body.starts_with("redact") {
                "['$..*']".to_string()
            } else {
                list
            };
            GenRule {
                body: body.replacen("PATHS", &list, 1),
                filter,
                negative,
                hashes,
            }
        },
    )
}

/// The `body.allow` list and `unknown_fields` (absent: the default).
fn allow() -> impl Strategy<Value = Option<(String, bool, bool, &'static str)>> {
    let unknown = prop::sample::select(&["", "drop", "refuse", "pass"][..]);
    prop::option::weighted(0.3, (paths(), unknown)).prop_map(|a| {
        a.map(|((list, filter, negative), unknown)| (list, filter, negative, unknown))
    })
}

/// A whole policy file.
pub fn policy() -> impl Strategy<Value = GenPolicy> {
    (
        prop::collection::vec(rule(), 0..5),
        allow(),
        prop::sample::select(&["enforce", "enforce", "enforce", "monitor"][..]),
        any::<bool>(),
        prop::option::weighted(0.15, Just("refuse")),
    )
        .prop_map(|(rules, allow, mode, exact, embedded)| {
            let mut yaml = format!("policy: gen\nmode: {mode}\nbody:\n  exact_names: {exact}\n");
            if let Some(e) = embedded {
                yaml += &format!("  embedded_json: {e}\n");
            }
            let (mut filters, mut negative) = (false, false);
            if let Some((list, f, n, unknown)) = &allow {
                yaml += &format!("  allow: {list}\n");
                if !unknown.is_empty() {
                    yaml += &format!("  unknown_fields: {unknown}\n");
                }
                filters |= f;
                negative |= n;
            }
            yaml += "  rules:\n";
            if rules.is_empty() {
                yaml += "    []\n";
            }
            for (i, r) in rules.iter().enumerate() {
                yaml += &format!("    - {{ id: r{i}, {} }}\n", r.body);
                filters |= r.filter;
                negative |= r.negative;
            }
            GenPolicy {
                yaml,
                filters,
                negative,
                hashes: rules.iter().any(|r| r.hashes),
                monitor: mode == "monitor",
            }
        })
}
