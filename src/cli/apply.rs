//! `customs apply POLICY [INPUT]`: one policy over one payload, offline.

use anyhow::{Context, bail};
use clap::Args;
use customs::config;
use customs::json::Bounds;
use customs::policy::document::{Format, apply_bytes};
use customs::policy::{self, Apply, Mode, Policy, names};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status of a refused payload.
const REFUSED: u8 = 3;

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A policy file, or a policy name from the config's policies folder.
    policy: String,
    /// JSON payload file; stdin when absent or `-`.
    input: Option<PathBuf>,
    /// Print every action (rule, path, action) to stderr.
    #[arg(long)]
    report: bool,
    /// Treat the input as NDJSON (one document per line).
    #[arg(long)]
    ndjson: bool,
    /// Content type of the input (`application/x-ndjson` implies --ndjson).
    #[arg(long)]
    content_type: Option<String>,
    #[command(flatten)]
    config: super::ConfigArg,
}

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let (cfg, diags) = config::load_with_diagnostics(&args.config.config);
    let policy = find_policy(&args.policy, cfg.as_ref())?;
    let limits = cfg.as_ref().map(|c| c.limits).unwrap_or_default();
    let bounds = Bounds {
        depth: limits.max_json_depth,
        elements: limits.max_json_elements,
    };
    let hash_key = cfg.as_ref().and_then(|c| c.hash_key.as_ref());
    if policy.needs_hash_key() && hash_key.is_none() {
        // The config may name the key and fail to read it: say why.
        if let Some(why) = diags.iter().find(|d| d.message.contains("hash_key")) {
            bail!(
                "policy '{}' has hash rules, but the key cannot be used:\n{why}",
                policy.name
            );
        }
        bail!(
            "policy '{}' has hash rules, but no key was found: set secrets.hash_key in {} \
             (or point --config / CUSTOMS_CONFIG at the config that has it)",
            policy.name,
            args.config.config.display()
        );
    }
    let input = read_input(args.input.as_deref())?;
    let how = Apply {
        hash_key,
        report: args.report,
    };
    let applied = apply_bytes(&policy, &input, format(args), bounds, &how)
        .context("the payload cannot be governed, so it would be refused")?;
    if args.report {
        report(&policy, &applied.outcome);
    }
    if applied.outcome.blocks(&policy) {
        eprintln!("refused by policy '{}'", policy.name);
        return Ok(ExitCode::from(REFUSED));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&applied.bytes)?;
    if !applied.bytes.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn format(args: &ApplyArgs) -> Format {
    let by_type = args.content_type.as_deref().map(names::essence);
    if args.ndjson || by_type.as_deref().is_some_and(names::is_ndjson) {
        Format::Ndjson
    } else {
        Format::Json
    }
}

/// A path to a file, else a name in the config's policies folder.
fn find_policy(
    policy: &str,
    cfg: Option<&config::Config>,
) -> anyhow::Result<std::sync::Arc<Policy>> {
    let path = Path::new(policy);
    if path.is_file() {
        return policy::load_file(path)
            .map(std::sync::Arc::new)
            .map_err(|d| anyhow::anyhow!("{}", customs::diag::Diagnostics(d)));
    }
    match cfg.and_then(|c| c.policies.get(policy)) {
        Some(p) => Ok(p.clone()),
        None => bail!(
            "no policy file '{policy}' and no policy of that name in the config's policies folder"
        ),
    }
}

fn read_input(input: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match input {
        Some(p) if p != Path::new("-") => {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
            Ok(buf)
        }
    }
}

fn report(policy: &Policy, outcome: &policy::Outcome) {
    let mut err = std::io::stderr().lock();
    if policy.mode == Mode::Monitor {
        let _ = writeln!(
            err,
            "monitor mode: nothing was changed; these actions would be taken:"
        );
    }
    for a in &outcome.report {
        let _ = writeln!(err, "{}\t{}\t{}", a.rule, a.action, a.path);
    }
    if let Some(r) = &outcome.refused {
        let _ = writeln!(err, "refused: rule '{}' at {}", r.rule, r.path);
    }
}
