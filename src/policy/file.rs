//! The policy file as written (SPEC §2.2): a serde mirror of the YAML, with
//! no logic. Unknown keys and duplicate keys are errors; values that need
//! checking later carry their line through [`Spanned`].

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A list of JSONPath strings, each with its line.
pub type Paths = Vec<Spanned<String>>;

/// `enforce` or `monitor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Apply every rule.
    #[default]
    Enforce,
    /// Change nothing; report what would have happened.
    Monitor,
}

impl Mode {
    /// The name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// What to do with a body whose content type the policy does not govern.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherContent {
    /// Refuse the crossing (default).
    #[default]
    Refuse,
    /// Let it cross unfiltered.
    Pass,
}

/// What to do with fields outside `body.allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    /// Remove them (default when `allow` is set).
    Drop,
    /// Refuse the crossing.
    Refuse,
    /// Keep them, but report them.
    Pass,
}

/// What to do with a string value that holds a JSON object or array (`"{\"password\":…}"`),
/// which path rules do not see into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddedJson {
    /// Treat it as a string like any other (default): detectors of `redact` rules still scan
    /// its text.
    #[default]
    Pass,
    /// Refuse the crossing.
    Refuse,
}

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Unique name; routes refer to it.
    pub policy: Spanned<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// enforce | monitor.
    #[serde(default)]
    pub mode: Mode,
    /// Body rules.
    #[serde(default)]
    pub body: BodyFile,
    /// Header rules.
    #[serde(default)]
    pub headers: Option<Spanned<super::headers::HeaderRulesFile>>,
    /// Query-parameter rules.
    #[serde(default)]
    pub query: Option<Spanned<NameRulesFile>>,
    /// Embedded tests, run by `check`.
    #[serde(default)]
    pub tests: Vec<Spanned<TestFile>>,
}

/// `body:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyFile {
    /// Media types the policy governs (globs such as `application/*+json`).
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// Bodies of other types.
    #[serde(default)]
    pub other_content: OtherContent,
    /// Allow-list of JSONPaths.
    #[serde(default)]
    pub allow: Option<Paths>,
    /// What happens outside the allow-list.
    #[serde(default)]
    pub unknown_fields: Option<Spanned<UnknownFields>>,
    /// Match names exactly (no case folding or Unicode normalisation).
    #[serde(default)]
    pub exact_names: bool,
    /// Strings that hold JSON documents.
    #[serde(default)]
    pub embedded_json: EmbeddedJson,
    /// Rules, in order.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleFile>>,
}

/// One rule: an id and exactly one action key, with that action's options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Unique within the policy; names the rule in reports, audit and metrics.
    pub id: Spanned<String>,
    /// Remove the matched members.
    #[serde(default)]
    pub drop: Option<Paths>,
    /// Mask letters and digits.
    #[serde(default)]
    pub mask: Option<Paths>,
    /// Replace with `with`.
    #[serde(default)]
    pub replace: Option<Paths>,
    /// HMAC-SHA256 pseudonym.
    #[serde(default)]
    pub hash: Option<Paths>,
    /// Redact detected spans; an empty or null list means every string.
    #[serde(default, deserialize_with = "present")]
    pub redact: Option<Option<Paths>>,
    /// Refuse the crossing on any match.
    #[serde(default)]
    pub refuse: Option<Paths>,
    /// `mask`: letters and digits kept at the start.
    #[serde(default)]
    pub keep_first: Option<usize>,
    /// `mask`: letters and digits kept at the end.
    #[serde(default)]
    pub keep_last: Option<usize>,
    /// `mask`: the mask character.
    #[serde(default)]
    pub char: Option<Spanned<String>>,
    /// `replace`: the new value.
    #[serde(default, deserialize_with = "present")]
    pub with: Option<Value>,
    /// `redact`: built-in detectors.
    #[serde(default)]
    pub detectors: Option<Vec<Spanned<String>>>,
    /// `redact`: named custom regexes.
    #[serde(default)]
    pub patterns: Option<BTreeMap<String, Spanned<String>>>,
}

/// `headers:` / `query:`: a drop list or an allow list of case-insensitive globs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRulesFile {
    /// Names to remove.
    #[serde(default)]
    pub drop: Option<Vec<String>>,
    /// The only names kept.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
}

/// One embedded test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Shown when it fails.
    pub name: String,
    /// The payload.
    pub input: Value,
    /// The expected output.
    #[serde(default, deserialize_with = "present")]
    pub expect: Option<Value>,
    /// The crossing must be refused.
    #[serde(default)]
    pub expect_refused: bool,
}

/// Distinguishes a key that is present (even as `null`) from a missing one.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
