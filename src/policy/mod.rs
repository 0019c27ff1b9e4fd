//! The policy engine: compiled policies applied to JSON documents in place.
//!
//! Pure and synchronous, no I/O: `serve`, `apply`, `check`, the tests and the
//! benches all call the same [`Policy::apply`]. Order of evaluation (SPEC
//! §2.2): `refuse` rules first, on the payload as received; then the
//! allow-list; then the other rules in file order.

mod compile;
pub mod detect;
pub mod document;
mod embedded;
pub mod file;
pub mod headers;
mod lint;
mod load;
pub mod names;
pub mod path;
mod redact;
mod selftest;
pub mod shape;
pub mod stream;
pub mod transform;

pub use compile::compile;
pub use file::{EmbeddedJson, Mode, OtherContent, UnknownFields};
pub use lint::warnings;
pub use load::{PolicySet, load_dir, load_file, policy_files};
pub use selftest::{TEST_HASH_KEY, TestFailure, run_all_tests, run_tests};

use detect::Redactor;
use names::{Glob, NameFilter};
use path::{AllowList, Location, RuleGroup, Selector};
use serde_json::Value;
use std::path::PathBuf;
use transform::{HashKey, Mask, text_of};

/// A compiled policy: every path parsed and every regex built at load time.
#[derive(Debug)]
pub struct Policy {
    /// Unique name; routes refer to it.
    pub name: String,
    /// SHA-256 of the policy file, for audit records.
    pub sha256: String,
    /// The file it came from.
    pub source: PathBuf,
    /// enforce | monitor.
    pub mode: Mode,
    /// Media types governed by the body rules.
    pub content_types: Vec<Glob>,
    /// Bodies of other types.
    pub other_content: OtherContent,
    /// The allow-list and what to do outside it.
    pub allow: Option<(AllowList, UnknownFields)>,
    /// What to do with strings that hold JSON documents.
    pub embedded_json: EmbeddedJson,
    /// Body rules in file order.
    pub rules: Vec<Rule>,
    /// How the rules run after the allow-list: see [`Stage`].
    pub stages: Vec<Stage>,
    /// The engine that runs the body rules (and, for the tree engine, why).
    pub engine: stream::Assignment,
    /// Header rules.
    pub headers: NameFilter,
    /// Header values redacted by detectors.
    pub header_redact: Option<headers::HeaderRedact>,
    /// Query-parameter rules.
    pub query: NameFilter,
    /// Embedded tests.
    pub tests: Vec<PolicyTest>,
    /// What `check` warns about: risky constructs found at load (file:line).
    pub warnings: Vec<crate::diag::Diagnostic>,
}

/// One body rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique within the policy.
    pub id: String,
    /// The nodes it acts on.
    pub selectors: Vec<Selector>,
    /// What it does.
    pub action: Action,
}

/// Rules that run in one walk of the document, or one rule that runs alone.
///
/// Consecutive value-level rules (mask, replace, hash, redact) without filters share one
/// [`RuleGroup`] walk, which gives the result of running them one after the other. A `drop`
/// (it shifts array indices) or a rule with a filter (its result depends on earlier rules'
/// effects) runs alone, path by path. A grouped rule acts at most once per node, even when
/// several of its paths select the node.
#[derive(Debug)]
pub enum Stage {
    /// Indices into [`Policy::rules`], in order, and their shared walk.
    Group(Vec<usize>, Box<RuleGroup>),
    /// One rule, path by path.
    Alone(usize),
}

/// Plans the [`Stage`]s of `rules`. `refuse` rules have none: they run before the allow-list.
pub fn stages(rules: &[Rule]) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    let flush = |members: &mut Vec<usize>, stages: &mut Vec<Stage>| {
        if !members.is_empty() {
            let sels: Vec<&[Selector]> = members.iter().map(|i| &rules[*i].selectors[..]).collect();
            stages.push(Stage::Group(
                std::mem::take(members),
                Box::new(RuleGroup::new(&sels)),
            ));
        }
    };
    for (i, rule) in rules.iter().enumerate() {
        match rule.action {
            Action::Refuse => {}
            Action::Mask(_) | Action::Replace(_) | Action::Hash | Action::Redact { .. }
                if rule.selectors.iter().all(Selector::groupable) =>
            {
                members.push(i)
            }
            _ => {
                flush(&mut members, &mut stages);
                stages.push(Stage::Alone(i));
            }
        }
    }
    flush(&mut members, &mut stages);
    stages
}

