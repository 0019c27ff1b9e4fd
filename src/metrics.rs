//! Prometheus metrics (SPEC §5). One struct owns every collector; label
//! values come only from config names and fixed enums — never a path, a
//! value, an address or a request id.

use crate::audit::Auditor;
use crate::audit::record::{Crossing, Direction};
use crate::config::{Config, Route};
use crate::policy::{PolicySet, UnknownFields};
use crate::proxy::auth::FailReason;
use crate::proxy::offload::PoolMeters;
use crate::signals;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};
use std::sync::{Mutex, PoisonError};

/// Label value when a crossing matched no integration or route.
pub const NONE: &str = "-";

/// One integration's series that every crossing moves, resolved once per
/// configuration so that a crossing does not look their labels up.
pub struct Meters {
    duration: Histogram,
    upstream_duration: Histogram,
    /// By direction (request, response), then stage (in, out).
    bytes: [[IntCounter; 2]; 2],
    /// Whether customs injects the upstream credential: only then is an
    /// upstream 401/403 that credential failing.
    injects: bool,
}

impl Meters {
    /// `customs_bytes_total` of the response direction (`in`, `out`), for a
    /// streamed body to count its bytes as they cross.
    pub fn response_bytes(&self) -> [IntCounter; 2] {
        self.bytes[1].clone()
    }

    /// `customs_bytes_total` of the request direction, for a streamed upload.
    pub fn request_bytes(&self) -> [IntCounter; 2] {
        self.bytes[0].clone()
    }
}

/// Every collector, registered once.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_duration: HistogramVec,
    bytes: IntCounterVec,
    actions: IntCounterVec,
    refusals: IntCounterVec,
    auth_failures: IntCounterVec,
    unknown_fields: IntCounterVec,
    /// Anomaly signals by kind.
    pub anomalies: IntCounterVec,
    integration_expiry: GaugeVec,
    credential_expiry: GaugeVec,
    credential_last_used: GaugeVec,
    upstream_auth_failures: IntCounterVec,
    /// Reloads by result.
    pub reloads: IntCounterVec,
    /// Connections and streams the HTTP layer refused before a request
    /// reached customs, by [`ProtocolError`].
    pub protocol_errors: IntCounterVec,
    /// Audit records written (caught up from the log at each scrape).
    audit_records: IntCounter,
    /// Audit records that could not be written, failed syncs included.
    audit_failures: IntCounter,
    /// One scrape at a time catches the audit counters up.
    scrape: Mutex<()>,
    /// The policy threads' series (`proxy::offload`).
    pub policy_jobs: PoolMeters,
}

/// `c`, registered with `r`.
fn registered<C>(r: &Registry, c: C) -> prometheus::Result<C>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    registered(r, GaugeVec::new(Opts::new(name, help), labels)?)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    registered(r, HistogramVec::new(opts, labels)?)
}

