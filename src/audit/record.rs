//! What one crossing leaves in the log (SPEC §4). Built by the pipeline from
//! decisions only: names, counts, sizes, statuses — never payload values,
//! keys or secrets.

use serde::Serialize;
use std::collections::BTreeMap;

/// One crossing, before the writer adds `seq`, `prev` and `hash`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Crossing {
    /// RFC 3339 UTC with milliseconds, when the crossing finished.
    pub ts: String,
    /// The id customs gave the request (also sent upstream and to the caller).
    pub request_id: String,
    /// Integration name, when one matched.
    pub integration: Option<String>,
    /// Route id, when one matched.
    pub route: Option<String>,
    /// Client id, when the caller was identified.
    pub client: Option<String>,
    /// `api_key` | `mtls` when the caller was authenticated so, `none`
    /// otherwise (anonymous integrations, and crossings refused before or
    /// at authentication). Always set in sealed records.
    pub auth: Option<&'static str>,
    /// Request method.
    pub method: String,
    /// Path as forwarded (or as normalised when not forwarded); query values elided.
    pub path: String,
    /// Status sent to the caller.
    pub status: u16,
    /// Status the upstream answered, when it did.
    pub upstream_status: Option<u16>,
    /// forwarded | refused | denied | expired | no_route | upstream_error | rejected.
    pub outcome: &'static str,
    /// `enforce`, or `monitor` when a monitor-mode policy ran.
    pub mode: &'static str,
    /// Why the crossing was refused (rule, check); never payload values.
    pub reason: Option<String>,
    /// Request direction.
    pub request: Option<Direction>,
    /// Response direction.
    pub response: Option<Direction>,
    /// Time from request head to response release.
    pub duration_us: u64,
}

/// One direction of a crossing.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Direction {
    /// Policy name, or `pass`.
    pub policy: String,
    /// SHA-256 of the policy file; absent for `pass`.
    pub policy_sha256: Option<String>,
    /// Body bytes received.
    pub bytes_in: u64,
    /// Body bytes sent on.
    pub bytes_out: u64,
    /// Nodes acted on, per rule id.
    pub actions: BTreeMap<String, u64>,
    /// Wildcarded paths seen outside the allow-list.
    pub unknown_fields: Vec<String>,
    /// Drift candidates of a sampled body on a policy without allow-list:
    /// path hash and wildcarded path. For the signals only, not the log
    /// (the `schema_drift` event carries the paths).
    #[serde(skip)]
    pub new_paths: Vec<(u64, String)>,
}
