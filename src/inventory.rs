//! The integration inventory (`customs inventory`, admin `/inventory`):
//! who owns each connection, what crosses it, until when, and how risky it
//! is.
//!
//! Risk is a score; each point is a reason a reviewer should look first:
//! - boundary: external +2;
//! - classification: internal +1, confidential +2, restricted +3;
//! - sensitive data categories (`pii`, `phi`, `pci`, `financial`, `health`,
//!   `credentials`): +1 each, at most +2;
//! - last review over 365 days ago +2, over 180 days +1;
//! - credentials: any client key without `expires` +1; an upstream
//!   credential or a client credential expiring within 30 days (or expired) +1;
//! - the integration itself expires within 30 days (or has) +1.
//!
//! Levels: 0–2 low, 3–4 medium, 5–6 high, 7+ critical.

use crate::config::{Boundary, Classification, Config, Integration};
use jiff::civil::Date;
use serde::Serialize;

/// Days within which an end date counts as "soon".
pub const SOON_DAYS: i64 = 30;

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
    /// Days since the last review.
    pub days_since_review: i64,
    /// Days until the end date (negative: expired).
    pub days_to_expiry: i64,
    /// Upstream credential end date, if declared.
    pub upstream_credential_expires: Option<String>,
    /// Clients.
    pub clients: Vec<ClientRow>,
    /// Risk score (see module docs).
    pub risk_score: u32,
    /// low | medium | high | critical.
    pub risk: &'static str,
}

/// One client of an integration.
#[derive(Debug, Serialize)]
pub struct ClientRow {
    /// Client id.
    pub id: String,
    /// `api_key`, `mtls` or both.
    pub credential: &'static str,
    /// Credential end date.
    pub expires: Option<String>,
    /// Days until it expires.
    pub days_to_expiry: Option<i64>,
}

const SENSITIVE: [&str; 6] = ["pii", "phi", "pci", "financial", "health", "credentials"];

/// Days between two dates, whatever their distance.
fn span_days(from: Date, to: Date) -> i64 {
    from.until(to).map_or(0, |s| i64::from(s.get_days()))
}

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
            expires: c.expires.map(|d| d.to_string()),
            days_to_expiry: c.expires.map(|d| span_days(today, d)),
        })
        .collect();
    let inject_expires = it.upstream.inject.as_ref().and_then(|i| i.expires);
    let score = risk_score(it, &clients, inject_expires, today);
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
        days_since_review: span_days(it.reviewed, today),
        days_to_expiry: span_days(today, it.expires),
        upstream_credential_expires: inject_expires.map(|d| d.to_string()),
        clients,
        risk_score: score,
        risk: level(score),
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

fn risk_score(it: &Integration, clients: &[ClientRow], inject: Option<Date>, today: Date) -> u32 {
    let soon = |d: Date| span_days(today, d) <= SOON_DAYS;
    let mut score = 0;
    score += if it.boundary == Boundary::External {
        2
    } else {
        0
    };
    score += match it.classification {
        Classification::Public => 0,
        Classification::Internal => 1,
        Classification::Confidential => 2,
        Classification::Restricted => 3,
    };
    let sensitive = it
        .data
        .iter()
        .filter(|d| SENSITIVE.contains(&d.to_ascii_lowercase().as_str()))
        .count();
    score += sensitive.min(2) as u32;
    let review_age = span_days(it.reviewed, today);
    score += if review_age > 365 {
        2
    } else if review_age > 180 {
        1
    } else {
        0
    };
    let keyless = it
        .clients
        .iter()
        .any(|c| !c.key_hashes.is_empty() && c.expires.is_none());
    score += u32::from(keyless);
    let credential_soon = inject.is_some_and(soon)
        || clients
            .iter()
            .any(|c| c.days_to_expiry.is_some_and(|d| d <= SOON_DAYS));
    score += u32::from(credential_soon);
    score += u32::from(soon(it.expires));
    score
}

fn level(score: u32) -> &'static str {
    match score {
        0..=2 => "low",
        3..=4 => "medium",
        5..=6 => "high",
        _ => "critical",
    }
}

/// The inventory as JSON.
pub fn json(config: &Config, today: Date) -> String {
    serde_json::to_string_pretty(&rows(config, today)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_spans() {
        let a = Date::constant(2026, 1, 1);
        let b = Date::constant(2027, 1, 1);
        assert_eq!(span_days(a, b), 365);
        assert_eq!(span_days(b, a), -365);
    }
}