impl Metrics {
    /// Registers every collector and sets the expiry gauges from `config`.
    pub fn new(config: &Config) -> prometheus::Result<Self> {
        let r = Registry::new();
        let m = Metrics {
            requests: counter(
                &r,
                "customs_requests_total",
                "Crossings by outcome.",
                &["integration", "route", "outcome"],
            )?,
            duration: histogram(
                &r,
                "customs_request_duration_seconds",
                "Time from request head to response release.",
                &["integration"],
            )?,
            upstream_duration: histogram(
                &r,
                "customs_upstream_duration_seconds",
                "Upstream exchange time, body included.",
                &["integration"],
            )?,
            bytes: counter(
                &r,
                "customs_bytes_total",
                "Body and tunnel bytes by direction and stage (in = received, out = sent on).",
                &["integration", "direction", "stage"],
            )?,
            actions: counter(
                &r,
                "customs_policy_actions_total",
                "Policy actions taken.",
                &["integration", "policy", "rule", "action"],
            )?,
            refusals: counter(
                &r,
                "customs_refusals_total",
                "Refused crossings by direction and reason.",
                &["integration", "direction", "reason"],
            )?,
            auth_failures: counter(
                &r,
                "customs_auth_failures_total",
                "Authentication failures.",
                &["integration", "reason"],
            )?,
            unknown_fields: counter(
                &r,
                "customs_unknown_fields_total",
                "Fields seen outside allow-lists.",
                &["integration", "policy"],
            )?,
            anomalies: counter(
                &r,
                "customs_anomalies_total",
                "Monitoring signals raised.",
                &["integration", "kind"],
            )?,
            integration_expiry: gauge(
                &r,
                "customs_integration_expiry_timestamp_seconds",
                "Integration end date.",
                &["integration"],
            )?,
            credential_expiry: gauge(
                &r,
                "customs_credential_expiry_timestamp_seconds",
                "Credential end date.",
                &["integration", "credential"],
            )?,
            credential_last_used: gauge(
                &r,
                "customs_credential_last_used_timestamp_seconds",
                "Last successful use of a credential.",
                &["integration", "credential"],
            )?,
            upstream_auth_failures: counter(
                &r,
                "customs_upstream_auth_failures_total",
                "Upstream answered 401/403 to a request carrying an injected credential.",
                &["integration"],
            )?,
            reloads: counter(
                &r,
                "customs_config_reloads_total",
                "Configuration reloads by result.",
                &["result"],
            )?,
            protocol_errors: counter(
                &r,
                "customs_protocol_errors_total",
                "Connections or streams refused by the HTTP layer before a request reached customs (malformed or oversized heads, timeouts, HTTP/2 protocol errors, failed TLS handshakes).",
                &["reason"],
            )?,
            audit_records: registered(
                &r,
                IntCounter::new("customs_audit_records_total", "Audit records written.")?,
            )?,
            audit_failures: registered(
                &r,
                IntCounter::new(
                    "customs_audit_failures_total",
                    "Audit records that could not be written.",
                )?,
            )?,
            policy_jobs: PoolMeters {
                jobs: registered(
                    &r,
                    IntCounter::new(
                        "customs_policy_jobs_total",
                        "Bodies governed on a policy thread (large or compressed ones).",
                    )?,
                )?,
                waiting: registered(
                    &r,
                    IntGauge::new(
                        "customs_policy_jobs_waiting",
                        "Bodies waiting for a policy thread; persistently above zero means the policy threads are saturated.",
                    )?,
                )?,
            },
            scrape: Mutex::new(()),
            registry: r,
        };
        m.set_expiries(config);
        Ok(m)
    }

    /// Sets the expiry gauges and exports the series the config makes known
    /// at 0 (on start and on every reload), so that `rate()` and absence
    /// alerts work before the first increment.
    pub fn set_expiries(&self, config: &Config) {
        self.known_series(config);
        self.expiries(config);
    }

    fn known_series(&self, config: &Config) {
        for result in ["ok", "error"] {
            self.reloads.with_label_values(&[result]);
        }
        for reason in ProtocolError::ALL {
            self.protocol_errors.with_label_values(&[reason.as_str()]);
        }
        for it in &config.integrations {
            let name = it.name.as_str();
            for reason in FailReason::ALL {
                self.auth_failures
                    .with_label_values(&[name, reason.as_str()]);
            }
            for kind in signals::KINDS {
                self.anomalies.with_label_values(&[name, kind]);
            }
            if it.upstream.inject.is_some() {
                self.upstream_auth_failures.with_label_values(&[name]);
            }
            let governed = |side: fn(&Route) -> bool| it.routes.iter().any(side);
            if governed(|r| r.request.is_some()) {
                self.refusals
                    .with_label_values(&[name, "request", "policy_refused"]);
            }
            if governed(|r| r.response.is_some()) {
                self.refusals
                    .with_label_values(&[name, "response", "response_refused"]);
            }
            for route in &it.routes {
                self.requests
                    .with_label_values(&[name, &route.id, "forwarded"]);
            }
        }
    }

