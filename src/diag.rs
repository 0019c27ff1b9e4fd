//! Diagnostics for config and policy files: `file:line: message`, with a hint
//! that says how to fix it. `check` prints them; loaders collect all of them
//! instead of stopping at the first.

use std::fmt;
use std::path::{Path, PathBuf};

/// Whether a diagnostic stops the configuration from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// A risky but valid setup.
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// An error at `file:line`.
    pub fn error(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            message: message.into(),
            hint: None,
            severity: Severity::Error,
        }
    }

    /// A warning at `file:line`.
    pub fn warning(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, message)
        }
    }

    /// Adds the fix to suggest.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turns a YAML parse error into a diagnostic at the line it names.
    pub fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let line = err.location().map_or(0, |l| l.line());
        let text = err.without_snippet().to_string();
        // The location is already in the prefix; drop serde-saphyr's suffix.
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        let diag = Diagnostic::error(file, line, message);
        if diag.message.starts_with("unknown field") {
            diag.hint("remove the key or fix its spelling; unknown keys are never ignored")
        } else if diag.message.contains("anchor or alias") {
            diag.hint("a JSONPath with [ ] inside a [ ] list must be quoted: drop: ['$.a[*].b'], or use a block list (- $.a[*].b)")
        } else {
            diag
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading; non-empty.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn render(diags: &[Diagnostic]) -> String {
    let lines: Vec<String> = diags.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}
