//! Stage 4's read: request bodies. A governed body is read whole within
//! `body_read_timeout` (the slow-body guard) and `max_body_bytes`. A `pass`
//! body longer than `max_body_bytes` — declared so, or of unknown length and
//! read that far within `body_read_timeout` — streams to the upstream as it
//! arrives instead (issue 17), in constant memory: the [`Upload`] body counts
//! the bytes that cross (metrics as they go), enforces
//! `limits.max_pass_bytes` and the caller's `Content-Length`, and says how it
//! ended through its [`Progress`], which the exchange watches for stalls
//! (`limits.stream_idle_timeout`) and the crossing's record reads when it is
//! written. Whatever breaks an upload makes the upstream see a broken body
//! (HTTP/1.1: its connection is cut; HTTP/2: the stream is reset), never a
//! clean end.

use super::body::{self, BodyError, Held};
use super::budget::{Budget, Charge};
use super::error::{Kind, Refusal};
use super::stream::Broken;
use crate::config::Limits;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use prometheus::IntCounter;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::Notify;

/// `customs_bytes_total` of the request direction, `in` and `out`.
pub type Counters = [IntCounter; 2];

/// The body of every upstream request: held whole, or a streamed upload.
pub enum UpstreamBody {
    /// A body read whole (governed, or short).
    Whole(Full<Bytes>),
    /// A `pass` body forwarded as it arrives.
    Streamed(Box<Upload>),
}

impl From<Bytes> for UpstreamBody {
    fn from(body: Bytes) -> Self {
        UpstreamBody::Whole(Full::new(body))
    }
}

impl UpstreamBody {
    /// The progress of a streamed upload (`None` for a whole body).
    pub fn progress(&self) -> Option<Arc<Progress>> {
        match self {
            UpstreamBody::Whole(_) => None,
            UpstreamBody::Streamed(upload) => Some(upload.progress.clone()),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        match self.get_mut() {
            UpstreamBody::Whole(full) => Pin::new(full).poll_frame(cx).map_err(Broken::from),
            UpstreamBody::Streamed(upload) => upload.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Whole(full) => full.is_end_stream(),
            UpstreamBody::Streamed(upload) => upload.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Whole(full) => full.size_hint(),
            UpstreamBody::Streamed(upload) => upload.size_hint(),
        }
    }
}

/// A request body read: whole, or started as a stream.
pub enum Begun {
    /// Held whole, its bytes charged to the budget while the charge lives.
    Whole(Bytes, Charge),
    /// Streaming to the upstream.
    Streamed(Box<Upload>),
}

/// Reads a request body whole, or — when `pass` (the direction is `pass`
/// and the route does not upgrade) — starts streaming it once it is known
/// to be longer than `max_body_bytes`. `counters` count streamed bytes.
pub async fn begin(
    headers: &HeaderMap,
    mut incoming: Incoming,
    limits: &Limits,
    budget: &Budget,
    pass: bool,
    counters: Option<Counters>,
) -> Result<Begun, Refusal> {
    // A body already known to be empty (most GETs) needs no timer.
    if incoming.is_end_stream() {
        return Ok(Begun::Whole(Bytes::new(), Charge::default()));
    }
    let declared = body::content_length(headers);
    let long = |n: u64| n > limits.max_body_bytes as u64;
    if !pass || declared.is_some_and(|n| !long(n)) {
        let read = body::read(headers, incoming, limits.max_body_bytes, budget);
        let (raw, charge) = within_read_timeout(limits, read).await?;
        return Ok(Begun::Whole(raw, charge));
    }
    let over_max = |n: u64| limits.max_pass_bytes.is_some_and(|max| n > max);
    if declared.is_some_and(over_max) {
        return Err(Refusal::new(
            Kind::TooLarge,
            "request body declared over limits.max_pass_bytes",
        )
        .closing());
    }
    let start = |held, incoming, charge| {
        let upload = Upload::new(held, incoming, declared, limits, counters, charge);
        Ok(Begun::Streamed(Box::new(upload)))
    };
    if declared.is_some() {
        return start(Held::default(), incoming, Charge::default());
    }
    // Of unknown length: whole (and under the slow-body guard) unless it
    // proves longer than max_body_bytes.
    let mut charge = Charge::default();
    let fill = body::fill(
        Pin::new(&mut incoming),
        limits.max_body_bytes,
        0,
        budget,
        &mut charge,
    );
    let held = within_read_timeout(limits, fill).await?;
    if held.ended {
        return Ok(Begun::Whole(body::concat(held.chunks, held.len), charge));
    }
    if over_max(held.len as u64) {
        return Err(Refusal::new(
            Kind::TooLarge,
            "streamed request body over limits.max_pass_bytes",
        )
        .closing());
    }
    start(held, incoming, charge)
}

/// Runs a read of a body within `body_read_timeout`: a body trickled in
/// (slow-body attacks) holds a connection no longer than that, whatever its
/// rate. The connection closes, since the rest of the body is never read.
async fn within_read_timeout<T>(
    limits: &Limits,
    read: impl Future<Output = Result<T, BodyError>>,
) -> Result<T, Refusal> {
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(read) => read.map_err(|e| request_body_refusal(&e)),
        Err(_) => Err(Refusal::new(
            Kind::RequestTimeout,
            "request body not received within body_read_timeout",
        )
        .closing()),
    }
}

