//! `customs inventory`: the integration inventory as a table, JSON or CSV.

use anyhow::Context;
use clap::{Args, ValueEnum};
use customs::config;
use customs::inventory::{self, Row};
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
    #[command(flatten)]
    config: super::ConfigArg,
}

pub fn run(args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    let cfg = config::load(&args.config.config).context("the inventory needs a valid config")?;
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let rows = inventory::rows(&cfg, today);
    match args.format {
        Format::Json => println!("{}", inventory::json(&cfg, today)),
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

fn cells(r: &Row) -> [String; 10] {
    let clients: Vec<String> = r
        .clients
        .iter()
        .map(|c| match c.days_to_expiry {
            Some(d) => format!("{} ({}, {d}d)", c.id, c.credential),
            None => format!("{} ({}, no expiry)", c.id, c.credential),
        })
        .collect();
    [
        r.name.clone(),
        r.owner.clone(),
        r.boundary.to_string(),
        r.classification.to_string(),
        r.data.join(" "),
        r.days_since_review.to_string(),
        r.days_to_expiry.to_string(),
        clients.join("; "),
        r.upstream_credential_expires
            .clone()
            .unwrap_or_else(|| "-".into()),
        format!("{} ({})", r.risk, r.risk_score),
    ]
}

fn csv(rows: &[Row]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
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
