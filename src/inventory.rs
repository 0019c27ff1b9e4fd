//! The integration inventory (`customs inventory`, admin `/inventory`):
//! who owns each connection, what crosses it, until when, and how risky it
//! is. Both print the JSON of [`json`]; the CLI also renders it as a table or
//! CSV.
//!
//! Risk is a score; each point is a reason a reviewer should look first, and
//! every row lists its reasons (`risk_reasons`):
//! - boundary: external +2;
//! - classification: internal +1, confidential +2, restricted +3;
//! - sensitive data categories (`pii`, `phi`, `pci`, `financial`, `health`,
//!   `credentials`): +1 each, at most +2;
//! - last review over 365 days ago +2, over 180 days +1;
//! - anonymous callers admitted +2;
//! - credentials: any client API key without `expires` +1; an upstream
//!   credential or a client credential expiring within 30 days (or expired) +1;
//! - the integration itself expires within 30 days (or has) +1.
//!
//! Levels: 0–2 low, 3–4 medium, 5–6 high, 7+ critical.

use crate::config::warnings::days_between;
use crate::config::{Boundary, Classification, Config, Integration};
use jiff::civil::Date;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

pub use crate::config::warnings::SOON_DAYS;

/// One inventory row.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Integration name.
    pub name: String,
    /// Owner contact.
    pub owner: String,
    /// Why it exists.
    pub purpose: String,
    /// internal | external.
    pub boundary: &'static str,
    /// Classification.
    pub classification: &'static str,
    /// Data categories.
    pub data: Vec<String>,
    /// Last review (YYYY-MM-DD).
    pub reviewed: String,
    /// Days since the last review.
    pub days_since_review: i64,
    /// End date (YYYY-MM-DD): refused from this day on.
    pub expires: String,
    /// Days until the end date (0 or negative: expired).
    pub days_to_expiry: i64,
    /// Whether unauthenticated callers are admitted.
    pub anonymous: bool,
    /// Upstream credential end date, if declared.
    pub upstream_credential_expires: Option<String>,
    /// Days until the upstream credential expires, if declared.
    pub upstream_credential_days_to_expiry: Option<i64>,
    /// Last forwarded crossing, when known (an idle integration is a
    /// decommissioning candidate).
    pub last_crossing: Option<String>,
    /// Clients.
    pub clients: Vec<ClientRow>,
    /// Risk score (see module docs).
    pub risk_score: u32,
    /// low | medium | high | critical.
    pub risk: &'static str,
    /// What the score is made of.
    pub risk_reasons: Vec<String>,
}

/// One client of an integration.
#[derive(Debug, Serialize)]
pub struct ClientRow {
    /// Client id.
    pub id: String,
    /// `api_key`, `mtls` or `api_key+mtls`.
    pub credential: &'static str,
    /// Number of valid API key hashes (2 while a key rotates).
    pub api_keys: usize,
    /// Route subset; `None` = every route.
    pub routes: Option<Vec<String>>,
    /// Credential end date.
    pub expires: Option<String>,
    /// Days until it expires (0 or negative: expired).
    pub days_to_expiry: Option<i64>,
    /// Last successful use, when known (an unused credential is an orphan).
    pub last_used: Option<String>,
}

/// When integrations and credentials were last used: from the crossing log
/// (`customs inventory`) or from the running proxy (admin `/inventory`).
#[derive(Debug, Default, Clone)]
pub struct Usage {
    clients: HashMap<(String, String), String>,
    integrations: HashMap<String, String>,
}

impl Usage {
    /// Notes a forwarded crossing at `ts` (RFC 3339; later calls win).
    pub fn record(&mut self, integration: &str, client: Option<&str>, ts: &str) {
        self.integrations
            .insert(integration.to_string(), ts.to_string());
        if let Some(client) = client {
            self.clients.insert(
                (integration.to_string(), client.to_string()),
                ts.to_string(),
            );
        }
    }

    /// Adds `other`'s uses, keeping the later time of each.
    pub fn merge(&mut self, other: &Usage) {
        fn later(into: &mut String, ts: &str) {
            let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
            if parse(ts) > parse(into) {
                *into = ts.to_string();
            }
        }
        for (k, ts) in &other.integrations {
            later(self.integrations.entry(k.clone()).or_default(), ts);
        }
        for (k, ts) in &other.clients {
            later(self.clients.entry(k.clone()).or_default(), ts);
        }
    }

    /// Scans a crossing log; unreadable or foreign lines are skipped (the
    /// log is checked by `customs audit verify`, not here).
    pub fn from_audit_log(path: &Path) -> Usage {
        #[derive(serde::Deserialize)]
        struct Line {
            ts: Option<String>,
            integration: Option<String>,
            client: Option<String>,
            outcome: Option<String>,
        }
        let mut usage = Usage::default();
        let Ok(file) = std::fs::File::open(path) else {
            return usage;
        };
        // By bytes: one line that is not UTF-8 must not end the scan.
        for line in
            std::io::BufRead::split(std::io::BufReader::new(file), b'\n').map_while(Result::ok)
        {
            let Ok(l) = serde_json::from_slice::<Line>(&line) else {
                continue;
            };
            if let (Some(ts), Some(it), Some("forwarded")) =
                (&l.ts, &l.integration, l.outcome.as_deref())
            {
                usage.record(it, l.client.as_deref(), ts);
            }
        }
        usage
    }
}

