//! Stage 7: what a crossing leaves behind. The trail collects decisions as
//! the request moves through the pipeline and, at the end, becomes exactly
//! one audit record (and its metrics) before the response is released.

use super::Runtime;
use super::auth::{FailReason, Principal};
use super::error::{Kind, Outcome, Refusal};
use super::pipeline::ProxyResponse;
use super::route::Matched;
use super::stream::ProxyBody;
use super::upload::Progress;
use crate::audit::record::{Crossing, Direction};
use crate::audit::redact;
use crate::config::{Integration, OnFailure};
use crate::policy::{Mode, Outcome as PolicyOutcome, Policy};
use http::Request;
use std::sync::Arc;
use std::time::Instant;

/// Decisions of one crossing so far.
pub struct Trail {
    /// Id given to the request.
    pub request_id: String,
    /// Normalised, then forwarded path (query values elided when recorded).
    pub path: String,
    /// Upstream status, once answered.
    pub upstream_status: Option<u16>,
    /// Set when authentication failed.
    pub auth_failure: Option<FailReason>,
    /// Time the upstream exchange took.
    pub upstream_elapsed: Option<std::time::Duration>,
    started: Instant,
    /// The matched integration's position in the config.
    integration: Option<usize>,
    method: String,
    record: Crossing,
    refusal: Option<Refusal>,
    /// Held until the record is written; if the caller goes away first the
    /// trail is dropped unfinished and still leaves its one record.
    guard: Option<Arc<Runtime>>,
    /// A streamed upload's progress: its counts go into the record.
    upload: Option<Arc<Progress>>,
}

impl Trail {
    /// Starts the trail of a request.
    pub fn start<B>(req: &Request<B>, rt: &Arc<Runtime>) -> Self {
        Trail {
            guard: Some(rt.clone()),
            request_id: rt.next_request_id(),
            path: req.uri().path().to_string(),
            upstream_status: None,
            auth_failure: None,
            upstream_elapsed: None,
            started: Instant::now(),
            integration: None,
            method: req.method().to_string(),
            record: Crossing {
                mode: Mode::Enforce.as_str(),
                ..Crossing::default()
            },
            refusal: None,
            upload: None,
        }
    }

    /// Notes that the request body streams: the record counts its bytes
    /// (and cuts it, if it is still going, when written).
    pub fn streams_upload(&mut self, progress: Arc<Progress>) {
        self.upload = Some(progress);
    }

    /// Notes the integration mounted above the path, at `index` in the config.
    pub fn mounted(&mut self, index: usize, integration: &Integration) {
        self.integration = Some(index);
        self.record.integration = Some(integration.name.clone());
    }

    /// The policy-thread lane of this crossing: its integration's position.
    pub fn lane(&self) -> usize {
        self.integration.unwrap_or(usize::MAX)
    }

    /// Notes the route, and the policies each direction uses.
    pub fn matched(&mut self, m: &Matched<'_>) {
        self.record.route = Some(m.route.id.clone());
        self.record.request = Some(direction(m.route.request.as_deref()));
        self.record.response = Some(direction(m.route.response.as_deref()));
        let monitor = [&m.route.request, &m.route.response]
            .iter()
            .any(|p| p.as_ref().is_some_and(|p| p.mode == Mode::Monitor));
        if monitor {
            self.record.mode = Mode::Monitor.as_str();
        }
    }

    /// Notes who called.
    pub fn principal(&mut self, p: &Principal<'_>) {
        self.record.client = p.client.map(|c| c.id.clone());
        self.record.auth = Some(p.method.as_str());
    }

    /// The request direction's record (created on first use).
    pub fn request_side(&mut self) -> &mut Direction {
        self.record.request.get_or_insert_with(Direction::default)
    }

    /// The response direction's record (created on first use).
    pub fn response_side(&mut self) -> &mut Direction {
        self.record.response.get_or_insert_with(Direction::default)
    }

    /// Copies a policy outcome's counts into a direction record.
    pub fn record_actions(side: &mut Direction, policy: &Policy, outcome: &PolicyOutcome) {
        for (rule, n) in outcome.actions(policy) {
            side.actions.insert(rule.to_string(), n);
        }
        if outcome.unknown_count > 0 {
            side.actions
                .insert(crate::policy::ALLOW_RULE.to_string(), outcome.unknown_count);
            side.unknown_fields = redact::field_paths(&outcome.unknown_fields);
        }
    }

    /// Notes why the crossing was refused.
    pub fn refused(&mut self, refusal: Refusal) {
        self.refusal = Some(refusal);
    }

    /// Writes the audit record; returns the response to release (503 when
    /// the record cannot be written and `on_failure: refuse`). Metrics
    /// count the crossing as it ended, after the write (or when this future
    /// is dropped while the record is written anyway).
    pub async fn finish(mut self, rt: &Runtime, response: ProxyResponse) -> ProxyResponse {
        self.guard = None;
        let outcome = match &self.refusal {
            Some(r) => r.kind.answer().2,
            None => Outcome::Forwarded,
        };
        let mut tally = self.seal(rt, response.status().as_u16(), outcome);
        rt.signals
            .observe(&tally.record, self.auth_failure, rt)
            .await;
        match rt.auditor.record(&tally.record).await {
            Err(_) if rt.config.audit.on_failure == OnFailure::Refuse => {
                let refusal = Refusal::new(Kind::AuditUnavailable, "audit write failed");
                let (status, _, outcome) = refusal.kind.answer();
                let record = &mut tally.record;
                (record.status, record.outcome) = (status.as_u16(), outcome.as_str());
                let response = refusal.response(&self.request_id);
                tally.refusal = Some(refusal);
                response.map(ProxyBody::from)
            }
            _ => response,
        }
    }

