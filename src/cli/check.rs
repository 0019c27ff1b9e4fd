//! `customs check`: validate config and policies, run every policy's tests.

use clap::Args;
use customs::config;
use customs::diag::{Diagnostic, Severity};
use customs::policy::{self, Policy, PolicySet};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Check only this folder of policies, without a config.
    #[arg(long)]
    policies: Option<PathBuf>,
    #[command(flatten)]
    config: super::ConfigArg,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (set, mut diags) = match &args.policies {
        Some(dir) => policy::load_dir(dir),
        None => {
            let (cfg, diags) = config::load_with_diagnostics(&args.config.config);
            (cfg.map(|c| c.policies).unwrap_or_default(), diags)
        }
    };
    let (tests, mut failures) = run_all_tests(&set);
    diags.append(&mut failures);
    for d in &diags {
        println!("{d}");
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    println!(
        "{} policies, {tests} tests, {errors} errors, {warnings} warnings",
        set.by_name.len()
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the embedded tests of every policy, in name order.
fn run_all_tests(set: &PolicySet) -> (usize, Vec<Diagnostic>) {
    let mut policies: Vec<&Policy> = set.by_name.values().map(|p| p.as_ref()).collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    let mut total = 0;
    let mut diags = Vec::new();
    for p in policies {
        let (n, failures) = policy::run_tests(p);
        total += n;
        diags.extend(failures.into_iter().map(|f| {
            let msg = format!(
                "policy '{}': test '{}' failed: {}",
                p.name, f.name, f.message
            );
            Diagnostic::error(&p.source, f.line, msg)
        }));
    }
    (total, diags)
}
