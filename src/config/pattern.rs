//! Route path patterns: exact segments, `*` for one segment, `**` (last) for
//! any suffix, including none.

/// A compiled route path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Exact(String),
    One,
    Rest,
    Never,
}

impl PathPattern {
    /// Parses `/api/incidents/*` or `/api/**`.
    pub fn parse(src: &str) -> Result<Self, &'static str> {
        let rest = src.strip_prefix('/').ok_or("it must start with /")?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "**" if i + 1 == parts.len() => Seg::Rest,
                "**" => return Err("** is only allowed as the last segment"),
                "*" => Seg::One,
                "" => return Err("empty segment (//)"),
                p if p.contains('*') => return Err("* must be a whole segment"),
                p if p == "." || p == ".." => return Err("dot segments are not allowed"),
                p => Seg::Exact(p.to_string()),
            });
        }
        Ok(PathPattern { segments })
    }

    /// A pattern that matches nothing (stands in for an invalid one).
    pub fn never() -> Self {
        PathPattern {
            segments: vec![Seg::Never],
        }
    }

    /// Whether a normalised path (starting with `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut parts = (!rest.is_empty())
            .then(|| rest.split('/'))
            .into_iter()
            .flatten();
        for seg in &self.segments {
            match seg {
                Seg::Rest => return true,
                Seg::Never => return false,
                Seg::One => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Seg::Exact(e) => {
                    if parts.next() != Some(e.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let cases = [
            ("/api/incidents/**", "/api/incidents", true),
            ("/api/incidents/**", "/api/incidents/1/notes", true),
            ("/api/incidents/**", "/api/incidentsX", false),
            ("/api/incidents/*", "/api/incidents/42", true),
            ("/api/incidents/*", "/api/incidents/42/x", false),
            ("/api/incidents/*", "/api/incidents", false),
            ("/api/incidents/*", "/api/incidents/", false),
            ("/exact", "/exact", true),
            ("/exact", "/exact/", false),
            ("/exact", "/EXACT", false),
            ("/", "/", true),
            ("/", "/a", false),
            ("/**", "/anything/at/all", true),
        ];
        for (pat, path, want) in cases {
            let p = PathPattern::parse(pat).expect("valid pattern");
            assert_eq!(p.matches(path), want, "{pat} vs {path}");
        }
    }

    #[test]
    fn invalid_patterns() {
        for bad in ["api", "/a/**/b", "/a*", "/a//b", "/a/../b"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(!PathPattern::never().matches("/"));
    }
}
