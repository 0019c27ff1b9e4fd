//! The crossing log (SPEC §4): one hash-chained JSON line per crossing or
//! event, sealed and written by the thread that produced it.
//!
//! - [`record`] — what a crossing leaves in the log ([`Crossing`]).
//! - [`Event`] — records that are not crossings (`reload`, `schema_drift`, …),
//!   in the same chain.
//! - [`chain`] — the line format, the hash definition and [`verify`].
//! - [`writer`] — [`start`] / [`Auditor`]: ordering, batching, rotation,
//!   durability and failure handling.
//!
//! Format in one line (details in [`chain`]):
//! `{"seq":N,"prev":"<hash of line N-1>",<fields…>,"hash":"<hex SHA-256>"}`,
//! where `hash` covers the line's bytes up to `,"hash":` plus a closing `}`.
//!
//! Durability (details in [`writer`]): a record is acknowledged once it is
//! in the OS page cache; it survives a customs crash, and a machine crash
//! loses at most about the last second.

pub mod chain;
pub mod record;
pub mod redact;
pub mod writer;

pub use chain::{Fault, Verified, VerifyError, verify, verify_summary};
pub use record::{Crossing, Direction};
pub use writer::{AuditError, Auditor, start};

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Keys the chain owns; an event's `detail` cannot use them.
const RESERVED: [&str; 6] = ["seq", "prev", "hash", "ts", "event", "integration"];

/// A record that is not a crossing (`reload`, `schema_drift`,
/// `volume_anomaly`, `credential_expiring`, `upstream_credential_failing`,
/// `idle_integration`, `tunnel_closed`). Written as
/// `{"seq":…,"prev":…,"ts":…,"event":…,"integration":…,<detail…>,"hash":…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// RFC 3339 UTC with milliseconds (see [`timestamp`]).
    pub ts: String,
    /// The event kind.
    pub event: &'static str,
    /// The integration concerned, if any.
    pub integration: Option<String>,
    /// Further fields, flattened into the line in key order. Names, counts
    /// and statuses only, never payload values. Keys that collide with the
    /// fields above or with `seq`/`prev`/`hash` are dropped.
    pub detail: BTreeMap<String, Value>,
}

impl Event {
    /// An event of `kind` now, with no detail.
    #[must_use]
    pub fn new(kind: &'static str, integration: Option<String>) -> Self {
        Self {
            ts: timestamp(),
            event: kind,
            integration,
            detail: BTreeMap::new(),
        }
    }

    /// Adds one detail field.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The record's fields as one JSON object.
    fn to_fields(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut map = Map::new();
        map.insert("ts".into(), self.ts.clone().into());
        map.insert("event".into(), self.event.into());
        map.insert("integration".into(), self.integration.clone().into());
        for (key, value) in &self.detail {
            if RESERVED.contains(&key.as_str()) {
                // Our own code picks detail keys; a duplicate key would make
                // the line ambiguous (and unverifiable), so drop it.
                tracing::warn!(event = self.event, key = %key, "audit event detail key is reserved; dropped");
                continue;
            }
            map.insert(key.clone(), value.clone());
        }
        serde_json::to_vec(&map)
    }
}

/// Now, as the log writes times: RFC 3339, UTC, milliseconds
/// (`2026-11-26T09:14:03.271Z`).
#[must_use]
pub fn timestamp() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

/// What is appended to the log.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Entry<'a> {
    /// One crossing.
    Crossing(&'a Crossing),
    /// One event.
    Event(&'a Event),
}

impl Entry<'_> {
    /// The record's fields as one JSON object, without `seq`/`prev`/`hash`.
    fn to_fields(self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Self::Crossing(c) => {
                // A crossing's fields are ~600 bytes: one allocation, no regrowth.
                let mut out = Vec::with_capacity(1024);
                serde_json::to_writer(&mut out, c)?;
                Ok(out)
            }
            Self::Event(e) => e.to_fields(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &Event) -> String {
        String::from_utf8(e.to_fields().expect("serialises")).expect("utf-8")
    }

    #[test]
    fn event_fields_are_flat_and_ordered() {
        let e = Event {
            ts: "2026-11-26T09:14:03.271Z".into(),
            event: "reload",
            integration: None,
            detail: BTreeMap::from([
                ("result".into(), "ok".into()),
                ("policies".into(), 3.into()),
            ]),
        };
        assert_eq!(
            fields(&e),
            r#"{"ts":"2026-11-26T09:14:03.271Z","event":"reload","integration":null,"policies":3,"result":"ok"}"#
        );
    }

    #[test]
    fn reserved_detail_keys_are_dropped() {
        let e = Event::new("schema_drift", Some("acme".into()))
            .with("hash", "x")
            .with("seq", 9)
            .with("event", "other")
            .with("paths", 2);
        let text = fields(&e);
        assert!(
            !text.contains("\"hash\"") && !text.contains("\"seq\""),
            "{text}"
        );
        assert!(
            text.contains(r#""event":"schema_drift""#) && text.contains(r#""paths":2"#),
            "{text}"
        );
    }

    #[test]
    fn timestamp_is_utc_with_milliseconds() {
        let ts = timestamp();
        assert_eq!(ts.len(), "2026-11-26T09:14:03.271Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }
}
