//! `customs inventory`: the integration inventory as a table, JSON or CSV.
//! Secrets are not read: the inventory runs where they are not present.

use anyhow::Context;
use clap::{Args, ValueEnum};
use customs::config;
use customs::inventory::{self, Row, Usage};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum, Debug)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Compute ages and days to expiry as of this day instead of today (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: Option<jiff::civil::Date>,
    #[command(flatten)]
    config: super::ConfigArg,
}

pub fn run(args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    let today = args.as_of.unwrap_or_else(config::warnings::today_utc);
    let opts = config::LoadOptions {
        today,
        resolve_secrets: false,
    };
    let cfg = config::load_checked(&args.config.config, &opts)
        .context("the inventory needs a valid config (see `customs check`)")?;
    let usage = match &cfg.audit.sink {
        config::AuditSink::File(path) => Usage::from_audit_log(path),
        config::AuditSink::Stdout => Usage::default(),
    };
    let rows = inventory::rows(&cfg, today, &usage);
    match args.format {
        Format::Json => println!("{}", inventory::json(&cfg, today, &usage)),
        Format::Csv => print!("{}", csv(&rows)),
        Format::Table => print!("{}", table(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

const COLUMNS: [&str; 10] = [
    "name",
    "owner",
    "boundary",
    "classification",
    "data",
    "review_age_days",
    "days_to_expiry",
    "clients",
    "upstream_credential_expires",
    "risk",
];

/// `2027-01-01 (36d)`, or `expired 2026-11-20 (-6d)`.
fn dated(date: &str, days: i64) -> String {
    if days <= 0 {
        format!("expired {date} ({days}d)")
    } else {
        format!("{date} ({days}d)")
    }
}

fn cells(r: &Row) -> [String; 10] {
    let clients: Vec<String> = r
        .clients
        .iter()
        .map(|c| {
            let expiry = match (&c.expires, c.days_to_expiry) {
                (Some(e), Some(d)) => dated(e, d),
                _ => "no expiry".to_string(),
            };
            let used = c.last_used.as_deref().map_or_else(
                || "never used".to_string(),
                |t| format!("last used {}", t.get(..10).unwrap_or(t)),
            );
            format!("{} ({}, {expiry}, {used})", c.id, c.credential)
        })
        .collect();
    let upstream = match (
        &r.upstream_credential_expires,
        r.upstream_credential_days_to_expiry,
    ) {
        (Some(e), Some(d)) => dated(e, d),
        _ => "-".into(),
    };
    let clients = if clients.is_empty() && r.anonymous {
        "anonymous".to_string()
    } else if clients.is_empty() {
        "none".to_string()
    } else {
        clients.join("; ")
    };
    [
        r.name.clone(),
        r.owner.clone(),
        r.boundary.to_string(),
        r.classification.to_string(),
        r.data.join(" "),
        r.days_since_review.to_string(),
        r.days_to_expiry.to_string(),
        clients,
        upstream,
        format!("{} ({})", r.risk, r.risk_score),
    ]
}

/// RFC 4180 quoting; a cell a spreadsheet would run as a formula gets a
/// leading apostrophe.
fn csv(rows: &[Row]) -> String {
    let quote = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<i64>().is_err() {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    };
    let mut out = COLUMNS.join(",") + "\n";
    for r in rows {
        let line: Vec<String> = cells(r).iter().map(|c| quote(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn table(rows: &[Row]) -> String {
    let all: Vec<[String; 10]> = rows.iter().map(cells).collect();
    let width = |i: usize| {
        all.iter()
            .map(|r| r[i].chars().count())
            .chain([COLUMNS[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..COLUMNS.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(COLUMNS.to_vec());
    for r in &all {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
