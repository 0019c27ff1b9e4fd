//! Warnings `check` prints for policies that rely on behaviour customs no longer has.

use super::PolicyTest;
use super::path::{AllowList, Selector};
use crate::diag::Diagnostic;
use serde_json::Value;
use std::path::Path;

/// An allow-list entry that the policy's own tests show selecting an object or array with
/// members no entry admits (unless the test expects it emptied). Such an entry once admitted
/// the whole subtree; it now admits the container only (SPEC §2.2), so those members are
/// unknown fields.
pub(super) fn allowed_containers(
    file: &Path,
    allow: &AllowList,
    lines: &[u64],
    tests: &[PolicyTest],
) -> Vec<Diagnostic> {
    let unknown: Vec<Vec<String>> = tests
        .iter()
        .map(|t| {
            let mut paths = Vec::new();
            allow.prune(&mut t.input.clone(), false, &mut |loc| {
                paths.push(loc.normalized())
            });
            paths
        })
        .collect();
    let mut out = Vec::new();
    for (sel, line) in allow.selectors().iter().zip(lines) {
        if sel.admits_subtree() {
            continue;
        }
        let hit = tests.iter().zip(&unknown).find_map(|(t, unknown)| {
            let mut found = None;
            sel.any_match(&t.input, &mut |loc, node| {
                let path = loc.normalized();
                let container = matches!(node, Value::Object(_) | Value::Array(_));
                if container
                    && unknown.iter().any(|u| below(u, &path))
                    && !expects_emptied(t, &path)
                {
                    found = Some(path);
                    return false;
                }
                true
            });
            found.map(|path| (t, path))
        });
        if let Some((t, path)) = hit {
            let src = sel.source();
            out.push(
                Diagnostic::warning(
                    file,
                    *line,
                    format!(
                        "allow-list entry '{src}' selects a container in test '{}' ({path}); \
                         an allow-list admits the nodes it names, not what arrives inside \
                         them, so its members are unknown fields",
                        t.name
                    ),
                )
                .hint(format!(
                    "write '{src}..*' to admit the whole subtree, or list the members to admit"
                )),
            );
        }
    }
    out
}

/// Whether the test's expected output shows the container at `path` emptied: the author
/// already expects an allow-list entry to admit the node and nothing inside it.
fn expects_emptied(test: &PolicyTest, path: &str) -> bool {
    let (Some(expect), Ok(at)) = (&test.expect, Selector::parse(path, true)) else {
        return false;
    };
    let mut emptied = false;
    at.any_match(expect, &mut |_, node| {
        emptied = match node {
            Value::Object(map) => map.is_empty(),
            Value::Array(items) => items.is_empty(),
            _ => false,
        };
        false
    });
    emptied
}

/// Whether normalized path `path` lies strictly below normalized path `above`.
fn below(path: &str, above: &str) -> bool {
    path.len() > above.len() && path.starts_with(above) && path[above.len()..].starts_with('[')
}

/// The load-time warnings of every policy, in name order (for `check`).
pub fn warnings(set: &super::PolicySet) -> Vec<Diagnostic> {
    let mut policies: Vec<&super::Policy> = set.by_name.values().map(|p| p.as_ref()).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    policies
        .iter()
        .flat_map(|p| p.warnings.iter().cloned())
        .collect()
}