    fn expiries(&self, config: &Config) {
        // Series of integrations and credentials a reload removed go; the
        // last use of those it kept stays.
        let kept: Vec<([&str; 2], f64)> = config
            .integrations
            .iter()
            .flat_map(|it| {
                it.clients
                    .iter()
                    .map(move |c| [it.name.as_str(), c.id.as_str()])
            })
            .map(|labels| {
                (
                    labels,
                    self.credential_last_used.with_label_values(&labels).get(),
                )
            })
            .collect();
        self.integration_expiry.reset();
        self.credential_expiry.reset();
        self.credential_last_used.reset();
        for (labels, last) in kept {
            // Present from the start: 0 means never used (an orphan).
            self.credential_last_used
                .with_label_values(&labels)
                .set(last);
        }
        for it in &config.integrations {
            self.integration_expiry
                .with_label_values(&[&it.name])
                .set(epoch(it.expires));
            for c in &it.clients {
                if let Some(d) = c.expires {
                    self.credential_expiry
                        .with_label_values(&[&it.name, &c.id])
                        .set(epoch(d));
                }
            }
            if let Some(d) = it.upstream.inject.as_ref().and_then(|i| i.expires) {
                self.credential_expiry
                    .with_label_values(&[&it.name, "upstream"])
                    .set(epoch(d));
            }
        }
    }

    /// Last successful use of each credential since start; an
    /// integration's last crossing is its clients' latest.
    pub fn usage(&self, config: &Config) -> crate::inventory::Usage {
        let mut usage = crate::inventory::Usage::default();
        for it in &config.integrations {
            let mut uses: Vec<(f64, &str)> = it
                .clients
                .iter()
                .map(|c| {
                    (
                        self.credential_last_used
                            .with_label_values(&[&it.name, &c.id])
                            .get(),
                        c.id.as_str(),
                    )
                })
                .filter(|(secs, _)| *secs > 0.0)
                .collect();
            uses.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (secs, client) in uses {
                let ts = jiff::Timestamp::from_second(secs as i64)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                usage.record(&it.name, Some(client), &ts);
            }
        }
        usage
    }

    /// Counts one finished crossing.
    pub fn crossing(
        &self,
        rec: &Crossing,
        auth_failure: Option<FailReason>,
        policies: &PolicySet,
        upstream_secs: Option<f64>,
        meters: Option<&Meters>,
    ) {
        let integration = rec.integration.as_deref().unwrap_or(NONE);
        let route = rec.route.as_deref().unwrap_or(NONE);
        let resolved;
        let meters = match meters {
            Some(m) => m,
            None => {
                resolved = self.meters(integration, false);
                &resolved
            }
        };
        self.requests
            .with_label_values(&[integration, route, rec.outcome])
            .inc();
        meters.duration.observe(rec.duration_us as f64 / 1e6);
        if let Some(secs) = upstream_secs {
            meters.upstream_duration.observe(secs);
        }
        if let Some(reason) = auth_failure {
            self.auth_failures
                .with_label_values(&[integration, reason.as_str()])
                .inc();
        }
        if let (Some(client), None) = (&rec.client, auth_failure) {
            let now = jiff::Timestamp::now().as_second() as f64;
            self.credential_last_used
                .with_label_values(&[integration, client])
                .set(now);
        }
        if meters.injects && matches!(rec.upstream_status, Some(401 | 403)) {
            self.upstream_auth_failures
                .with_label_values(&[integration])
                .inc();
        }
        for (bytes, side) in meters.bytes.iter().zip([&rec.request, &rec.response]) {
            if let Some(side) = side {
                bytes[0].inc_by(side.bytes_in);
                bytes[1].inc_by(side.bytes_out);
                self.actions(integration, side, policies);
            }
        }
    }

    /// The series of `integration` that every crossing moves; `injects`
    /// when customs injects its upstream credential.
    pub fn meters(&self, integration: &str, injects: bool) -> Meters {
        let bytes = |direction| {
            ["in", "out"].map(|stage| {
                self.bytes
                    .with_label_values(&[integration, direction, stage])
            })
        };
        Meters {
            duration: self.duration.with_label_values(&[integration]),
            upstream_duration: self.upstream_duration.with_label_values(&[integration]),
            bytes: [bytes("request"), bytes("response")],
            injects,
        }
    }

