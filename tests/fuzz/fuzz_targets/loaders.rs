//! The config and policy loaders on arbitrary text: the same input is read as
//! a policy file (compiled, and its embedded tests run) and as `customs.yaml`
//! (loaded from a file next to a policies folder, secrets parsed, not read).
//!
//! Invariants: nothing panics; a refusal says why, and a policy's diagnostics
//! name its file and a line within it.
#![no_main]

use customs::config::{self, LoadOptions};
use customs::policy;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match policy::compile(Path::new("fuzz.yaml"), text) {
        Ok(compiled) => {
            policy::run_tests(&compiled);
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "a refused policy says why");
            // YAML breaks lines at LF, CRLF and a lone CR alike.
            let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() as u64 + 1;
            for d in &diags {
                assert_eq!(
                    d.file,
                    Path::new("fuzz.yaml"),
                    "diagnostic names another file"
                );
                assert!(d.line <= lines, "diagnostic points past the end: {d:?}");
            }
        }
    }
    let dir = customs_fuzz::scratch();
    let policies = dir.join("policies");
    if !policies.exists() {
        std::fs::create_dir_all(&policies).expect("policies dir");
        let policy = include_str!("../../../policies/payment-data.yaml");
        std::fs::write(policies.join("payment-data.yaml"), policy).expect("policy file");
    }
    let file = dir.join("customs.yaml");
    std::fs::write(&file, data).expect("config file");
    let opts = LoadOptions {
        resolve_secrets: false,
        ..LoadOptions::default()
    };
    let (loaded, diags) = config::load_with(&file, &opts);
    if loaded.is_none() {
        assert!(!diags.is_empty(), "a refused config says why");
    }
});
