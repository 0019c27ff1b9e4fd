//! Shared by the fuzz targets: the policies they run, the engine comparison and a scratch
//! directory.

use customs::policy::{self, Apply, Policy, transform::HashKey};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What the engine targets parse within.
pub const BOUNDS: customs::json::Bounds = customs::json::Bounds {
    depth: 64,
    elements: 100_000,
};

/// The comparison of the two policy engines the differential tests use.
#[path = "../../diff/mod.rs"]
pub mod diff;

/// A policy that exercises what the repository's policies do not: an
/// allow-list, `embedded_json: refuse`, filters, drops, header allow-lists
/// and query rules.
const EXTRA: &str = r##"
policy: fuzz-extra
body:
  allow: ['$.items[*].id', '$.items[*].meta..*', '$.next', '$.keep']
  unknown_fields: drop
  embedded_json: refuse
  rules:
    - { id: no-secret, refuse: [$..password] }
    - { id: cut, drop: ['$.items[0:2]', '$.keep[-1]'] }
    - { id: big, replace: ['$.items[?@.id > 10].meta'], with: {"x": [1, null]} }
    - { id: card, mask: [$..card_number], keep_first: 2, keep_last: 2, char: "#" }
    - { id: who, hash: ['$.items[*].meta.email'] }
    - { id: text, redact: ['$..note'], patterns: { ticket: "T-[0-9]{3}" } }
    - { id: backstop, redact: [] }
headers:
  allow: [content-type, accept, x-keep-*, location]
  redact: [location, x-keep-*]
query: { drop: [debug, 'tr*'] }
"##;

/// A policy that touches nothing (the stream engine copies the body through).
const UNTOUCHED: &str =
    "policy: untouched\nbody:\n  rules:\n    - { id: none, mask: ['$.no.such'] }\n";

/// A `redact` backstop over every string and key.
const BACKSTOP: &str = "policy: backstop\nbody:\n  rules:\n    - { id: pii, redact: [] }\n";

/// The repository's policies plus [`EXTRA`], compiled once.
pub fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| compile_all(&REPOSITORY))
}

/// The policy the engine targets run on `data` (its length picks one of [`engine_policies`],
/// so seeds stay plain files), and how: with a hash key, and `report` as asked.
pub fn engine_case(data: &[u8], report: bool) -> (&'static Policy, Apply<'static>) {
    static KEY: OnceLock<HashKey> = OnceLock::new();
    let policies = engine_policies();
    let how = Apply {
        hash_key: Some(KEY.get_or_init(|| HashKey::new(b"fuzz"))),
        report,
    };
    (&policies[data.len() % policies.len()], how)
}

/// [`policies`] plus the simplest ones, for the engine targets.
pub fn engine_policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let mut all = compile_all(&REPOSITORY);
        all.extend(compile_all(&[
            ("untouched.yaml", UNTOUCHED),
            ("backstop.yaml", BACKSTOP),
        ]));
        all
    })
}

const REPOSITORY: [(&str, &str); 5] = [
    (
        "payment-data.yaml",
        include_str!("../../../policies/payment-data.yaml"),
    ),
    (
        "hr-records.yaml",
        include_str!("../../../policies/hr-records.yaml"),
    ),
    (
        "incident-inbound.yaml",
        include_str!("../../../policies/incident-inbound.yaml"),
    ),
    (
        "incident-outbound.yaml",
        include_str!("../../../policies/incident-outbound.yaml"),
    ),
    ("fuzz-extra.yaml", EXTRA),
];

fn compile_all(sources: &[(&str, &str)]) -> Vec<Policy> {
    sources
        .iter()
        .map(
            |(name, text)| match policy::compile(Path::new(name), text) {
                Ok(p) => p,
                Err(diags) => panic!("{name} does not compile: {diags:?}"),
            },
        )
        .collect()
}

/// A directory of this process's own under the system temp dir, created once.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("customs-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}
