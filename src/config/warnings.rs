//! `customs check` warnings: valid but risky setups, each at the `file:line`
//! of the integration, client or route concerned, with a hint. Warnings never
//! stop a config from loading and never make `check` fail.
//!
//! Everything date-based is computed for a given day ([`check`] takes it as a
//! parameter) so that `check --as-of DATE` can preview what will need
//! attention, and tests are deterministic. Days are whole UTC days, as in the
//! proxy: an end date is the first day that is refused.
//!
//! Warned about:
//! - an integration that expires within [`SOON_DAYS`] days, or has expired;
//! - a client credential, or an upstream `inject.expires`, within
//!   [`SOON_DAYS`] days or past; an API-key client without `expires`;
//! - a `reviewed` date over [`REVIEW_MAX_DAYS`] days ago (or in the future);
//! - `pass` in either direction on an `external` integration whose `data`
//!   includes `pii`;
//! - `anonymous: true` on an `external` integration;
//! - routes no caller may use: the integration has no clients and is not
//!   anonymous, or every client has a `routes` subset and none lists the
//!   route;
//! - clients identified by certificate while `listen.tls.client_ca` is not
//!   set (they can never authenticate);
//! - a `san` written without its type (`dns:`, `uri:`, `email:`).

use super::{Boundary, Config, Integration, MtlsIdentity};
use crate::diag::Diagnostic;
use crate::policy::names::NameFilter;
use jiff::civil::Date;
use std::path::Path;

/// Days within which an end date counts as soon.
pub const SOON_DAYS: i64 = 30;
/// Age after which a security review is stale.
pub const REVIEW_MAX_DAYS: i64 = 365;

/// Today in UTC (end dates are whole UTC days).
pub fn today_utc() -> Date {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: Date, to: Date) -> i64 {
    from.until(to).map_or(0, |s| i64::from(s.get_days()))
}

/// Warnings for a validated config as of `today`.
pub fn check(config: &Config, today: Date) -> Vec<Diagnostic> {
    let mut w = Warnings {
        file: &config.file,
        out: Vec::new(),
    };
    let mtls_possible = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    for it in &config.integrations {
        w.dates(it, today);
        w.exposure(it);
        w.unusable_routes(it);
        w.response_query_rules(it);
        if !mtls_possible {
            w.mtls_without_client_ca(it);
        }
        w.untyped_sans(it);
    }
    w.open_admin(config);
    w.out
}

struct Warnings<'a> {
    file: &'a Path,
    out: Vec<Diagnostic>,
}

/// "expired on D" / "expires today" / "expires in N days (D)".
fn when(date: Date, today: Date) -> String {
    match days_between(today, date) {
        d if d < 0 => format!("expired on {date}, {} days ago", -d),
        0 => format!("expired today ({date})"),
        1 => format!("expires tomorrow ({date})"),
        d => format!("expires in {d} days ({date})"),
    }
}

fn soon(date: Date, today: Date) -> bool {
    days_between(today, date) <= SOON_DAYS
}