    /// Counts the bytes an upgraded connection carried, as `(in, out)` per
    /// direction (request = caller to upstream), when it closes.
    pub fn tunnel_bytes(&self, integration: &str, request: (u64, u64), response: (u64, u64)) {
        for (direction, (bytes_in, bytes_out)) in [("request", request), ("response", response)] {
            self.bytes
                .with_label_values(&[integration, direction, "in"])
                .inc_by(bytes_in);
            self.bytes
                .with_label_values(&[integration, direction, "out"])
                .inc_by(bytes_out);
        }
    }

    fn actions(&self, integration: &str, side: &Direction, policies: &PolicySet) {
        let Some(policy) = policies.get(&side.policy) else {
            return;
        };
        // Fields outside the allow-list get what `unknown_fields` says.
        let unknown = match policy.allow.as_ref().map(|(_, u)| u) {
            Some(UnknownFields::Pass) => "pass",
            Some(UnknownFields::Refuse) => "refuse",
            Some(UnknownFields::Drop) | None => "drop",
        };
        for (rule_id, n) in &side.actions {
            let action = policy
                .rules
                .iter()
                .find(|r| &r.id == rule_id)
                .map_or(unknown, |r| r.action.name());
            // customs' own rewrites: an echoed credential, header values.
            let own = [
                crate::proxy::echo::CREDENTIAL_ECHO,
                crate::proxy::headers::HEADER_REDACT,
            ];
            let action = if own.contains(&rule_id.as_str()) {
                "redact"
            } else {
                action
            };
            self.actions
                .with_label_values(&[integration, &policy.name, rule_id, action])
                .inc_by(*n);
        }
        if let Some(n) = side.actions.get(crate::policy::ALLOW_RULE) {
            self.unknown_fields
                .with_label_values(&[integration, &policy.name])
                .inc_by(*n);
        }
    }

    /// Counts a refusal by direction and error code.
    pub fn refusal(&self, integration: Option<&str>, direction: &str, code: &str) {
        self.refusals
            .with_label_values(&[integration.unwrap_or(NONE), direction, code])
            .inc();
    }

    /// The Prometheus text exposition, with the audit counters of `log`.
    pub fn render(&self, log: &Auditor) -> String {
        {
            let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
            catch_up(&self.audit_records, log.records_written());
            catch_up(&self.audit_failures, log.failures());
        }
        let mut buf = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Why the HTTP layer refused a connection or stream before customs saw a
/// request (label `reason` of `customs_protocol_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// Malformed request line or header (400).
    Malformed,
    /// Request head over the size limit (431).
    HeadTooLarge,
    /// Request head not received within the header timeout.
    HeadTimeout,
    /// The peer closed the connection in the middle of a request.
    Incomplete,
    /// An HTTP/2 connection ended by a protocol error.
    Http2,
    /// A connection that sent no request within the timeout.
    NoRequest,
    /// A TLS handshake that failed or timed out.
    TlsHandshake,
    /// Any other error that ended a connection.
    Other,
}

impl ProtocolError {
    /// Every reason, exported at 0 from the start.
    pub const ALL: [ProtocolError; 8] = [
        ProtocolError::Malformed,
        ProtocolError::HeadTooLarge,
        ProtocolError::HeadTimeout,
        ProtocolError::Incomplete,
        ProtocolError::Http2,
        ProtocolError::NoRequest,
        ProtocolError::TlsHandshake,
        ProtocolError::Other,
    ];

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolError::Malformed => "malformed",
            ProtocolError::HeadTooLarge => "head_too_large",
            ProtocolError::HeadTimeout => "head_timeout",
            ProtocolError::Incomplete => "incomplete",
            ProtocolError::Http2 => "http2",
            ProtocolError::NoRequest => "no_request",
            ProtocolError::TlsHandshake => "tls_handshake",
            ProtocolError::Other => "other",
        }
    }
}

/// Brings a counter mirroring a running total up to `total`.
fn catch_up(counter: &IntCounter, total: u64) {
    let behind = total.saturating_sub(counter.get());
    if behind > 0 {
        counter.inc_by(behind);
    }
}

fn epoch(date: jiff::civil::Date) -> f64 {
    date.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_or(0.0, |z| z.timestamp().as_second() as f64)
}
