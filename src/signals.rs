//! Monitoring signals (SPEC §4 events, §5 `customs_anomalies_total`).
//!
//! Each signal is three things at once: an audit event in the crossing log's
//! chain (`event` = the kind), an increment of
//! `customs_anomalies_total{integration,kind}` and a `warn` log line. None of
//! them ever carries a payload value, a key or a secret: only config names
//! (integration, route, client id), fixed enums, counts, dates and wildcarded
//! field paths, made safe by [`crate::audit::redact`] before they get here
//! (as the crossing records' `unknown_fields` are).
//!
//! - `upstream_credential_failing`: the upstream answered 401/403 to an
//!   integration that injects a credential.
//! - `upstream_credential_echo`: an upstream answer carried the credential
//!   customs injects (in a header or body); customs dropped, rewrote or
//!   refused it (the crossing's `credential-echo` action count).
//! - `volume_anomaly`: requests or body bytes in one window (a minute) above
//!   `signals.volume_multiple` × the integration's moving baseline (an EWMA
//!   of the previous windows, zeros included) once `signals.warmup` has passed
//!   since start; and auth-failure bursts (at least
//!   `signals.auth_failure_burst` in a window and above the multiple of their
//!   baseline, also after the warm-up). Baselines have floors (1 request, 1 KiB) so a
//!   silent integration does not fire on its first few requests.
//! - `schema_drift`: a wildcarded field path never seen before (since start)
//!   on an integration, route and direction. With an allow-list: a path
//!   outside it (the crossing record's `unknown_fields`). Without one: a
//!   path of a sampled body new relative to the paths learned from earlier
//!   samples, once the baseline has formed ([`drift`]); not on `pass`.
//! - `credential_expiring` / `idle_integration`: [`daily`] checks, at start
//!   and then every 24 h; expiring = ends within 30 days and has not ended.
//!   Idle counts from the last forwarded crossing, in the crossing log file
//!   found at start or since; with none known, from the start.
//!
//! A storm cannot flood the log: each signal repeats at most once per
//! `signals.repeat_after` per integration and kind (and measure, or route and
//! direction). State lives in one [`Signals`], created once by `serve` and
//! kept across reloads; the hot path takes one mutex for a few integer
//! updates and allocates only when a signal fires (or on an integration's
//! first crossing). A governed body on a policy without allow-list adds a
//! lookup of its route's shape baseline (and that baseline's own mutex);
//! only the sampled ones are walked.

use crate::audit::{Crossing, Direction, Event};
use crate::config::warnings::{SOON_DAYS, days_between, today_utc};
use crate::config::{Config, SignalSettings};
use crate::proxy::Runtime;
use crate::proxy::auth::FailReason;
use crate::proxy::route::Matched;
use crate::proxy::server::Shared;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod activity;
mod drift;
pub use drift::{ShapeProbe, Side};

/// The upstream rejects the injected credential.
pub const UPSTREAM_CREDENTIAL_FAILING: &str = "upstream_credential_failing";
/// Traffic or auth failures far above the baseline.
/// The upstream echoed the credential customs injected (it never reached the caller).
pub const UPSTREAM_CREDENTIAL_ECHO: &str = "upstream_credential_echo";
/// Traffic or auth failures far above the baseline.
pub const VOLUME_ANOMALY: &str = "volume_anomaly";
/// A field path never seen before.
pub const SCHEMA_DRIFT: &str = "schema_drift";
/// An integration or credential within 30 days of its end date.
pub const CREDENTIAL_EXPIRING: &str = "credential_expiring";
/// No traffic for `signals.idle_days`.
pub const IDLE_INTEGRATION: &str = "idle_integration";
/// Every kind, exported at 0 in `customs_anomalies_total` from the start.
pub const KINDS: [&str; 5] = [
    VOLUME_ANOMALY,
    SCHEMA_DRIFT,
    CREDENTIAL_EXPIRING,
    UPSTREAM_CREDENTIAL_FAILING,
    IDLE_INTEGRATION,
];

/// How often the expiry and idleness checks run.
pub const DAILY: Duration = Duration::from_secs(24 * 3600);

/// Paths remembered per integration, route and direction (memory bound).
const MAX_SEEN_PATHS: usize = 4096;
/// Paths named in one `schema_drift` event; the rest follow in later ones.
const MAX_EVENT_PATHS: usize = 32;
/// Baseline floors: below them, a window is never anomalous.
const FLOOR: [f64; 3] = [1.0, 1024.0, 0.0];
/// Measures of a volume window.
const MEASURES: [&str; 3] = ["requests", "bytes", "auth_failures"];