/// What a rule does to each node it selects.
#[derive(Debug)]
pub enum Action {
    /// Remove the member or element.
    Drop,
    /// Mask letters and digits.
    Mask(Mask),
    /// Replace with a fixed value.
    Replace(Value),
    /// HMAC-SHA256 pseudonym.
    Hash,
    /// Replace detected spans with `[LABEL]`; `deep` also scans inside
    /// selected objects and arrays (false when the selector already visits
    /// every node).
    Redact {
        /// The compiled detectors.
        redactor: Redactor,
        /// Scan strings inside selected containers.
        deep: bool,
    },
    /// Refuse the crossing on any match.
    Refuse,
}

impl Action {
    /// Applies a value-level action to one node (both engines run this); false when nothing
    /// changed. `drop` and `refuse` are not value-level: they change nothing here.
    pub(crate) fn apply_to(&self, node: &mut Value, hash_key: Option<&HashKey>) -> bool {
        match self {
            Action::Mask(mask) => *node = Value::String(mask.apply(&text_of(node))),
            Action::Replace(with) => *node = with.clone(),
            Action::Hash => {
                // Checked in `apply`; a missing key never reaches here.
                let Some(key) = hash_key else {
                    return false;
                };
                *node = Value::String(key.hash(text_of(node).as_bytes()));
            }
            Action::Redact { redactor, deep } => return redact::redact(redactor, node, *deep),
            Action::Drop | Action::Refuse => return false,
        }
        true
    }

    /// The name used in reports and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Mask(_) => "mask",
            Action::Replace(_) => "replace",
            Action::Hash => "hash",
            Action::Redact { .. } => "redact",
            Action::Refuse => "refuse",
        }
    }
}

/// An embedded test case.
#[derive(Debug)]
pub struct PolicyTest {
    /// Shown when it fails.
    pub name: String,
    /// Line in the policy file.
    pub line: u64,
    /// The payload.
    pub input: Value,
    /// The expected output, or `None` when the crossing must be refused.
    pub expect: Option<Value>,
}

/// Rule id used for what the allow-list removes or refuses.
pub const ALLOW_RULE: &str = "allow";

/// Rule id of a refusal for a string that holds a JSON document (`embedded_json: refuse`).
pub const EMBEDDED_RULE: &str = "embedded_json";

/// How to run a policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apply<'a> {
    /// Key for `hash` rules.
    pub hash_key: Option<&'a HashKey>,
    /// Record every action with its path (for `apply --report`).
    pub report: bool,
}

/// One action taken, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTaken {
    /// Rule id (or `allow`).
    pub rule: String,
    /// RFC 9535 normalized path of the node.
    pub path: String,
    /// drop | mask | replace | hash | redact | refuse | unknown.
    pub action: &'static str,
}

/// Why a crossing is refused: rule and wildcarded path, for the audit record
/// only, never for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Rule id (or `allow`).
    pub rule: String,
    /// Wildcarded path of the first match.
    pub path: String,
}

/// What applying a policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Set when a `refuse` rule matched or `unknown_fields: refuse` fired.
    pub refused: Option<Refusal>,
    /// Nodes acted on, per rule, aligned with [`Policy::rules`].
    pub counts: Vec<u64>,
    /// Nodes outside the allow-list.
    pub unknown_count: u64,
    /// Distinct wildcarded paths outside the allow-list (at most
    /// [`MAX_UNKNOWN_PATHS`]).
    pub unknown_fields: Vec<String>,
    /// Every action with its path, when [`Apply::report`] is set.
    pub report: Vec<ActionTaken>,
}