    /// Writes the record of a streamed crossing whose body has ended:
    /// `read` bytes came from the upstream and `crossed` went through, `end` says why it broke off (`None`:
    /// complete, or `left` when the caller went away first). Written at once,
    /// since the body ends in a drop or a poll, where nothing can wait.
    pub fn finish_streamed(
        mut self,
        status: u16,
        (read, crossed): (u64, u64),
        end: Option<Refusal>,
        left: bool,
    ) {
        let Some(rt) = self.guard.take() else { return };
        let side = self.response_side();
        (side.bytes_in, side.bytes_out) = (read, crossed);
        let outcome = match (&end, left) {
            (Some(r), _) => r.kind.answer().2,
            (None, true) => Outcome::Rejected,
            (None, false) => Outcome::Forwarded,
        };
        self.refusal = end;
        let mut tally = self.seal(&rt, status, outcome);
        tally.counted[1] = true;
        if left {
            tally.record.reason = Some(format!(
                "client disconnected mid-stream after {crossed} bytes"
            ));
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (rt, record, failure) = (rt.clone(), tally.record.clone(), self.auth_failure);
            handle.spawn(async move { rt.signals.observe(&record, failure, &rt).await });
        }
        let _ = rt.auditor.record_now(&tally.record);
    }

    /// Completes the record, with what counts it in the metrics when dropped.
    fn seal<'r>(&mut self, rt: &'r Runtime, status: u16, outcome: Outcome) -> Tally<'r> {
        let mut record = std::mem::take(&mut self.record);
        record.ts = crate::audit::timestamp();
        record.request_id = self.request_id.clone();
        record.method = std::mem::take(&mut self.method);
        record.path = redact::url(&self.path);
        record.status = status;
        record.upstream_status = self.upstream_status;
        record.outcome = outcome.as_str();
        record.auth = record.auth.or(Some("none"));
        record.reason = self.refusal.as_ref().map(|r| redact::reason(&r.detail));
        let counted = self.upload.is_some();
        if let Some(upload) = self.upload.take() {
            upload.close(false);
            let side = record.request.get_or_insert_with(Direction::default);
            (side.bytes_in, side.bytes_out) = upload.counts();
            if let (None, Some(broke)) = (&record.reason, upload.failure()) {
                record.reason = Some(redact::reason(&broke.detail));
            }
        }
        record.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Tally {
            rt,
            record,
            refusal: self.refusal.take(),
            auth_failure: self.auth_failure,
            upstream_secs: self.upstream_elapsed.map(|d| d.as_secs_f64()),
            integration: self.integration,
            counted: [counted, false],
        }
    }
}

/// A sealed record and what the metrics need of its crossing; counts it
/// once, when dropped, whether or not the crossing's task ran to the end.
struct Tally<'r> {
    rt: &'r Runtime,
    record: Crossing,
    refusal: Option<Refusal>,
    auth_failure: Option<FailReason>,
    upstream_secs: Option<f64>,
    integration: Option<usize>,
    /// Directions (request, response) whose streamed bytes were counted
    /// as they crossed.
    counted: [bool; 2],
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        let record = &mut self.record;
        for (counted, side) in self
            .counted
            .iter()
            .zip([&mut record.request, &mut record.response])
        {
            if let (true, Some(side)) = (counted, side) {
                (side.bytes_in, side.bytes_out) = (0, 0);
            }
        }
        let (rt, record) = (self.rt, &self.record);
        rt.metrics.crossing(
            record,
            self.auth_failure,
            &rt.config.policies,
            self.upstream_secs,
            self.integration.and_then(|i| rt.meters(i)),
        );
        if let Some(r) = &self.refusal {
            let side = if r.kind == Kind::ResponseRefused {
                "response"
            } else {
                "request"
            };
            rt.metrics
                .refusal(record.integration.as_deref(), side, r.kind.answer().1);
        }
    }
}

/// Status recorded when the caller disconnected before the response (the
/// convention nginx uses; it is never sent).
const CLIENT_CLOSED: u16 = 499;

impl Drop for Trail {
    fn drop(&mut self) {
        let Some(rt) = self.guard.take() else { return };
        // Nothing was refused: the caller left (no refusal is counted).
        self.refusal = None;
        if let Some(upload) = &self.upload {
            upload.close(true);
        }
        let mut tally = self.seal(&rt, CLIENT_CLOSED, Outcome::Rejected);
        // Unless a broken upload says more.
        let reason = &mut tally.record.reason;
        reason.get_or_insert_with(|| "client disconnected before the response".into());
        // Written here and now: a task spawned to write it could be dropped
        // with its runtime at shutdown.
        let _ = rt.auditor.record_now(&tally.record);
    }
}

fn direction(policy: Option<&Policy>) -> Direction {
    Direction {
        policy: policy.map_or_else(|| "pass".to_string(), |p| p.name.clone()),
        policy_sha256: policy.map(|p| p.sha256.clone()),
        ..Direction::default()
    }
}
