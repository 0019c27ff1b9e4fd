//! `customs discover` and `customs draft`: what the running proxy's
//! discovery has seen (admin `/discovery`) and a policy drafted from it
//! (admin `/ui/api/draft`). Both ask the admin listener of the config (or
//! `--admin`), with `CUSTOMS_ADMIN_TOKEN` as bearer token when set.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use customs::config;
use customs::discovery::RouteReport;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum, Debug)]
pub enum Format {
    Table,
    Json,
}

/// Where the admin listener is.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Admin listener address (host:port); default: `admin.address` of the config.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    #[command(flatten)]
    config: super::ConfigArg,
}

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args, Debug)]
pub struct DraftArgs {
    /// Integration name.
    #[arg(long)]
    integration: String,
    /// Route id.
    #[arg(long)]
    route: String,
    /// request | response.
    #[arg(long, value_parser = ["request", "response"])]
    direction: String,
    /// Write the policy here instead of stdout (refuses to overwrite).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    admin: AdminArgs,
}

pub fn discover(args: &DiscoverArgs) -> anyhow::Result<ExitCode> {
    let body = get(&args.admin, "/discovery")?;
    match args.format {
        Format::Json => println!("{body}"),
        Format::Table => {
            let routes: Vec<RouteReport> =
                serde_json::from_str(&body).context("unexpected /discovery answer")?;
            print!("{}", table(&routes));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn draft(args: &DraftArgs) -> anyhow::Result<ExitCode> {
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !plain(&args.integration) || !plain(&args.route) {
        bail!("integration and route are names from the config (letters, digits, - _ .)");
    }
    let path = format!(
        "/ui/api/draft?integration={}&route={}&direction={}",
        args.integration, args.route, args.direction
    );
    let policy = get(&args.admin, &path)?;
    match &args.output {
        None => print!("{policy}"),
        Some(file) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            f.write_all(policy.as_bytes())?;
            eprintln!("wrote {}; check it with `customs check`", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(routes: &[RouteReport]) -> String {
    let mut out = String::new();
    for r in routes {
        out.push_str(&format!(
            "{} / {} ({}): {} sampled bodies\n",
            r.integration,
            r.route,
            r.direction.name(),
            r.bodies
        ));
        for f in &r.fields {
            let hits: Vec<String> = f
                .detectors
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            out.push_str(&format!(
                "  {:<60} {:<14} {:>8} bodies  {}\n",
                f.path,
                f.types.join("/"),
                f.bodies,
                hits.join(", ")
            ));
        }
        if r.dropped_fields > 0 {
            out.push_str(&format!(
                "  ({} paths not kept: the route's field table is full)\n",
                r.dropped_fields
            ));
        }
    }
    if routes.is_empty() {
        out.push_str("nothing sampled yet: governed bodies are sampled as they cross (monitor mode is enough)\n");
    }
    out
}

/// GET on the admin listener; the body of a 200, else an error naming the status.
fn get(args: &AdminArgs, path: &str) -> anyhow::Result<String> {
    let addr = match args.admin {
        Some(a) => a,
        None => admin_of(&args.config.config)?,
    };
    let token = std::env::var("CUSTOMS_ADMIN_TOKEN").ok();
    let auth = token.map_or(String::new(), |t| {
        format!("Authorization: Bearer {}\r\n", t.trim())
    });
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
        format!("cannot reach the admin listener on {addr} (is `customs serve` running?)")
    })?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    // HTTP/1.0: the answer is delimited by the connection's end, never chunked.
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n")?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let raw =
        String::from_utf8(raw).context("the admin listener answered something that is not text")?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    match status {
        "200" => Ok(body.to_string()),
        "401" => bail!("the admin listener needs its token: set CUSTOMS_ADMIN_TOKEN"),
        _ => bail!("{path}: {status} {}", body.trim()),
    }
}

fn admin_of(file: &std::path::Path) -> anyhow::Result<SocketAddr> {
    let opts = config::LoadOptions {
        resolve_secrets: false,
        ..config::LoadOptions::default()
    };
    let cfg =
        config::load_checked(file, &opts).context("pass --admin ADDR, or a valid --config")?;
    cfg.admin
        .context("the config has no admin listener: pass --admin ADDR")
}