/// Signal state shared by every runtime snapshot.
pub struct Signals {
    start: Instant,
    started_at: jiff::Timestamp,
    state: Mutex<State>,
    /// What crosses, field by field (the workbench).
    discovery: crate::discovery::Discovery,
}

#[derive(Default)]
struct State {
    /// Window length the counters below use.
    window: Duration,
    volumes: HashMap<String, Volume>,
    /// integration → route → [request, response].
    schemas: HashMap<String, HashMap<String, [Seen; 2]>>,
    /// The last signals raised (the workbench).
    recent: std::collections::VecDeque<activity::Recent>,
}

/// One integration's traffic in the current window, and its baseline.
#[derive(Default)]
struct Volume {
    window: u64,
    counts: [u64; 3],
    base: [f64; 3],
    next: [Option<Instant>; 3],
    credential_next: Option<Instant>,
    echo_next: Option<Instant>,
    last_seen: Option<Instant>,
    /// Crossings per minute over the last hour (the workbench).
    hour: activity::Hour,
}

#[derive(Default)]
struct Seen {
    /// Paths outside the allow-list reported so far.
    paths: HashSet<String>,
    /// The event's rate limit (both kinds of drift).
    next: Option<Instant>,
    /// The shape baseline, for policies without an allow-list.
    shape: drift::Shared,
}

impl Volume {
    /// Closes the windows before `w` into the baseline.
    fn roll(&mut self, w: u64, alpha: f64) {
        if w <= self.window {
            return;
        }
        let empty = i32::try_from(w - self.window - 1).unwrap_or(i32::MAX);
        let decay = (1.0 - alpha).powi(empty);
        for i in 0..3 {
            let b = self.base[i] + alpha * (self.counts[i] as f64 - self.base[i]);
            self.base[i] = b * decay;
        }
        self.counts = [0; 3];
        self.window = w;
    }
}

