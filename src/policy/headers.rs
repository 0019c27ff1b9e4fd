//! `headers:` rules: a drop list or an allow list of names (case-insensitive
//! globs), and header values redacted with detectors, as body strings are:
//!
//! ```yaml
//! headers:
//!   drop: [x-internal-*]
//!   redact: [location, set-cookie, x-debug-*]   # values scanned by detectors
//!   detectors: [email, us_ssn]                  # default: every built-in detector
//! ```

use super::detect::Redactor;
use super::names::Glob;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// `headers:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRulesFile {
    /// Names to remove.
    #[serde(default)]
    pub drop: Option<Vec<String>>,
    /// The only names kept.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Names whose values are redacted.
    #[serde(default)]
    pub redact: Option<Vec<String>>,
    /// Detectors for `redact` (default: all built-in ones).
    #[serde(default)]
    pub detectors: Option<Vec<Spanned<String>>>,
}

/// Header values a policy redacts: which names, and what finds data in them.
#[derive(Debug, Clone)]
pub struct HeaderRedact {
    /// Case-insensitive globs of header names.
    pub names: Vec<Glob>,
    /// The detectors run over each value.
    pub redactor: Redactor,
}

impl HeaderRedact {
    /// Whether values of header `name` are redacted.
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|g| g.matches(name))
    }
}