/// Cap on distinct unknown paths kept per crossing, so a hostile payload
/// cannot grow audit records without bound.
pub const MAX_UNKNOWN_PATHS: usize = 32;

/// The unknown nodes of one document, counted and listed as [`Outcome`] reports them (both
/// engines keep this list).
#[derive(Debug, Default)]
pub(crate) struct Unknowns {
    /// Hashes of the wildcarded paths listed so far.
    seen: Vec<u64>,
}

impl Unknowns {
    /// Counts a node outside the allow-list, and lists its wildcarded path if it is new.
    pub(crate) fn note(&mut self, out: &mut Outcome, loc: &Location<'_>) {
        out.unknown_count += 1;
        // Most unknown nodes repeat a path already reported (one per
        // array element): compare hashes before formatting anything.
        let hash = loc.wildcard_hash();
        if self.seen.len() < MAX_UNKNOWN_PATHS && !self.seen.contains(&hash) {
            self.seen.push(hash);
            out.unknown_fields.push(loc.wildcarded());
        }
    }
}

/// Errors that stop a policy from running at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// A `hash` rule ran without `secrets.hash_key`.
    #[error(
        "rule '{rule}' hashes values but no key is configured: set secrets.hash_key in customs.yaml"
    )]
    MissingHashKey {
        /// The rule.
        rule: String,
    },
}

impl Outcome {
    /// Whether the crossing must be refused (never in monitor mode).
    pub fn blocks(&self, policy: &Policy) -> bool {
        self.refused.is_some() && policy.mode == Mode::Enforce
    }

    /// Per-rule counts that are not zero, with the rule ids.
    pub fn actions<'p>(&'p self, policy: &'p Policy) -> impl Iterator<Item = (&'p str, u64)> {
        policy
            .rules
            .iter()
            .zip(&self.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (r.id.as_str(), *n))
    }
}

impl Outcome {
    /// Adds another document's outcome (NDJSON lines).
    pub fn merge(&mut self, other: Outcome) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.unknown_count += other.unknown_count;
        for path in other.unknown_fields {
            if self.unknown_fields.len() < MAX_UNKNOWN_PATHS && !self.unknown_fields.contains(&path)
            {
                self.unknown_fields.push(path);
            }
        }
        if self.refused.is_none() {
            self.refused = other.refused;
        }
        self.report.extend(other.report);
    }
}

impl Policy {
    /// Whether the body rules govern this media type (see [`names::essence`]).
    pub fn governs(&self, essence: &str) -> bool {
        self.content_types.iter().any(|g| g.matches(essence))
    }

    /// Whether any rule needs [`Apply::hash_key`].
    pub fn needs_hash_key(&self) -> bool {
        self.rules.iter().any(|r| matches!(r.action, Action::Hash))
    }

    /// Applies the policy to `doc` in place. In monitor mode `doc` is left as
    /// it is and the outcome says what enforcement would have done.
    pub fn apply(&self, doc: &mut Value, how: &Apply<'_>) -> Result<Outcome, ApplyError> {
        self.apply_in(self.mode, doc, how)
    }

    /// [`Policy::apply`] as if the policy's mode were `mode`.
    pub(crate) fn apply_in(
        &self,
        mode: Mode,
        doc: &mut Value,
        how: &Apply<'_>,
    ) -> Result<Outcome, ApplyError> {
        if how.hash_key.is_none()
            && let Some(rule) = self.rules.iter().find(|r| matches!(r.action, Action::Hash))
        {
            return Err(ApplyError::MissingHashKey {
                rule: rule.id.clone(),
            });
        }
        let mut run = Run {
            how,
            out: Outcome {
                counts: vec![0; self.rules.len()],
                ..Outcome::default()
            },
            stop_on_refusal: mode == Mode::Enforce,
        };
        match mode {
            Mode::Enforce => run.policy(self, doc),
            // Rules depend on each other's effects, so the only faithful
            // dry run is a real run on a copy.
            Mode::Monitor => run.policy(self, &mut doc.clone()),
        }
        Ok(run.out)
    }
}