/// `true` (and the next allowed time set) when a rate-limited signal may fire.
fn allow(next: &mut Option<Instant>, now: Instant, quiet: Duration) -> bool {
    if next.is_some_and(|t| now < t) {
        return false;
    }
    *next = Some(now + quiet);
    true
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    /// Fresh state; "since start" for idleness means from now.
    #[must_use]
    pub fn new() -> Self {
        Signals {
            start: Instant::now(),
            started_at: jiff::Timestamp::now(),
            state: Mutex::new(State::default()),
            discovery: crate::discovery::Discovery::default(),
        }
    }

    /// The discovery store, kept across reloads like the rest of this state.
    pub fn discovery(&self) -> &crate::discovery::Discovery {
        &self.discovery
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one finished crossing; raises (and awaits the audit of) any
    /// signal it triggers. Called once per crossing by the trail.
    pub async fn observe(&self, rec: &Crossing, auth_failure: Option<FailReason>, rt: &Runtime) {
        let fired = self.check(rec, auth_failure, &rt.config, Instant::now());
        self.remember(&fired);
        for ev in fired {
            emit(rt, ev).await;
        }
    }

    /// The synchronous part of [`Self::observe`]: the events to raise.
    fn check(
        &self,
        rec: &Crossing,
        auth_failure: Option<FailReason>,
        config: &Config,
        now: Instant,
    ) -> Vec<Event> {
        let mut fired = Vec::new();
        let Some(name) = rec.integration.as_deref() else {
            return fired;
        };
        let s = config.signals;
        let mut state = self.lock();
        let w = self.window_index(now, s.window);
        if state.window != s.window {
            // New window length (a reload): old counters mean nothing.
            state.window = s.window;
            for v in state.volumes.values_mut() {
                *v = Volume {
                    window: w,
                    last_seen: v.last_seen,
                    hour: std::mem::take(&mut v.hour),
                    ..Volume::default()
                };
            }
        }
        if !state.volumes.contains_key(name) {
            let v = Volume {
                window: w,
                ..Volume::default()
            };
            state.volumes.insert(name.to_string(), v);
        }
        let minute = self.minute(now);
        if let Some(v) = state.volumes.get_mut(name) {
            v.hour.count(minute, rec.outcome == "forwarded");
            self.volume(v, rec, auth_failure, &s, w, now, name, &mut fired);
            let failing = matches!(rec.upstream_status, Some(401 | 403))
                && config
                    .integrations
                    .iter()
                    .any(|it| it.name == name && it.upstream.inject.is_some());
            if failing && allow(&mut v.credential_next, now, s.repeat_after) {
                let mut ev = Event::new(UPSTREAM_CREDENTIAL_FAILING, Some(name.to_string()));
                if let Some(status) = rec.upstream_status {
                    ev = ev.with("upstream_status", status);
                }
                if let Some(route) = &rec.route {
                    ev = ev.with("route", route.as_str());
                }
                fired.push(ev);
            }
            let echoed = rec
                .response
                .as_ref()
                .is_some_and(|d| d.actions.contains_key(crate::proxy::echo::CREDENTIAL_ECHO));
            if echoed && allow(&mut v.echo_next, now, s.repeat_after) {
                let mut ev = Event::new(UPSTREAM_CREDENTIAL_ECHO, Some(name.to_string()))
                    .with("outcome", rec.outcome);
                if let Some(route) = &rec.route {
                    ev = ev.with("route", route.as_str());
                }
                fired.push(ev);
            }
        }
        if let Some(route) = rec.route.as_deref() {
            let sides = [&rec.request, &rec.response];
            for (i, side) in sides.into_iter().enumerate() {
                let Some(side) = side else { continue };
                if side.unknown_fields.is_empty() && side.new_paths.is_empty() {
                    continue;
                }
                let Some(seen) = seen_entry(&mut state, name, route, i) else {
                    continue;
                };
                let paths = seen.drift(side, now, s.repeat_after);
                if paths.is_empty() {
                    continue;
                }
                let ev = Event::new(SCHEMA_DRIFT, Some(name.to_string()))
                    .with("route", route)
                    .with("direction", if i == 0 { "request" } else { "response" })
                    .with("policy", side.policy.as_str())
                    .with("paths", paths);
                fired.push(ev);
            }
        }
        fired
    }

    /// A probe when `side`'s body on this route may be sampled: for drift when
    /// its policy has no allow-list (and it is not `pass`), whether this body
    /// takes that sample being decided by its first document; for discovery
    /// when its turn has come (any governed body).
    pub fn shape_probe(&self, config: &Config, m: &Matched<'_>, side: Side) -> Option<ShapeProbe> {
        let policy = match side {
            Side::Request => m.route.request.as_deref(),
            Side::Response => m.route.response.as_deref(),
        }?;
        let now = Instant::now();
        let s = config.signals;
        let direction = match side {
            Side::Request => crate::discovery::Direction::Request,
            Side::Response => crate::discovery::Direction::Response,
        };
        let sample = self.discovery.sample(
            &m.integration.name,
            &m.route.id,
            direction,
            s.drift_sample,
            now,
        );
        let drift = policy.allow.is_none();
        if !drift && sample.is_none() {
            return None;
        }
        let base = {
            let mut state = self.lock();
            let seen = seen_entry(&mut state, &m.integration.name, &m.route.id, side.index())?;
            seen.shape.clone()
        };
        let warming = now.saturating_duration_since(self.start) < s.warmup;
        Some(ShapeProbe::new(
            base,
            s.drift_sample,
            warming,
            now,
            drift,
            sample,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn volume(
        &self,
        v: &mut Volume,
        rec: &Crossing,
        auth_failure: Option<FailReason>,
        s: &SignalSettings,
        w: u64,
        now: Instant,
        name: &str,
        fired: &mut Vec<Event>,
    ) {
        let warmup_windows = (s.warmup.as_nanos() / s.window.as_nanos().max(1)) as u64;
        let alpha = 2.0 / (warmup_windows.max(1) as f64 + 1.0);
        v.roll(w, alpha);
        let bytes: u64 = [&rec.request, &rec.response]
            .into_iter()
            .flatten()
            .map(|d| d.bytes_in)
            .sum();
        v.counts[0] += 1;
        v.counts[1] += bytes;
        if auth_failure.is_some() {
            v.counts[2] += 1;
        } else {
            v.last_seen = Some(now);
        }
        let warmed = w >= warmup_windows;
        for i in 0..3 {
            let count = v.counts[i] as f64;
            let limit = s.volume_multiple * v.base[i].max(FLOOR[i]);
            let burst = i != 2 || v.counts[2] >= s.auth_failure_burst;
            let over = warmed && burst && count > limit;
            if over && allow(&mut v.next[i], now, s.repeat_after) {
                let ev = Event::new(VOLUME_ANOMALY, Some(name.to_string()))
                    .with("measure", MEASURES[i])
                    .with("count", v.counts[i])
                    .with("baseline", (v.base[i] * 100.0).round() / 100.0)
                    .with("multiple", s.volume_multiple)
                    .with(
                        "window_ms",
                        u64::try_from(s.window.as_millis()).unwrap_or(u64::MAX),
                    );
                fired.push(ev);
            }
        }
    }

    fn minute(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / 60
    }

    /// Each integration's last hour and the signals raised for it (the workbench).
    pub fn activity(&self, config: &Config) -> Vec<activity::Report> {
        let minute = self.minute(Instant::now());
        let state = self.lock();
        config
            .integrations
            .iter()
            .map(|it| activity::Report {
                integration: it.name.clone(),
                minutes: state
                    .volumes
                    .get(&it.name)
                    .map_or_else(|| vec![[0; 2]; activity::MINUTES], |v| v.hour.as_of(minute)),
                signals: state
                    .recent
                    .iter()
                    .rev()
                    .filter(|r| r.integration.as_deref() == Some(it.name.as_str()))
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    /// Notes raised signals for the workbench's list.
    fn remember(&self, events: &[Event]) {
        let mut state = self.lock();
        for ev in events {
            activity::remember(
                &mut state.recent,
                activity::Recent {
                    ts: ev.ts.clone(),
                    kind: ev.event,
                    integration: ev.integration.clone(),
                },
            );
        }
    }

    fn window_index(&self, now: Instant, window: Duration) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / window.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// Last crossing of `integration` with a successful (or no) authentication.
    fn last_seen(&self, integration: &str) -> Option<jiff::Timestamp> {
        let at = self.lock().volumes.get(integration)?.last_seen?;
        let since = at.saturating_duration_since(self.start);
        let span = jiff::SignedDuration::try_from(since).ok()?;
        self.started_at.checked_add(span).ok()
    }

    /// The daily checks: `credential_expiring` and `idle_integration`.
    pub fn daily_events(&self, config: &Config, usage: &crate::inventory::Usage) -> Vec<Event> {
        let today = today_utc();
        let now = jiff::Timestamp::now();
        let mut out = Vec::new();
        let expiring =
            |it: &str, subject: &'static str, cred: Option<&str>, d: jiff::civil::Date| {
                let days = days_between(today, d);
                // Upcoming ends only: a past end date already refuses traffic
                // (outcome `expired`) and is flagged by `customs check`.
                (0 < days && days <= SOON_DAYS).then(|| {
                    let mut ev = Event::new(CREDENTIAL_EXPIRING, Some(it.to_string()))
                        .with("subject", subject)
                        .with("expires", d.to_string())
                        .with("days_left", days);
                    if let Some(c) = cred {
                        ev = ev.with("credential", c);
                    }
                    ev
                })
            };
        let idle_secs = i64::from(config.signals.idle_days) * 86_400;
        let rows = crate::inventory::rows(config, today, usage);
        let parse = |t: Option<&String>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let idle =
            |it: &str, subject: &'static str, cred: Option<&str>, last: Option<jiff::Timestamp>| {
                let since = last.unwrap_or(self.started_at);
                let quiet = now.as_second() - since.as_second();
                (quiet >= idle_secs).then(|| {
                    let mut ev = Event::new(IDLE_INTEGRATION, Some(it.to_string()))
                        .with("subject", subject)
                        .with("idle_days", config.signals.idle_days)
                        .with("last_traffic", last.map(|t| format!("{t:.0}")))
                        .with("since", format!("{since:.0}"));
                    if let Some(c) = cred {
                        ev = ev.with("credential", c);
                    }
                    ev
                })
            };
        for it in &config.integrations {
            out.extend(expiring(&it.name, "integration", None, it.expires));
            for c in &it.clients {
                if let Some(d) = c.expires {
                    out.extend(expiring(&it.name, "client", Some(&c.id), d));
                }
            }
            if let Some(d) = it.upstream.inject.as_ref().and_then(|i| i.expires) {
                out.extend(expiring(&it.name, "upstream", Some("upstream"), d));
            }
            let row = rows.iter().find(|r| r.name == it.name);
            let last = [
                parse(row.and_then(|r| r.last_crossing.as_ref())),
                self.last_seen(&it.name),
            ]
            .into_iter()
            .flatten()
            .max();
            out.extend(idle(&it.name, "integration", None, last));
            for c in row.map(|r| r.clients.as_slice()).unwrap_or_default() {
                out.extend(idle(
                    &it.name,
                    "client",
                    Some(&c.id),
                    parse(c.last_used.as_ref()),
                ));
            }
        }
        out
    }
}

impl Seen {
    /// The new paths of one direction to report now (and mark as seen);
    /// empty while the quiet time runs or when memory is full, in which case
    /// they stay unseen and are reported later.
    fn drift(&mut self, side: &Direction, now: Instant, quiet: Duration) -> Vec<String> {
        if side.new_paths.is_empty() {
            self.outside_allow_list(side, now, quiet)
        } else {
            self.new_shape(side, now, quiet)
        }
    }

    fn outside_allow_list(
        &mut self,
        side: &Direction,
        now: Instant,
        quiet: Duration,
    ) -> Vec<String> {
        let fresh: Vec<&String> = side
            .unknown_fields
            .iter()
            .filter(|p| !self.paths.contains(p.as_str()))
            .collect();
        let n = room(fresh.len(), self.paths.len(), &mut self.next, now, quiet);
        let paths: Vec<String> = fresh.into_iter().take(n).cloned().collect();
        self.paths.extend(paths.iter().cloned());
        paths
    }

    fn new_shape(&mut self, side: &Direction, now: Instant, quiet: Duration) -> Vec<String> {
        let mut base = drift::lock(&self.shape);
        // Another sample may have reported some of them meanwhile.
        let fresh: Vec<&(u64, String)> = side
            .new_paths
            .iter()
            .filter(|(h, _)| !base.known.contains(h))
            .collect();
        let n = room(fresh.len(), base.known.len(), &mut self.next, now, quiet);
        base.learn(fresh.iter().take(n).map(|(h, _)| *h));
        fresh.into_iter().take(n).map(|(_, p)| p.clone()).collect()
    }
}

/// How many of `fresh` new paths to report now, `known` being remembered
/// already: none when there are none, when memory is full or while the
/// quiet time runs; at most [`MAX_EVENT_PATHS`].
fn room(
    fresh: usize,
    known: usize,
    next: &mut Option<Instant>,
    now: Instant,
    quiet: Duration,
) -> usize {
    if fresh == 0 || known >= MAX_SEEN_PATHS || !allow(next, now, quiet) {
        return 0;
    }
    fresh.min(MAX_EVENT_PATHS).min(MAX_SEEN_PATHS - known)
}

fn seen_entry<'a>(
    state: &'a mut State,
    name: &str,
    route: &str,
    side: usize,
) -> Option<&'a mut Seen> {
    // Lookups by &str: keys are allocated only when first inserted.
    if !state.schemas.contains_key(name) {
        state.schemas.insert(name.to_string(), HashMap::new());
    }
    let routes = state.schemas.get_mut(name)?;
    if !routes.contains_key(route) {
        routes.insert(route.to_string(), Default::default());
    }
    routes.get_mut(route)?.get_mut(side)
}

/// Raises one signal: metric, audit event (queued in chain order), log line.
pub async fn emit(rt: &Runtime, ev: Event) {
    let integration = ev.integration.as_deref().unwrap_or(crate::metrics::NONE);
    rt.metrics
        .anomalies
        .with_label_values(&[integration, ev.event])
        .inc();
    let detail = serde_json::to_string(&ev.detail).unwrap_or_default();
    let kind = ev.event;
    let name = integration.to_string();
    let queued = rt.auditor.event(ev).await.is_ok();
    tracing::warn!(signal = kind, integration = %name, %detail, queued, "Monitoring signal raised.");
}

/// Runs the daily checks at start and then every [`DAILY`] until `shutdown`,
/// on whatever configuration is live at the time.
pub async fn daily(shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let config = shared.load_full().config.clone();
    let history = tokio::select! {
        usage = history(&config) => usage,
        _ = shutdown.changed() => return,
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        {
            let rt = shared.load_full();
            let mut usage = history.clone();
            usage.merge(&rt.metrics.usage(&rt.config));
            let events = rt.signals.daily_events(&rt.config, &usage);
            rt.signals.remember(&events);
            for ev in events {
                emit(&rt, ev).await;
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(DAILY) => {}
        }
    }
}

/// Uses recorded before this start, from the current crossing log file
/// (rotated files are not read: an integration whose last crossing is only
/// there counts as idle from the start, as one without any history does).
async fn history(config: &Config) -> crate::inventory::Usage {
    let crate::config::AuditSink::File(path) = &config.audit.sink else {
        return crate::inventory::Usage::default();
    };
    let path = path.clone();
    tokio::task::spawn_blocking(move || crate::inventory::Usage::from_audit_log(&path))
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
