//! Streamed `pass` responses (issue 17): a response direction no policy
//! reads is forwarded as it arrives, in constant memory, instead of being
//! read whole. The body is the crossing's last stage: it counts the bytes
//! that cross (metrics as they go), enforces `limits.max_pass_bytes`, the
//! upstream's `Content-Length` and `limits.stream_idle_timeout`, and writes
//! the crossing's one record when it ends — complete, broken off, idle, too
//! large, or dropped because the caller left.

use super::echo::{CREDENTIAL_ECHO, Holdback};
use super::error::{Kind, Refusal};
use super::trail::Trail;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use prometheus::IntCounter;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The body of every answer: read whole (governed, refusals) or streamed.
pub enum ProxyBody {
    /// A body held whole.
    Whole(Full<Bytes>),
    /// A `pass` body forwarded as it arrives.
    Streamed(Box<Streamed>),
}

impl From<Full<Bytes>> for ProxyBody {
    fn from(body: Full<Bytes>) -> Self {
        ProxyBody::Whole(body)
    }
}

/// Why a streamed body ended before its end: the caller sees a broken body
/// (HTTP/1.1: the connection is cut; HTTP/2: the stream is reset).
#[derive(Debug, thiserror::Error)]
#[error("streamed body ended: {0}")]
pub struct Broken(String);

impl Broken {
    /// A break, with why (no payload data).
    pub fn new(detail: String) -> Self {
        Broken(detail)
    }
}

impl From<Infallible> for Broken {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        match self.get_mut() {
            ProxyBody::Whole(full) => Pin::new(full).poll_frame(cx).map_err(Broken::from),
            ProxyBody::Streamed(s) => s.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Whole(full) => full.is_end_stream(),
            ProxyBody::Streamed(s) => s.ended || s.incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Whole(full) => full.size_hint(),
            ProxyBody::Streamed(s) => s.incoming.size_hint(),
        }
    }
}

/// What a streamed body is held to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// `limits.max_pass_bytes`.
    pub max: Option<u64>,
    /// `limits.stream_idle_timeout`.
    pub idle: Duration,
    /// The upstream's `Content-Length`, when its body has one.
    pub declared: Option<u64>,
}

/// An upstream body on its way to the caller.
pub struct Streamed {
    incoming: Incoming,
    bounds: Bounds,
    /// Fires when the upstream sent nothing for `bounds.idle` while the
    /// caller was waiting (a slow caller is the write timeout's business).
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    /// Bytes read from the upstream, and sent on to the caller.
    received: u64,
    crossed: u64,
    /// The credential-echo scan, on integrations that inject one.
    scan: Option<Holdback>,
    /// `customs_bytes_total` for the response direction, `in` and `out`.
    counters: Option<[IntCounter; 2]>,
    status: u16,
    /// The crossing's trail, until its record is written.
    trail: Option<Trail>,
    /// Whether the body has ended (and its record been written).
    ended: bool,
}

impl Streamed {
    /// A body streaming `incoming` (answered with `status`) within `bounds`.
    pub fn new(
        incoming: Incoming,
        status: u16,
        bounds: Bounds,
        counters: Option<[IntCounter; 2]>,
        scan: Option<Holdback>,
    ) -> Self {
        Streamed {
            incoming,
            bounds,
            timer: Box::pin(tokio::time::sleep(bounds.idle)),
            waiting: false,
            received: 0,
            crossed: 0,
            scan,
            counters,
            status,
            trail: None,
            ended: false,
        }
    }

