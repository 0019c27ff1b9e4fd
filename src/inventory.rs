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
}

const SENSITIVE: [&str; 6] = ["pii", "phi", "pci", "financial", "health", "credentials"];

/// Builds the rows as of `today`.
pub fn rows(config: &Config, today: Date) -> Vec<Row> {
    config
        .integrations
        .iter()
        .map(|it| row(it, today))
        .collect()
}

fn row(it: &Integration, today: Date) -> Row {
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
pub fn json(config: &Config, today: Date) -> String {
    serde_json::to_string_pretty(&rows(config, today)).unwrap_or_default()
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
