//! Case-insensitive globs for header names, query parameters and media types.

/// A lower-cased pattern where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Compiles a glob; matching ignores ASCII case.
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.trim().to_ascii_lowercase())
    }

    /// Whether `name` matches, ignoring ASCII case.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard match: on a mismatch, retry from the last `*`.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pat.len() && pat[p] == name[n].to_ascii_lowercase() {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// `headers:` or `query:` rules: a drop list, an allow list, or nothing.
#[derive(Debug, Clone, Default)]
pub enum NameFilter {
    /// Everything is kept.
    #[default]
    KeepAll,
    /// Matching names are removed.
    Drop(Vec<Glob>),
    /// Only matching names are kept.
    Allow(Vec<Glob>),
}

impl NameFilter {
    /// Whether a header or parameter of this name crosses.
    pub fn keeps(&self, name: &str) -> bool {
        match self {
            NameFilter::KeepAll => true,
            NameFilter::Drop(globs) => !globs.iter().any(|g| g.matches(name)),
            NameFilter::Allow(globs) => globs.iter().any(|g| g.matches(name)),
        }
    }
}

/// The media type of a `Content-Type` value: lower case, parameters removed.
pub fn essence(content_type: &str) -> String {
    let end = content_type.find(';').unwrap_or(content_type.len());
    content_type[..end].trim().to_ascii_lowercase()
}

/// Whether a media type is newline-delimited JSON.
pub fn is_ndjson(essence: &str) -> bool {
    matches!(
        essence,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("x-internal-*", "X-Internal-Trace", true),
            ("x-internal-*", "x-internal", false),
            ("cookie", "Cookie", true),
            ("cookie", "set-cookie", false),
            ("application/*+json", "application/vnd.api+json", true),
            ("application/*+json", "application/json", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (pat, name, want) in cases {
            assert_eq!(Glob::new(pat).matches(name), want, "{pat} vs {name}");
        }
    }

    #[test]
    fn filters() {
        let drop = NameFilter::Drop(vec![Glob::new("debug")]);
        assert!(!drop.keeps("DEBUG"));
        assert!(drop.keeps("page"));
        let allow = NameFilter::Allow(vec![Glob::new("page*")]);
        assert!(allow.keeps("page_size"));
        assert!(!allow.keeps("debug"));
    }

    #[test]
    fn media_type_essence() {
        assert_eq!(
            essence("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert!(is_ndjson(&essence("application/x-ndjson")));
    }
}
