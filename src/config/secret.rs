//! Secret references: `${env:NAME}` and `${file:PATH}` inside config values.
//! Secrets live outside the config file; the config names where to read them.

use std::fmt;
use std::path::{Path, PathBuf};

/// A value made of literal text and secret references.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Env(String),
    File(PathBuf),
}

/// Why a secret cannot be read. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `${` without a matching `}` or an unknown source.
    #[error("invalid secret reference '{0}': use ${{env:NAME}} or ${{file:PATH}}")]
    Syntax(String),
    /// The environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The file cannot be read or is empty.
    #[error("secret file {path} cannot be read: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl SecretTemplate {
    /// Parses a value; `${file:...}` paths are relative to `base`.
    pub fn parse(value: &str, base: &Path) -> Result<Self, SecretError> {
        let mut parts = Vec::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| SecretError::Syntax(rest[start..].to_string()))?;
            let inner = &rest[start + 2..start + end];
            parts.push(match inner.split_once(':') {
                Some(("env", name)) if !name.is_empty() => Part::Env(name.to_string()),
                Some(("file", path)) if !path.is_empty() => Part::File(base.join(path)),
                _ => return Err(SecretError::Syntax(format!("${{{inner}}}"))),
            });
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(SecretTemplate { parts })
    }

    /// True when nothing is read from the environment or a file: the
    /// secret would sit in the config itself.
    pub fn is_inline(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Reads every referenced secret now. Trailing newlines of files are
    /// removed (Kubernetes secrets and `echo` add them).
    pub fn resolve(&self) -> Result<String, SecretError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Env(name) => match std::env::var(name) {
                    Ok(v) if !v.is_empty() => out.push_str(&v),
                    _ => return Err(SecretError::MissingEnv(name.clone())),
                },
                Part::File(path) => out.push_str(&read_secret_file(path)?),
            }
        }
        Ok(out)
    }

    /// Files the value depends on (watched for rotation).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().filter_map(|p| match p {
            Part::File(f) => Some(f.as_path()),
            _ => None,
        })
    }
}

fn read_secret_file(path: &Path) -> Result<String, SecretError> {
    let err = |reason: String| SecretError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = super::read::read_text(path, super::read::MAX_SECRET_BYTES)
        .map_err(|e| err(e.to_string()))?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(err("it is empty".into()));
    }
    Ok(trimmed.to_string())
}

/// Shows the references, never resolved values.
impl fmt::Debug for SecretTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(_) => f.write_str("…")?,
                Part::Env(n) => write!(f, "${{env:{n}}}")?,
                Part::File(p) => write!(f, "${{file:{}}}", p.display())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_references_resolve_and_trim() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "s3cret\n").expect("write");
        let t = SecretTemplate::parse("Bearer ${file:tok}", dir.path()).expect("parse");
        assert_eq!(t.resolve().expect("resolve"), "Bearer s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn bad_references_are_errors() {
        let base = Path::new("/");
        assert!(SecretTemplate::parse("${vault:x}", base).is_err());
        assert!(SecretTemplate::parse("${env:X", base).is_err());
        let missing = SecretTemplate::parse("${file:/nonexistent/customs}", base).expect("parse");
        assert!(matches!(missing.resolve(), Err(SecretError::File { .. })));
        let unset = SecretTemplate::parse("${env:CUSTOMS_TEST_SURELY_UNSET}", base).expect("parse");
        assert_eq!(
            unset.resolve(),
            Err(SecretError::MissingEnv("CUSTOMS_TEST_SURELY_UNSET".into()))
        );
    }
}
