//! Custom `patterns:` of a `redact` rule: their names and size limits, the checks that refuse
//! unusable ones, the errors of a rule that does not compile, and the one automaton built
//! under those limits.

use regex::{Regex, RegexBuilder};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{MatchKind, meta};

/// Compiled-size limit of one custom pattern (regex `size_limit`).
pub(super) const CUSTOM_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit of one custom pattern (regex `dfa_size_limit`).
pub(super) const CUSTOM_DFA_LIMIT: usize = 1 << 20;
/// Limits of the combined set (plus one custom limit per custom pattern): the
/// built-ins alone compile to under 256 KiB.
pub(super) const SET_SIZE_LIMIT: usize = 2 << 20;
pub(super) const SET_DFA_LIMIT: usize = 4 << 20;

/// A `redact` rule that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A custom pattern that does not compile or would match the empty string.
    #[error("redact pattern '{name}' is not usable: {reason}")]
    BadPattern { name: String, reason: String },
    /// A custom pattern name that cannot be a `[LABEL]`.
    #[error("redact pattern name '{name}' is not usable: {reason}")]
    BadName { name: String, reason: String },
}

/// Upper-cased label of a custom pattern name.
pub(super) fn custom_label(name: &str) -> Result<String, DetectError> {
    let bad = |reason: &str| DetectError::BadName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.trim().is_empty() {
        return Err(bad(
            "the name is empty; give the pattern a name such as ticket-secret",
        ));
    }
    if name.chars().any(|c| c == '[' || c == ']' || c.is_control()) {
        return Err(bad(
            "the name becomes the [LABEL]; use letters, digits, '-' or '_'",
        ));
    }
    Ok(name.to_uppercase())
}

/// Checks one custom pattern with size limits and refuses empty matches.
pub(super) fn check_custom(name: &str, src: &str) -> Result<(), DetectError> {
    let bad = |reason: String| DetectError::BadPattern {
        name: name.to_owned(),
        reason,
    };
    let re = RegexBuilder::new(src)
        .size_limit(CUSTOM_SIZE_LIMIT)
        .dfa_size_limit(CUSTOM_DFA_LIMIT)
        .build()
        .map_err(|e| bad(describe(&e)))?;
    if matches_empty(&re) {
        return Err(bad(
            "it can match the empty string, so it would redact between every character; \
             make it require at least one character (e.g. `+` instead of `*`, no optional whole)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A one-line reason with a hint, from a regex compile error.
fn describe(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(msg) => {
            let detail = msg
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(msg.trim());
            format!(
                "invalid regex: {detail}; use Rust regex syntax (no look-around or \
                 backreferences) and escape literal metacharacters with '\\'"
            )
        }
        regex::Error::CompiledTooBig(limit) => too_big(*limit),
        other => format!("{other}; simplify the pattern"),
    }
}

fn too_big(limit: usize) -> String {
    format!(
        "it compiles to more than {} KiB; nested or large counted repetitions \
         (such as {{1000}} or (?:..){{64}}{{64}}) multiply its size, use smaller counts",
        limit / 1024
    )
}

/// Whether `re` can match the empty string. Empty matches depend only on the
/// neighbouring characters' classes (word ASCII/Unicode, space, line ends,
/// text edges), so probing every pair of those classes covers all cases.
fn matches_empty(re: &Regex) -> bool {
    pub(super) const CLASSES: [&str; 6] = ["a", "é", " ", "\n", "\r", "-"];
    let mut probe = String::new();
    let empty = |p: &str| re.find_iter(p).any(|m| m.is_empty());
    if empty("") {
        return true;
    }
    for a in CLASSES {
        for b in CLASSES {
            probe.clear();
            probe.push_str(a);
            probe.push_str(b);
            if empty(a) || empty(&probe) {
                return true;
            }
        }
    }
    false
}

/// The one automaton over all patterns, leftmost-first in priority order.
pub(super) fn build_automaton(
    sources: &[&str],
    custom: &[(String, String)],
) -> Result<meta::Regex, DetectError> {
    let extra = custom.len() * CUSTOM_SIZE_LIMIT;
    let config = meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .which_captures(WhichCaptures::Implicit)
        .nfa_size_limit(Some(SET_SIZE_LIMIT + extra))
        .onepass_size_limit(Some(SET_SIZE_LIMIT + extra))
        .hybrid_cache_capacity(SET_DFA_LIMIT);
    meta::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new().utf8(true))
        .build_many(sources)
        .map_err(|e| DetectError::BadPattern {
            name: custom
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: format!(
                "the patterns together with the built-in detectors fail to compile: {}",
                e.size_limit()
                    .map_or_else(|| format!("{e}; simplify the pattern"), too_big)
            ),
        })
}