impl Warnings<'_> {
    fn warn(&mut self, line: u64, message: String, hint: &str) {
        self.out
            .push(Diagnostic::warning(self.file, line, message).hint(hint));
    }

    /// `/ui`, `/inventory` and `/discovery` describe every integration: beyond loopback they
    /// need the token.
    fn open_admin(&mut self, config: &Config) {
        let Some(addr) = config.admin else { return };
        if !addr.ip().is_loopback() && config.admin_token.is_none() {
            self.warn(
                config.admin_line,
                format!("the admin listener on {addr} is not on loopback and has no token"),
                "anyone who reaches it reads the inventory and the discovered fields: set admin.token (sha256: of a token from `customs keygen`), or listen on 127.0.0.1",
            );
        }
    }

    fn dates(&mut self, it: &Integration, today: Date) {
        let name = &it.name;
        if soon(it.expires, today) {
            let hint = if today >= it.expires {
                "every request is refused (403 integration_expired); remove the integration, or extend expires after a review"
            } else {
                "from that day on every request is refused (403 integration_expired); extend expires after a review, or plan the shutdown"
            };
            let msg = format!("integration '{name}' {}", when(it.expires, today));
            self.warn(it.lines.expires, msg, hint);
        }
        let review_age = days_between(it.reviewed, today);
        if review_age > REVIEW_MAX_DAYS {
            self.warn(
                it.lines.reviewed,
                format!(
                    "integration '{name}' was last reviewed {review_age} days ago ({})",
                    it.reviewed
                ),
                "review owner, purpose, data and clients, then update reviewed:",
            );
        } else if review_age < 0 {
            self.warn(
                it.lines.reviewed,
                format!(
                    "integration '{name}' has a review date in the future ({})",
                    it.reviewed
                ),
                "reviewed: is the day the last review took place",
            );
        }
        for c in &it.clients {
            match c.expires {
                Some(d) if soon(d, today) => {
                    let hint = if today >= d {
                        "the client is refused (403 forbidden); issue a new key with `customs keygen` and list both hashes while callers switch, or remove the client"
                    } else {
                        "rotate it: `customs keygen`, add the new hash next to the old one (api_key: [old, new]), then set a new expires"
                    };
                    let msg = format!(
                        "credential of client '{}' of '{name}' {}",
                        c.id,
                        when(d, today)
                    );
                    self.warn(c.line, msg, hint);
                }
                None if !c.key_hashes.is_empty() => {
                    let msg = format!("API key of client '{}' of '{name}' never expires", c.id);
                    self.warn(
                        c.line,
                        msg,
                        "set expires: so the key is rotated, e.g. within a year",
                    );
                }
                _ => {}
            }
        }
        if let Some(inject) = &it.upstream.inject
            && let Some(d) = inject.expires.filter(|d| soon(*d, today))
        {
            let msg = format!("upstream credential of '{name}' {}", when(d, today));
            let hint = "obtain a new credential from the partner, update the secret it is read from (picked up without a restart) and inject.expires";
            self.warn(inject.line, msg, hint);
        }
    }

    fn exposure(&mut self, it: &Integration) {
        if it.boundary != Boundary::External {
            return;
        }
        if it.anonymous {
            self.warn(
                it.lines.item,
                format!(
                    "integration '{}' is external and admits anonymous callers",
                    it.name
                ),
                "anyone who reaches the listener can cross; add clients with API keys or certificates and remove anonymous: true",
            );
        }
        if !it.data.iter().any(|d| d.eq_ignore_ascii_case("pii")) {
            return;
        }
        for r in &it.routes {
            let dirs: Vec<&str> = [("request", &r.request), ("response", &r.response)]
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(d, _)| *d)
                .collect();
            if dirs.is_empty() {
                continue;
            }
            self.warn(
                r.line,
                format!(
                    "route '{}' of external integration '{}' carries pii but its {} {} pass (unfiltered)",
                    r.id,
                    it.name,
                    dirs.join(" and "),
                    if dirs.len() == 1 { "policy is" } else { "policies are" }
                ),
                "name a policy that drops, masks or redacts personal data, or set mode: monitor on one to see what crosses",
            );
        }
    }

    /// A response has no query string: `query:` rules of a response policy
    /// never apply, which the author likely did not mean.
    fn response_query_rules(&mut self, it: &Integration) {
        for r in &it.routes {
            let Some(p) = r.response.as_deref() else {
                continue;
            };
            if !matches!(p.query, NameFilter::KeepAll) {
                self.warn(
                    r.line,
                    format!(
                        "route '{}' of '{}': response policy '{}' has query rules, which never apply to a response",
                        r.id, it.name, p.name
                    ),
                    "move the query rules to the route's request policy",
                );
            }
        }
    }

    fn unusable_routes(&mut self, it: &Integration) {
        if it.anonymous {
            return;
        }
        if it.clients.is_empty() {
            if !it.routes.is_empty() {
                self.warn(
                    it.lines.item,
                    format!(
                        "integration '{}' has no clients and is not anonymous: none of its routes can be used",
                        it.name
                    ),
                    "add a client (api_key from `customs keygen`, or mtls), or remove the integration",
                );
            }
            return;
        }
        if it.clients.iter().any(|c| c.routes.is_none()) {
            return;
        }
        for r in &it.routes {
            let used = it
                .clients
                .iter()
                .filter_map(|c| c.routes.as_ref())
                .any(|rs| rs.contains(&r.id));
            if !used {
                self.warn(
                    r.line,
                    format!(
                        "no client of '{}' may use route '{}': every client has a routes subset without it",
                        it.name, r.id
                    ),
                    "add the route to a client's routes, or remove the route",
                );
            }
        }
    }

    fn untyped_sans(&mut self, it: &Integration) {
        for c in &it.clients {
            if let Some(MtlsIdentity::San { san, typed: false }) = &c.mtls {
                self.warn(
                    c.line,
                    format!("client '{}' of '{}': san is read as {san}", c.id, it.name),
                    "write the SAN's type (dns:, uri: or email:) so no other kind of name can match it",
                );
            }
        }
    }

    fn mtls_without_client_ca(&mut self, it: &Integration) {
        for c in it.clients.iter().filter(|c| c.mtls.is_some()) {
            self.warn(
                c.line,
                format!(
                    "client '{}' of '{}' is identified by certificate, but listen.tls.client_ca is not set",
                    c.id, it.name
                ),
                "set listen.tls (cert, key, client_ca) so callers can present certificates",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_of_dates() {
        let today = Date::constant(2026, 11, 26);
        assert_eq!(
            when(Date::constant(2026, 11, 20), today),
            "expired on 2026-11-20, 6 days ago"
        );
        assert_eq!(when(today, today), "expired today (2026-11-26)");
        assert_eq!(
            when(Date::constant(2026, 12, 6), today),
            "expires in 10 days (2026-12-06)"
        );
        assert!(soon(Date::constant(2026, 12, 26), today));
        assert!(!soon(Date::constant(2026, 12, 27), today));
        assert_eq!(days_between(Date::constant(2027, 1, 1), today), -36);
    }
}