    /// Hands the body the crossing's trail: it writes the record at the end.
    pub fn attach(&mut self, trail: Trail) {
        self.trail = Some(trail);
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !self.waiting {
            self.timer.as_mut().reset(Instant::now() + self.bounds.idle);
            self.waiting = true;
        }
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        if polled.is_pending() {
            ready!(self.timer.as_mut().poll(cx));
            let why = format!(
                "upstream sent nothing for limits.stream_idle_timeout ({}s)",
                self.bounds.idle.as_secs()
            );
            return self.broke(Kind::UpstreamTimeout, why);
        }
        self.waiting = false;
        match polled {
            Poll::Ready(Some(Ok(frame))) => self.forward(frame),
            Poll::Ready(Some(Err(e))) => self.broke(
                Kind::UpstreamUnavailable,
                format!("upstream body broke off: {e}"),
            ),
            Poll::Ready(None) => self.finished(),
            Poll::Pending => Poll::Pending,
        }
    }

    fn forward(&mut self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(trailers) if self.scan.is_none() => return Poll::Ready(Some(Ok(trailers))),
            // Behind the echo scan, trailers (unscanned, and due after the
            // held bytes) are dropped.
            Err(_) => Bytes::new(),
        };
        let n = data.len() as u64;
        let total = self.received.saturating_add(n);
        if self.bounds.max.is_some_and(|max| total > max) {
            return self.broke(
                Kind::ResponseRefused,
                "streamed body over limits.max_pass_bytes".into(),
            );
        }
        if self.bounds.declared.is_some_and(|d| total > d) {
            return self.broke(
                Kind::UpstreamUnavailable,
                "upstream body longer than its Content-Length".into(),
            );
        }
        self.received = total;
        let mut out = match self.scan.as_mut().map(|scan| scan.pass(&data)) {
            None => data,
            Some(Ok(safe)) => safe,
            Some(Err(_)) => return self.echoed(),
        };
        // A body framed by length is complete with its last byte: hyper
        // sends it without asking for more.
        let complete = self.bounds.declared == Some(total);
        if complete && let Some(scan) = &mut self.scan {
            out = [out, scan.rest()].concat().into();
        }
        self.sent(n, out.len() as u64);
        if complete {
            self.end(None, false);
        }
        Poll::Ready(Some(Ok(Frame::data(out))))
    }

    /// Counts bytes read and sent, as they cross.
    fn sent(&mut self, read: u64, sent: u64) {
        self.crossed += sent;
        if let Some([bytes_in, bytes_out]) = &self.counters {
            bytes_in.inc_by(read);
            bytes_out.inc_by(sent);
        }
    }

    fn finished(&mut self) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if let Some(declared) = self.bounds.declared.filter(|d| *d != self.received) {
            let why = format!("upstream body shorter than its Content-Length ({declared})");
            return self.broke(Kind::UpstreamUnavailable, why);
        }
        let rest = self.scan.as_mut().map(Holdback::rest).unwrap_or_default();
        self.sent(0, rest.len() as u64);
        self.end(None, false);
        match rest.is_empty() {
            true => Poll::Ready(None),
            false => Poll::Ready(Some(Ok(Frame::data(rest)))),
        }
    }

    /// The upstream echoed the credential: nothing of it is sent, and the
    /// stream breaks off, recorded as the whole-body scan records it.
    fn echoed(&mut self) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        if let Some(trail) = &mut self.trail {
            let side = trail.response_side();
            *side.actions.entry(CREDENTIAL_ECHO.to_string()).or_insert(0) += 1;
        }
        self.broke(
            Kind::ResponseRefused,
            "response carried the injected upstream credential".into(),
        )
    }

    fn broke(&mut self, kind: Kind, why: String) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        let detail = format!("{why} after {} bytes", self.crossed);
        self.end(Some(Refusal::new(kind, detail.clone())), false);
        Poll::Ready(Some(Err(Broken(detail))))
    }

    /// Writes the record once, with how the body ended (`left`: the caller
    /// went away before the end).
    fn end(&mut self, refusal: Option<Refusal>, left: bool) {
        if let Some(trail) = self.trail.take() {
            trail.finish_streamed(self.status, (self.received, self.crossed), refusal, left);
        }
        self.ended = true;
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if !self.ended {
            self.end(None, true);
        }
    }
}