/// How a request body that could not be read or governed is answered.
pub fn request_body_refusal(e: &BodyError) -> Refusal {
    match e {
        BodyError::TooLarge => Refusal::new(Kind::TooLarge, "request body over max_body_bytes"),
        BodyError::Overloaded => Refusal::new(
            Kind::Overloaded,
            "no room in max_buffered_bytes for the body",
        ),
        BodyError::Broken => Refusal::new(Kind::BadRequest, "request body broke off").closing(),
        BodyError::Unsupported(d) => Refusal::new(Kind::UnsupportedContent, d.clone()),
        BodyError::Malformed(d) => Refusal::new(Kind::BadRequest, d.clone()),
        BodyError::Refused(d, _) | BodyError::Internal(d) => {
            Refusal::new(Kind::PolicyRefused, d.clone())
        }
    }
}

/// How a streamed upload is going; shared by its body (in the upstream
/// connection's task), the exchange and the crossing's trail.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read from the caller, and handed on to the upstream.
    received: AtomicU64,
    sent: AtomicU64,
    /// Set while the body waits for the caller: a stall is then the caller's.
    waiting: AtomicBool,
    state: Mutex<State>,
    ended: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// How the upload ended, once it has.
    ended: Option<Result<(), Refusal>>,
    /// The body's task, woken when the upload is ended from outside.
    waker: Option<Waker>,
}

impl Progress {
    /// Bytes read from the caller, and sent on to the upstream.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the upload (the first end counts), waking whoever waits on it.
    fn end(&self, how: Result<(), Refusal>) {
        let waker = {
            let mut state = self.state();
            if state.ended.is_some() {
                return;
            }
            state.ended = Some(how);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.ended.notify_waiters();
    }

    fn outcome(&self) -> Option<Result<(), Refusal>> {
        self.state().ended.clone()
    }

    /// Why the upload broke off, if it did.
    pub fn failure(&self) -> Option<Refusal> {
        self.outcome().and_then(Result::err)
    }

    /// Cuts an upload still going when its crossing's record is written
    /// (nothing crosses after the record); `left`: because the caller went
    /// away.
    pub fn close(&self, left: bool) {
        let (received, sent) = self.counts();
        let cut = match left {
            true => Refusal::new(
                Kind::BadRequest,
                format!("caller broke off the upload after {received} bytes"),
            ),
            false => Refusal::new(
                Kind::UpstreamUnavailable,
                format!("answered before the upload ended; the upload was cut after {sent} bytes"),
            ),
        };
        self.end(Err(cut));
    }

    async fn finished(&self) -> Result<(), Refusal> {
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(how) = self.outcome() {
                return how;
            }
            notified.await;
        }
    }

    /// Waits for the upload to end, and ends it when no byte crossed for
    /// `idle` (checked every `idle`, so a stall ends within twice that).
    pub async fn settled(&self, idle: Duration) -> Result<(), Refusal> {
        loop {
            let seen = self.counts();
            if let Ok(how) = tokio::time::timeout(idle, self.finished()).await {
                return how;
            }
            if self.counts() == seen {
                self.end(Err(self.stalled(idle)));
            }
        }
    }

    fn stalled(&self, idle: Duration) -> Refusal {
        let (received, sent) = self.counts();
        match self.waiting.load(Ordering::Relaxed) {
            true => Refusal::new(
                Kind::RequestTimeout,
                format!(
                    "caller sent nothing for limits.stream_idle_timeout ({idle:?}) after {received} bytes"
                ),
            )
            .closing(),
            false => Refusal::new(
                Kind::UpstreamTimeout,
                format!(
                    "upstream read nothing for limits.stream_idle_timeout ({idle:?}) after {sent} bytes"
                ),
            ),
        }
    }
}