/// State of one application.
struct Run<'a> {
    how: &'a Apply<'a>,
    out: Outcome,
    stop_on_refusal: bool,
}

impl Run<'_> {
    fn policy(&mut self, policy: &Policy, doc: &mut Value) {
        if policy.embedded_json == EmbeddedJson::Refuse
            && let Some(path) = embedded::find(doc)
        {
            self.out.refused = Some(Refusal {
                rule: EMBEDDED_RULE.to_string(),
                path,
            });
            if self.stop_on_refusal {
                return;
            }
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            if matches!(rule.action, Action::Refuse) {
                self.refuse(i, rule, doc);
                if self.out.refused.is_some() && self.stop_on_refusal {
                    return;
                }
            }
        }
        if let Some((allow, unknown)) = &policy.allow {
            self.allow_list(allow, *unknown, doc);
            if self.out.refused.is_some() && self.stop_on_refusal {
                return;
            }
        }
        for stage in &policy.stages {
            match stage {
                Stage::Group(members, walk) => self.group(&policy.rules, members, walk, doc),
                Stage::Alone(i) => self.rule(*i, &policy.rules[*i], doc),
            }
        }
    }

    fn group(&mut self, rules: &[Rule], members: &[usize], walk: &RuleGroup, doc: &mut Value) {
        walk.visit_mut(doc, &mut |m, loc, node| {
            let i = members[m];
            let rule = &rules[i];
            if self.transform(&rule.action, node) {
                self.out.counts[i] += 1;
                self.note(&rule.id, loc, rule.action.name());
            }
        });
    }

    fn refuse(&mut self, i: usize, rule: &Rule, doc: &Value) {
        for sel in &rule.selectors {
            sel.any_match(doc, &mut |loc, _| {
                self.out.counts[i] += 1;
                self.note(&rule.id, loc, "refuse");
                if self.out.refused.is_none() {
                    self.out.refused = Some(Refusal {
                        rule: rule.id.clone(),
                        path: loc.wildcarded(),
                    });
                }
                // Keep looking only to report every match.
                self.how.report
            });
        }
    }

    fn allow_list(&mut self, allow: &AllowList, unknown: UnknownFields, doc: &mut Value) {
        let remove = unknown == UnknownFields::Drop;
        let action = if remove { "drop" } else { "unknown" };
        let mut seen = Unknowns::default();
        allow.prune(doc, remove, &mut |loc| {
            seen.note(&mut self.out, loc);
            if unknown == UnknownFields::Refuse && self.out.refused.is_none() {
                self.out.refused = Some(Refusal {
                    rule: ALLOW_RULE.to_string(),
                    path: loc.wildcarded(),
                });
            }
            self.note(ALLOW_RULE, loc, action);
        });
    }

    fn rule(&mut self, i: usize, rule: &Rule, doc: &mut Value) {
        let name = rule.action.name();
        for sel in &rule.selectors {
            let mut acted = 0;
            match &rule.action {
                Action::Refuse => {}
                Action::Drop => {
                    sel.remove(doc, &mut |loc| {
                        acted += 1;
                        self.note(&rule.id, loc, name);
                    });
                }
                action => {
                    sel.visit_mut(doc, &mut |loc, node| {
                        if self.transform(action, node) {
                            acted += 1;
                            self.note(&rule.id, loc, name);
                        }
                    });
                }
            }
            self.out.counts[i] += acted;
        }
    }

    /// Applies a value-level action; false when nothing changed.
    fn transform(&self, action: &Action, node: &mut Value) -> bool {
        action.apply_to(node, self.how.hash_key)
    }

    fn note(&mut self, rule: &str, loc: &Location<'_>, action: &'static str) {
        if self.how.report {
            self.out.report.push(ActionTaken {
                rule: rule.to_string(),
                path: loc.normalized(),
                action,
            });
        }
    }
}