const SENSITIVE: [&str; 6] = ["pii", "phi", "pci", "financial", "health", "credentials"];

/// Builds the rows as of `today`.
pub fn rows(config: &Config, today: Date, usage: &Usage) -> Vec<Row> {
    config
        .integrations
        .iter()
        .map(|it| row(it, today, usage))
        .collect()
}

fn row(it: &Integration, today: Date, usage: &Usage) -> Row {
    let clients: Vec<ClientRow> = it
        .clients
        .iter()
        .map(|c| ClientRow {
            id: c.id.clone(),
            credential: match (c.key_hashes.is_empty(), c.mtls.is_some()) {
                (false, true) => "api_key+mtls",
                (false, false) => "api_key",
                _ => "mtls",
            },
            api_keys: c.key_hashes.len(),
            routes: c.routes.clone(),
            expires: c.expires.map(|d| d.to_string()),
            days_to_expiry: c.expires.map(|d| days_between(today, d)),
            last_used: usage.clients.get(&(it.name.clone(), c.id.clone())).cloned(),
        })
        .collect();
    let inject_expires = it.upstream.inject.as_ref().and_then(|i| i.expires);
    let reasons = risk_reasons(it, &clients, inject_expires, today);
    let score = reasons.iter().map(|(points, _)| points).sum();
    Row {
        name: it.name.clone(),
        owner: it.owner.clone(),
        purpose: it.purpose.clone(),
        boundary: match it.boundary {
            Boundary::Internal => "internal",
            Boundary::External => "external",
        },
        classification: classification(it.classification),
        data: it.data.clone(),
        reviewed: it.reviewed.to_string(),
        days_since_review: days_between(it.reviewed, today),
        expires: it.expires.to_string(),
        days_to_expiry: days_between(today, it.expires),
        anonymous: it.anonymous,
        upstream_credential_expires: inject_expires.map(|d| d.to_string()),
        upstream_credential_days_to_expiry: inject_expires.map(|d| days_between(today, d)),
        last_crossing: usage.integrations.get(&it.name).cloned(),
        clients,
        risk_score: score,
        risk: level(score),
        risk_reasons: reasons
            .into_iter()
            .map(|(points, why)| format!("+{points} {why}"))
            .collect(),
    }
}

fn classification(c: Classification) -> &'static str {
    match c {
        Classification::Public => "public",
        Classification::Internal => "internal",
        Classification::Confidential => "confidential",
        Classification::Restricted => "restricted",
    }
}

/// The risk rule of the module docs: (points, reason) pairs, none zero.
fn risk_reasons(
    it: &Integration,
    clients: &[ClientRow],
    inject: Option<Date>,
    today: Date,
) -> Vec<(u32, String)> {
    let soon = |d: Date| days_between(today, d) <= SOON_DAYS;
    let mut out = Vec::new();
    if it.boundary == Boundary::External {
        out.push((2, "external boundary".to_string()));
    }
    let class = match it.classification {
        Classification::Public => 0,
        Classification::Internal => 1,
        Classification::Confidential => 2,
        Classification::Restricted => 3,
    };
    if class > 0 {
        out.push((class, format!("{} data", classification(it.classification))));
    }
    let sensitive: Vec<&str> = it
        .data
        .iter()
        .map(String::as_str)
        .filter(|d| SENSITIVE.contains(&d.to_ascii_lowercase().as_str()))
        .collect();
    if !sensitive.is_empty() {
        let points = sensitive.len().min(2) as u32;
        out.push((points, format!("sensitive data: {}", sensitive.join(", "))));
    }
    let review_age = days_between(it.reviewed, today);
    if review_age > 180 {
        let points = if review_age > 365 { 2 } else { 1 };
        out.push((points, format!("last review {review_age} days ago")));
    }
    if it.anonymous {
        out.push((2, "anonymous callers admitted".to_string()));
    }
    if it
        .clients
        .iter()
        .any(|c| !c.key_hashes.is_empty() && c.expires.is_none())
    {
        out.push((1, "an API key without expires".to_string()));
    }
    let credential_soon = inject.is_some_and(soon)
        || clients
            .iter()
            .any(|c| c.days_to_expiry.is_some_and(|d| d <= SOON_DAYS));
    if credential_soon {
        out.push((
            1,
            format!("a credential expires within {SOON_DAYS} days or has expired"),
        ));
    }
    if soon(it.expires) {
        out.push((
            1,
            format!("integration expires within {SOON_DAYS} days or has expired"),
        ));
    }
    out
}

fn level(score: u32) -> &'static str {
    match score {
        0..=2 => "low",
        3..=4 => "medium",
        5..=6 => "high",
        _ => "critical",
    }
}

/// The inventory as JSON (an array of [`Row`]).
pub fn json(config: &Config, today: Date, usage: &Usage) -> String {
    serde_json::to_string_pretty(&rows(config, today, usage)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level(0), "low");
        assert_eq!(level(2), "low");
        assert_eq!(level(3), "medium");
        assert_eq!(level(6), "high");
        assert_eq!(level(7), "critical");
    }
}
