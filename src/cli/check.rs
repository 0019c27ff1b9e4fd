//! `customs check`: validate config and policies, run every policy's tests,
//! and warn about risky setups (see `customs::config::warnings`). Errors
//! exit 1; warnings never do.

use clap::Args;
use customs::config;
use customs::diag::{Diagnostic, Severity};
use customs::policy;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Check only this folder of policies, without a config.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Compute date warnings (expiry, review age) as of this day instead of
    /// today (UTC), e.g. `--as-of 2027-01-01` to see what needs attention by then.
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: Option<jiff::civil::Date>,
    #[command(flatten)]
    config: super::ConfigArg,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (set, mut diags) = match &args.policies {
        Some(dir) => policy::load_dir(dir),
        None => {
            let opts = config::LoadOptions {
                today: args.as_of.unwrap_or_else(config::warnings::today_utc),
                ..config::LoadOptions::default()
            };
            let (cfg, mut diags) = config::load_with(&args.config.config, &opts);
            if let Some(cfg) = &cfg {
                diags.extend(tls_problems(cfg));
            }
            (cfg.map(|c| c.policies).unwrap_or_default(), diags)
        }
    };
    diags.extend(policy::warnings(&set));
    let (tests, mut failures) = policy::run_all_tests(&set);
    diags.append(&mut failures);
    for d in &diags {
        println!("{d}");
    }
    // What each policy costs: the tree engine parses and rewrites the whole body.
    let mut names: Vec<&String> = set.by_name.keys().collect();
    names.sort();
    for name in names {
        if let Some(p) = set.get(name) {
            println!("policy '{name}' runs on {}", p.engine.describe());
        }
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

/// What `serve` would refuse to start with: listener certificate, key and
/// client CA, and each upstream's extra CA, loaded as `serve` loads them.
fn tls_problems(cfg: &config::Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(files) = &cfg.tls
        && let Err(e) = customs::proxy::tls::server_config(files)
    {
        out.push(
            Diagnostic::error(&cfg.file, 0, format!("listen.tls: {e}"))
                .hint("cert and key are PEM files of one identity; client_ca holds the CA certificates of callers"),
        );
    }
    for it in cfg
        .integrations
        .iter()
        .filter(|it| it.upstream.ca.is_some())
    {
        if let Err(e) = customs::proxy::client::build(&it.upstream) {
            let msg = format!("integration '{}': upstream.ca: {e}", it.name);
            out.push(
                Diagnostic::error(&cfg.file, it.lines.item, msg).hint(
                    "upstream.ca is a PEM file of CA certificates, relative to the config file",
                ),
            );
        }
    }
    out
}