/// A caller's body on its way to the upstream.
pub struct Upload {
    /// Bytes read before streaming began, sent first.
    prefix: VecDeque<Bytes>,
    incoming: Incoming,
    /// The caller's `Content-Length`, and `limits.max_pass_bytes`.
    declared: Option<u64>,
    max: Option<u64>,
    received: u64,
    done: bool,
    progress: Arc<Progress>,
    counters: Option<Counters>,
    /// The prefix's bytes in the budget, given back once it is sent.
    charge: Charge,
}

impl Upload {
    fn new(
        held: Held,
        incoming: Incoming,
        declared: Option<u64>,
        limits: &Limits,
        counters: Option<Counters>,
        charge: Charge,
    ) -> Self {
        let received = held.len as u64;
        let progress = Arc::new(Progress::default());
        progress.received.store(received, Ordering::Relaxed);
        if let Some([bytes_in, _]) = &counters {
            bytes_in.inc_by(received);
        }
        Upload {
            prefix: held.chunks.into(),
            incoming,
            declared,
            max: limits.max_pass_bytes,
            received,
            done: false,
            progress,
            counters,
            charge,
        }
    }

    /// How the upload is going.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Ended from outside: stalled, or the crossing answered already.
        if let Some(Err(cut)) = self.progress.outcome() {
            self.done = true;
            return Poll::Ready(Some(Err(Broken::new(cut.detail))));
        }
        if let Some(chunk) = self.prefix.pop_front() {
            if self.prefix.is_empty() {
                self.charge = Charge::default();
            }
            self.sent(chunk.len() as u64);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Pending => {
                self.progress.waiting.store(true, Ordering::Relaxed);
                self.progress.state().waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.progress.waiting.store(false, Ordering::Relaxed);
                self.arrived(frame)
            }
            Poll::Ready(Some(Err(e))) => {
                let why = format!(
                    "caller broke off the upload after {} bytes: {e}",
                    self.received
                );
                self.broke(Refusal::new(Kind::BadRequest, why).closing())
            }
            Poll::Ready(None) => self.finished(),
        }
    }

    fn arrived(&mut self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        let Some(n) = frame.data_ref().map(|d| d.len() as u64) else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let total = self.received.saturating_add(n);
        if self.max.is_some_and(|max| total > max) {
            let why = format!(
                "streamed request body over limits.max_pass_bytes after {} bytes",
                self.received
            );
            return self.broke(Refusal::new(Kind::TooLarge, why).closing());
        }
        self.received = total;
        self.progress.received.store(total, Ordering::Relaxed);
        if let Some([bytes_in, _]) = &self.counters {
            bytes_in.inc_by(n);
        }
        self.sent(n);
        // A body framed by length is complete with its last byte: hyper
        // sends it without asking for more.
        if self.incoming.is_end_stream() {
            self.progress.end(Ok(()));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn sent(&self, n: u64) {
        self.progress.sent.fetch_add(n, Ordering::Relaxed);
        if let Some([_, bytes_out]) = &self.counters {
            bytes_out.inc_by(n);
        }
    }

    fn finished(&mut self) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if let Some(declared) = self.declared.filter(|d| *d != self.received) {
            let why = format!(
                "request body shorter than its Content-Length ({declared}) after {} bytes",
                self.received
            );
            return self.broke(Refusal::new(Kind::BadRequest, why).closing());
        }
        self.done = true;
        self.progress.end(Ok(()));
        Poll::Ready(None)
    }

    fn broke(&mut self, why: Refusal) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        let detail = why.detail.clone();
        self.done = true;
        self.progress.end(Err(why));
        Poll::Ready(Some(Err(Broken::new(detail))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.prefix.is_empty() && self.incoming.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let queued: u64 = self.prefix.iter().map(|c| c.len() as u64).sum();
        let inner = self.incoming.size_hint();
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(queued));
        }
        hint.set_lower(inner.lower().saturating_add(queued));
        hint
    }
}

impl Drop for Upload {
    /// An upload dropped unfinished (the upstream connection went away)
    /// ended there.
    fn drop(&mut self) {
        if !self.done {
            let (_, sent) = self.progress.counts();
            self.progress.end(Err(Refusal::new(
                Kind::UpstreamUnavailable,
                format!("upstream connection ended the upload after {sent} bytes"),
            )));
        }
    }
}
