//! Loading policy files from disk.

use super::{Policy, compile};
use crate::config::read;
use crate::diag::Diagnostic;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every policy of a folder, by name.
#[derive(Debug, Default)]
pub struct PolicySet {
    /// Policies by name.
    pub by_name: HashMap<String, Arc<Policy>>,
}

impl PolicySet {
    /// The policy of this name.
    pub fn get(&self, name: &str) -> Option<&Arc<Policy>> {
        self.by_name.get(name)
    }
}

/// Reads and compiles one policy file.
pub fn load_file(file: &Path) -> Result<Policy, Vec<Diagnostic>> {
    let text = read::read_text(file, read::MAX_CONFIG_BYTES).map_err(|e| {
        vec![Diagnostic::error(
            file,
            0,
            format!("cannot read policy file: {e}"),
        )]
    })?;
    compile(file, &text)
}

/// Loads every `*.yaml`/`*.yml` file of `dir`. Returns what loaded and every
/// problem found; duplicate policy names are errors.
pub fn load_dir(dir: &Path) -> (PolicySet, Vec<Diagnostic>) {
    let mut set = PolicySet::default();
    let mut diags = Vec::new();
    let files = match policy_files(dir) {
        Ok(files) => files,
        Err(e) => {
            let d = Diagnostic::error(dir, 0, format!("cannot read policies folder: {e}"));
            return (
                set,
                vec![d.hint("set `policies:` in customs.yaml to an existing folder")],
            );
        }
    };
    let mut first_seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok(policy) => {
                if let Some(other) = first_seen.get(&policy.name) {
                    let msg = format!(
                        "duplicate policy name '{}' (also in {})",
                        policy.name,
                        other.display()
                    );
                    diags
                        .push(Diagnostic::error(&file, 1, msg).hint("policy names must be unique"));
                    continue;
                }
                first_seen.insert(policy.name.clone(), file);
                set.by_name.insert(policy.name.clone(), Arc::new(policy));
            }
            Err(mut d) => diags.append(&mut d),
        }
    }
    (set, diags)
}

/// Policy files of a folder (`*.yaml`, `*.yml`), sorted so diagnostics come
/// in a stable order; the reload watcher looks at the same files.
pub fn policy_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}
