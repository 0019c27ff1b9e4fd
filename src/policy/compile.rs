//! Policy file → [`Policy`]: every JSONPath parsed and every regex built once,
//! every mistake reported with its line and a fix.

use super::detect::{Detector, Redactor};
use super::file::{NameRulesFile, PolicyFile, RuleFile, TestFile, UnknownFields};
use super::headers::{HeaderRedact, HeaderRulesFile};
use super::names::{Glob, NameFilter};
use super::path::Selector;
use super::transform::Mask;
use super::{Action, Policy, PolicyTest, Rule};
use crate::diag::Diagnostic;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;

/// Media types governed when `body.content_types` is absent.
pub const DEFAULT_CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/*+json",
    "application/x-ndjson",
    "application/ndjson",
];

/// Parses and compiles one policy file. `Err` holds every problem found.
pub fn compile(file: &Path, text: &str) -> Result<Policy, Vec<Diagnostic>> {
    let raw: PolicyFile =
        serde_saphyr::from_str(text).map_err(|e| vec![Diagnostic::from_yaml(file, &e)])?;
    let mut cx = Cx {
        file,
        diags: Vec::new(),
        exact: raw.body.exact_names,
    };
    let policy = cx.policy(raw, text);
    if cx.diags.is_empty() {
        Ok(policy)
    } else {
        Err(cx.diags)
    }
}

/// Compilation context: the file, collected diagnostics, name matching.
struct Cx<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
    exact: bool,
}

impl Cx<'_> {
    fn error(&mut self, line: u64, message: String, hint: &str) {
        self.diags
            .push(Diagnostic::error(self.file, line, message).hint(hint));
    }

    fn policy(&mut self, raw: PolicyFile, text: &str) -> Policy {
        self.check_name(&raw.policy);
        let body = raw.body;
        let mut allow_lines = Vec::new();
        let allow = body.allow.map(|paths| {
            let unknown = body
                .unknown_fields
                .as_ref()
                .map_or(UnknownFields::Drop, |u| u.value);
            let (sels, lines) = self.lined_selectors(&paths).into_iter().unzip();
            allow_lines = lines;
            (super::path::AllowList::new(sels), unknown)
        });
        if allow.is_none()
            && let Some(u) = &body.unknown_fields
        {
            self.error(
                u.referenced.line(),
                "unknown_fields has no effect without body.allow".into(),
                "add an allow list, or remove unknown_fields",
            );
        }
        let rules = self.rules(body.rules);
        let content_types = match body.content_types {
            Some(types) => types.iter().map(|t| Glob::new(t)).collect(),
            None => DEFAULT_CONTENT_TYPES.iter().map(|t| Glob::new(t)).collect(),
        };
        let tests: Vec<PolicyTest> = raw
            .tests
            .into_iter()
            .filter_map(|t| self.test_case(t))
            .collect();
        let warnings = match &allow {
            Some((list, _)) => {
                super::lint::allowed_containers(self.file, list, &allow_lines, &tests)
            }
            None => Vec::new(),
        };
        let engine = super::stream::assign(
            raw.mode,
            &rules,
            allow
                .as_ref()
                .map(|(list, unknown)| (list.selectors(), *unknown)),
            body.embedded_json == super::EmbeddedJson::Refuse,
        );
        Policy {
            name: raw.policy.value,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            source: self.file.to_path_buf(),
            mode: raw.mode,
            content_types,
            other_content: body.other_content,
            allow,
            embedded_json: body.embedded_json,
            stages: super::stages(&rules),
            engine,
            rules,
            header_redact: self.header_redact(raw.headers.as_ref()),
            headers: self.header_names(raw.headers),
            query: self.name_rules(raw.query, "query"),
            tests,
            warnings,
        }
    }

    fn check_name(&mut self, name: &Spanned<String>) {
        if name.value == "pass" {
            self.error(
                name.referenced.line(),
                "policy name 'pass' is reserved: routes read `pass` as no policy at all".into(),
                "choose another name; `request: pass` and `response: pass` need no policy file",
            );
            return;
        }
        let ok = !name.value.is_empty()
            && name
                .value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            self.error(
                name.referenced.line(),
                format!("policy name '{}' is not of the form [a-z0-9-]+", name.value),
                "use lower-case letters, digits and dashes, e.g. incident-outbound",
            );
        }
    }

    fn selectors(&mut self, paths: &[Spanned<String>]) -> Vec<Selector> {
        self.lined_selectors(paths)
            .into_iter()
            .map(|(sel, _)| sel)
            .collect()
    }

    /// The selectors that compile, each with its line.
    fn lined_selectors(&mut self, paths: &[Spanned<String>]) -> Vec<(Selector, u64)> {
        paths
            .iter()
            .filter_map(|p| match Selector::parse(&p.value, self.exact) {
                Ok(sel) => Some((sel, p.referenced.line())),
                Err(e) => {
                    self.error(
                        p.referenced.line(),
                        format!("invalid JSONPath '{}': {e}", p.value),
                        "paths follow RFC 9535, e.g. $.incidents[*].email or $..ssn",
                    );
                    None
                }
            })
            .collect()
    }

    fn rules(&mut self, raw: Vec<Spanned<RuleFile>>) -> Vec<Rule> {
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(raw.len());
        for spanned in raw {
            let line = spanned.referenced.line();
            let rule = spanned.value;
            if !seen.insert(rule.id.value.clone()) {
                self.error(
                    rule.id.referenced.line(),
                    format!("duplicate rule id '{}'", rule.id.value),
                    "give every rule of a policy its own id",
                );
            }
            if let Some(rule) = self.rule(line, rule) {
                rules.push(rule);
            }
        }
        rules
    }

    fn rule(&mut self, line: u64, raw: RuleFile) -> Option<Rule> {
        let id = raw.id.value.clone();
        let actions = [
            ("drop", raw.drop.is_some()),
            ("mask", raw.mask.is_some()),
            ("replace", raw.replace.is_some()),
            ("hash", raw.hash.is_some()),
            ("redact", raw.redact.is_some()),
            ("refuse", raw.refuse.is_some()),
        ];
        let named: Vec<&str> = actions.iter().filter(|a| a.1).map(|a| a.0).collect();
        if named.len() != 1 {
            self.error(
                line,
                format!(
                    "rule '{id}' must have exactly one action, found {}",
                    if named.is_empty() {
                        "none".to_string()
                    } else {
                        named.join(", ")
                    }
                ),
                "use one of drop, mask, replace, hash, redact, refuse per rule",
            );
            return None;
        }
        self.misplaced_options(line, &raw, named[0]);
        let (paths, action) = self.action(line, raw)?;
        Some(Rule {
            id,
            selectors: paths,
            action,
        })
    }

    /// Options that belong to another action are mistakes, not no-ops.
    fn misplaced_options(&mut self, line: u64, raw: &RuleFile, action: &str) {
        let options = [
            ("keep_first", raw.keep_first.is_some(), "mask"),
            ("keep_last", raw.keep_last.is_some(), "mask"),
            ("char", raw.char.is_some(), "mask"),
            ("with", raw.with.is_some(), "replace"),
            ("detectors", raw.detectors.is_some(), "redact"),
            ("patterns", raw.patterns.is_some(), "redact"),
        ];
        for (key, set, owner) in options {
            if set && owner != action {
                self.error(
                    line,
                    format!(
                        "rule '{}': '{key}' only applies to {owner} rules",
                        raw.id.value
                    ),
                    &format!("remove '{key}' or make this a {owner} rule"),
                );
            }
        }
    }

    fn action(&mut self, line: u64, raw: RuleFile) -> Option<(Vec<Selector>, Action)> {
        let id = raw.id.value.as_str();
        if let Some(paths) = &raw.drop {
            let sels = self.selectors(paths);
            if let Some(root) = sels.iter().find(|s| s.is_root()) {
                let msg = format!(
                    "rule '{id}' cannot drop the whole document ({})",
                    root.source()
                );
                self.error(line, msg, "use refuse: [$] to stop the crossing instead");
            }
            return Some((sels, Action::Drop));
        }
        if let Some(paths) = &raw.mask {
            let ch = self.mask_char(raw.char.as_ref());
            let mask = Mask {
                keep_first: raw.keep_first.unwrap_or(0),
                keep_last: raw.keep_last.unwrap_or(0),
                ch,
            };
            return Some((self.selectors(paths), Action::Mask(mask)));
        }
        if let Some(paths) = &raw.replace {
            let Some(with) = raw.with.clone() else {
                let msg = format!("rule '{id}' replaces values but has no 'with'");
                self.error(
                    line,
                    msg,
                    "add with: \"<value>\" (any JSON value, null included)",
                );
                return None;
            };
            return Some((self.selectors(paths), Action::Replace(with)));
        }
        if let Some(paths) = &raw.hash {
            return Some((self.selectors(paths), Action::Hash));
        }
        if let Some(paths) = &raw.refuse {
            return Some((self.selectors(paths), Action::Refuse));
        }
        let paths = raw.redact.clone().flatten().unwrap_or_default();
        let redactor = self.redactor(line, &raw)?;
        if paths.is_empty() {
            let action = Action::Redact {
                redactor,
                deep: false,
            };
            return Some((vec![Selector::everything()], action));
        }
        let action = Action::Redact {
            redactor,
            deep: true,
        };
        Some((self.selectors(&paths), action))
    }

    fn mask_char(&mut self, ch: Option<&Spanned<String>>) -> char {
        let Some(ch) = ch else { return '*' };
        let mut chars = ch.value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => {
                self.error(
                    ch.referenced.line(),
                    format!("mask char '{}' must be exactly one character", ch.value),
                    "e.g. char: \"#\"",
                );
                '*'
            }
        }
    }

    fn redactor(&mut self, line: u64, raw: &RuleFile) -> Option<Redactor> {
        let builtins = match &raw.detectors {
            None => Detector::ALL.to_vec(),
            Some(names) => names.iter().filter_map(|n| self.detector(n)).collect(),
        };
        let custom: Vec<(String, String)> = raw
            .patterns
            .iter()
            .flatten()
            .map(|(name, re)| (name.clone(), re.value.clone()))
            .collect();
        match Redactor::new(&builtins, &custom) {
            Ok(r) => Some(r),
            Err(e) => {
                let at = raw
                    .patterns
                    .iter()
                    .flatten()
                    .next()
                    .map_or(line, |(_, re)| re.referenced.line());
                self.error(
                    at,
                    e.to_string(),
                    "patterns use Rust regex syntax (docs.rs/regex)",
                );
                None
            }
        }
    }

    fn detector(&mut self, name: &Spanned<String>) -> Option<Detector> {
        let found = Detector::from_name(&name.value);
        if found.is_none() {
            let all: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
            self.error(
                name.referenced.line(),
                format!("unknown detector '{}'", name.value),
                &format!(
                    "built-in detectors are {}; or add a named regex under patterns:",
                    all.join(", ")
                ),
            );
        }
        found
    }

    fn name_rules(&mut self, raw: Option<Spanned<NameRulesFile>>, what: &str) -> NameFilter {
        let Some(raw) = raw else {
            return NameFilter::KeepAll;
        };
        let line = raw.referenced.line();
        self.name_filter(line, raw.value.drop, raw.value.allow, what)
    }

    fn header_names(&mut self, raw: Option<Spanned<HeaderRulesFile>>) -> NameFilter {
        let Some(raw) = raw else {
            return NameFilter::KeepAll;
        };
        let line = raw.referenced.line();
        self.name_filter(line, raw.value.drop, raw.value.allow, "headers")
    }

    fn name_filter(
        &mut self,
        line: u64,
        drop: Option<Vec<String>>,
        allow: Option<Vec<String>>,
        what: &str,
    ) -> NameFilter {
        let globs = |list: &[String]| list.iter().map(|g| Glob::new(g)).collect();
        match (&drop, &allow) {
            (Some(d), None) => NameFilter::Drop(globs(d)),
            (None, Some(a)) => NameFilter::Allow(globs(a)),
            (None, None) => NameFilter::KeepAll,
            (Some(_), Some(_)) => {
                self.error(
                    line,
                    format!("{what}: has both drop and allow"),
                    "use drop: for a deny-list or allow: for an allow-list, not both",
                );
                NameFilter::KeepAll
            }
        }
    }

    /// `headers.redact` and its `detectors` (every built-in one by default).
    fn header_redact(&mut self, raw: Option<&Spanned<HeaderRulesFile>>) -> Option<HeaderRedact> {
        let raw = raw?;
        let line = raw.referenced.line();
        let (names, detectors) = match (&raw.value.redact, &raw.value.detectors) {
            (None, None) => return None,
            (None, Some(_)) => {
                self.error(
                    line,
                    "headers: detectors without redact".into(),
                    "list the headers whose values the detectors scan, e.g. redact: [location, set-cookie]",
                );
                return None;
            }
            (Some(names), detectors) => (names, detectors),
        };
        if names.is_empty() {
            self.error(
                line,
                "headers: redact lists no header".into(),
                "name the headers to scan, e.g. redact: [location, set-cookie, x-debug-*]",
            );
            return None;
        }
        let detectors: Vec<Detector> = match detectors {
            Some(list) => list.iter().filter_map(|d| self.detector(d)).collect(),
            None => Detector::ALL.to_vec(),
        };
        match Redactor::new(&detectors, &[]) {
            Ok(redactor) => Some(HeaderRedact {
                names: names.iter().map(|g| Glob::new(g)).collect(),
                redactor,
            }),
            Err(e) => {
                self.error(line, format!("headers: {e}"), "use built-in detectors");
                None
            }
        }
    }

    fn test_case(&mut self, t: Spanned<TestFile>) -> Option<PolicyTest> {
        let line = t.referenced.line();
        let t = t.value;
        let expect = match (t.expect, t.expect_refused) {
            (Some(v), false) => Some(v),
            (None, true) => None,
            _ => {
                let msg = format!(
                    "test '{}' needs exactly one of expect or expect_refused: true",
                    t.name
                );
                self.error(
                    line,
                    msg,
                    "say what the policy must output, or that it must refuse",
                );
                return None;
            }
        };
        Some(PolicyTest {
            name: t.name,
            line,
            input: t.input,
            expect,
        })
    }
}
