//! HTTP/1 request framing guard.
//!
//! hyper resolves some ambiguous framings before a handler runs: a request
//! carrying both `Content-Length` and `Transfer-Encoding: chunked` reaches the
//! handler with `Content-Length` already removed, so the conflict that
//! RFC 9112 §6.1 and attacks.md §A.1 require us to refuse is invisible there.
//!
//! [`Sniffed`] wraps the server side of a connection and watches the bytes
//! hyper reads, unchanged. It follows HTTP/1 message framing just far enough
//! to find each request head (skipping bodies by `Content-Length` or by
//! walking the chunked framing) and queues one [`Verdict`] per request in the
//! connection's [`Verdicts`]. hyper dispatches request N only after reading
//! its whole head, so verdict N is queued by then; the handler takes one
//! verdict per request, in order.
//!
//! When the sniffer cannot follow the framing (bad chunk syntax, an oversized
//! head, a rejected request after which nothing can be trusted) it poisons
//! the connection: every later request is rejected.
//!
//! A request head with an `Upgrade` field ends the HTTP/1 part of the
//! connection. Its own framing is judged like any other, but the bytes after
//! it are either a tunnel's (after a 101 they are not HTTP, so they are not
//! parsed) or never served: the pipeline closes the connection after any
//! other answer, and should a later request reach a handler anyway, its
//! verdict is a rejection.

use super::observe::{Observed, Observer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Longest request head, chunk-size line or trailer section the sniffer
/// follows; anything longer poisons the connection. The listener sets
/// hyper's own read buffer to the same size, so hyper refuses such heads
/// (431) before the sniffer has to.
pub const MAX_HEAD: usize = 64 * 1024;

/// Verdicts waiting for their requests. Beyond this the connection is
/// poisoned rather than the queue grown (a pipelining flood, or a handler
/// that never takes verdicts).
const MAX_PENDING: usize = 1024;

/// The framing verdict of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Framing is unambiguous.
    Ok,
    /// Refuse with 400 and close the connection; the text says why.
    Reject(&'static str),
}

/// The framing verdicts of one connection, in request order.
#[derive(Debug, Default)]
pub struct Verdicts {
    inner: Mutex<Queue>,
    /// Part of a request head has been read, not all of it: a connection
    /// ending now ends mid-request, not between requests.
    mid_head: AtomicBool,
    /// The connection began with the HTTP/2 preface.
    http2: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Verdict>,
    poisoned: Option<&'static str>,
    opened: bool,
}

impl Verdicts {
    /// The verdict of the next request; call exactly once per request, first
    /// thing in the handler.
    ///
    /// With no verdict queued the answer is [`Verdict::Ok`], or
    /// [`Verdict::Reject`] once the connection is poisoned. For HTTP/1 the
    /// queue is never empty when a handler runs; it stays empty on HTTP/2
    /// connections, whose frames carry their own lengths (hyper checks a
    /// `content-length` against them).
    pub fn take(&self) -> Verdict {
        let mut queue = self.lock();
        match queue.pending.pop_front() {
            Some(verdict) => verdict,
            None => queue.poisoned.map_or(Verdict::Ok, Verdict::Reject),
        }
    }

    /// Whether the peer has sent a whole request head or the HTTP/2 preface
    /// (or something the sniffer gave up on).
    #[cfg(test)]
    pub(crate) fn opened(&self) -> bool {
        self.lock().opened
    }

    /// Whether part of a request head has been read, not all of it.
    pub(crate) fn mid_head(&self) -> bool {
        self.mid_head.load(Ordering::Relaxed)
    }

    /// Whether the connection speaks HTTP/2 (it began with the preface).
    pub(crate) fn http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    fn open(&self) {
        self.lock().opened = true;
    }

    /// Queues a verdict; `false` when the queue is full.
    fn push(&self, verdict: Verdict) -> bool {
        let mut queue = self.lock();
        if queue.pending.len() >= MAX_PENDING {
            return false;
        }
        queue.pending.push_back(verdict);
        true
    }

    /// From now on an empty queue means [`Verdict::Reject`]; the first
    /// reason sticks.
    fn poison(&self, why: &'static str) {
        let mut queue = self.lock();
        queue.poisoned.get_or_insert(why);
        queue.opened = true;
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue stays consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A server-side connection whose incoming bytes are watched for HTTP/1
/// framing. Reads and writes pass through unchanged.
pub type Sniffed<IO> = Observed<IO, Tracker>;

/// Wraps `io`; verdicts go to `verdicts`.
pub fn sniffed<IO>(io: IO, verdicts: Arc<Verdicts>) -> Sniffed<IO> {
    Observed::new(io, Tracker::new(verdicts))
}

impl Observer for Tracker {
    fn read(&mut self, bytes: &[u8]) {
        self.feed(bytes);
    }
}

/// Where the sniffer is in the incoming byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the lines of a section.
    Lines(Section),
    /// Fixed-length body bytes still to come.
    Body(u64),
    /// Chunk data bytes still to come.
    ChunkData(u64),
    /// HTTP/2 (the connection began with its preface), or the bytes after
    /// an upgrade request: nothing to follow.
    Off,
    /// Lost track, or a request was rejected: nothing more is trusted.
    Poisoned,
}

/// Line-oriented parts of an HTTP/1 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Request line and header fields.
    Head,
    /// `size[;ext]CRLF`.
    ChunkSize,
    /// The CRLF after chunk data.
    ChunkEnd,
    /// Trailer fields after the last chunk, up to the empty line.
    Trailers,
}

/// The framing state machine behind [`Sniffed`].
#[derive(Debug)]
pub struct Tracker {
    verdicts: Arc<Verdicts>,
    state: State,
    /// A line split across reads (allocated only then).
    partial: Vec<u8>,
    /// Bytes of the current section so far, against [`MAX_HEAD`].
    section: usize,
    head: Head,
    /// No request head has ended yet (only the first may be the h2 preface).
    first: bool,
}

impl Tracker {
    fn new(verdicts: Arc<Verdicts>) -> Self {
        Tracker {
            verdicts,
            state: State::Lines(Section::Head),
            partial: Vec::new(),
            section: 0,
            head: Head::default(),
            first: true,
        }
    }

    /// Follows `bytes`, the next bytes read from the peer.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Off | State::Poisoned => break,
                State::Lines(section) => self.line(section, bytes),
                State::Body(left) => {
                    let used = skip(left, bytes);
                    self.state = match left - used as u64 {
                        0 => self.enter(Section::Head),
                        left => State::Body(left),
                    };
                    used
                }
                State::ChunkData(left) => {
                    let used = skip(left, bytes);
                    self.state = match left - used as u64 {
                        0 => self.enter(Section::ChunkEnd),
                        left => State::ChunkData(left),
                    };
                    used
                }
            };
            bytes = &bytes[used..];
        }
        let mid_head = self.state == State::Lines(Section::Head) && self.section > 0;
        self.verdicts.mid_head.store(mid_head, Ordering::Relaxed);
    }

    /// Consumes bytes up to and including the next LF; a complete line
    /// (without its LF) is handed to [`Tracker::on_line`].
    fn line(&mut self, section: Section, bytes: &[u8]) -> usize {
        let end = bytes.iter().position(|&b| b == b'\n');
        let used = end.map_or(bytes.len(), |i| i + 1);
        self.section += used;
        if self.section > MAX_HEAD {
            self.poison("request head or chunk framing too long");
            return used;
        }
        let Some(end) = end else {
            self.partial.extend_from_slice(bytes);
            return used;
        };
        if self.partial.is_empty() {
            self.on_line(section, &bytes[..end]);
        } else {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&bytes[..end]);
            self.on_line(section, &line);
            line.clear();
            self.partial = line;
        }
        used
    }

    fn on_line(&mut self, section: Section, line: &[u8]) {
        match section {
            Section::Head => self.head_line(line),
            Section::ChunkSize => match chunk_size(line) {
                Some(0) => self.state = self.enter(Section::Trailers),
                Some(size) => self.state = State::ChunkData(size),
                None => self.poison("malformed chunk size line"),
            },
            Section::ChunkEnd if line == b"\r" => self.state = self.enter(Section::ChunkSize),
            Section::ChunkEnd => self.poison("chunk data does not end with CRLF"),
            // Like hyper: exactly one CR, right before the LF.
            Section::Trailers => match line.split_last() {
                Some((&b'\r', [])) => self.state = self.enter(Section::Head),
                Some((&b'\r', field)) if !field.contains(&b'\r') => {}
                _ => self.poison("malformed trailer line"),
            },
        }
    }

    /// A head line; like httparse, CRLF or a bare LF ends it, and empty lines
    /// before the request line are skipped.
    fn head_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !self.head.started {
            if !line.is_empty() {
                self.head.started = true;
                self.head.h2_preface = self.first && line == b"PRI * HTTP/2.0";
            }
        } else if line.is_empty() {
            self.end_head();
        } else {
            self.head.field(line);
        }
    }

    fn end_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        if self.first {
            self.first = false;
            self.verdicts.open();
        }
        if head.h2_preface {
            self.verdicts.http2.store(true, Ordering::Relaxed);
            self.state = State::Off;
            return;
        }
        match head.framing() {
            Ok(_) if head.upgrade && self.verdicts.push(Verdict::Ok) => {
                self.verdicts
                    .poison("request after a protocol upgrade request");
                self.state = State::Off;
            }
            Ok(framing) if self.verdicts.push(Verdict::Ok) => {
                self.state = match framing {
                    Framing::Length(0) => self.enter(Section::Head),
                    Framing::Length(n) => State::Body(n),
                    Framing::Chunked => self.enter(Section::ChunkSize),
                }
            }
            Ok(_) => self.poison("too many pipelined requests"),
            Err(why) => {
                // The caller answers 400 and closes; later bytes are not trusted.
                self.verdicts.push(Verdict::Reject(why));
                self.poison(why);
            }
        }
    }

    /// The state that starts `section`.
    fn enter(&mut self, section: Section) -> State {
        self.section = 0;
        State::Lines(section)
    }

    fn poison(&mut self, why: &'static str) {
        self.verdicts.poison(why);
        self.state = State::Poisoned;
        self.partial = Vec::new();
    }
}

/// Whether an `Upgrade` value names only `h2c` (RFC 7540 §3.2, which RFC
/// 9113 removed): what `curl --http2` sends on plain HTTP.
pub(crate) fn only_h2c(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .all(|p| trim_ows(p).eq_ignore_ascii_case(b"h2c"))
}

/// How many of `bytes` belong to a body part with `left` bytes to come.
fn skip(left: u64, bytes: &[u8]) -> usize {
    usize::try_from(left).map_or(bytes.len(), |left| left.min(bytes.len()))
}

/// How a request body is delimited.
enum Framing {
    Length(u64),
    Chunked,
}

/// What a request head says about framing.
#[derive(Debug, Default)]
struct Head {
    started: bool,
    h2_preface: bool,
    te_lines: u32,
    te_not_chunked: bool,
    cl_lines: u32,
    cl: Option<u64>,
    cl_invalid: bool,
    /// An `Upgrade` field: the last HTTP/1 request of the connection.
    upgrade: bool,
}

impl Head {
    /// Notes one `name: value` line (names are case-insensitive).
    fn field(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return; // hyper refuses such a head itself
        };
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te_lines += 1;
            self.te_not_chunked |= !value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"content-length") {
            self.cl_lines += 1;
            match (decimal(value), self.cl) {
                (Some(n), None) => self.cl = Some(n),
                (Some(n), Some(seen)) if n == seen => {}
                _ => self.cl_invalid = true,
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            // An h2c upgrade is ignored (answered in HTTP/1.1, see
            // `framing::ignore_h2c_upgrade`): the connection stays HTTP/1.
            self.upgrade |= !only_h2c(value);
        }
    }

    fn framing(&self) -> Result<Framing, &'static str> {
        if self.te_lines > 0 && self.cl_lines > 0 {
            Err("both Content-Length and Transfer-Encoding")
        } else if self.te_lines > 1 {
            Err("several Transfer-Encoding headers")
        } else if self.te_not_chunked {
            Err("Transfer-Encoding other than chunked")
        } else if self.cl_invalid {
            Err("invalid or conflicting Content-Length")
        } else if self.te_lines == 1 {
            Ok(Framing::Chunked)
        } else {
            Ok(Framing::Length(self.cl.unwrap_or(0)))
        }
    }
}

/// Strips optional whitespace (SP, HTAB) around a field value.
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// A `Content-Length` value: 1 to 19 ASCII digits.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Parses `HEX [SP/HTAB]* [";" ext] CR` (the LF already stripped) as hyper
/// does: the only CR is the last byte.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r")?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at(digits);
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    let tail_ok = rest.is_empty() || rest[0] == b';';
    if hex.is_empty() || !tail_ok || rest.contains(&b'\r') {
        return None;
    }
    hex.iter().try_fold(0u64, |n, &d| {
        let digit = char::from(d).to_digit(16)?;
        n.checked_mul(16)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Verdict = Verdict::Ok;
    const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n";

    /// Feeds `chunks` in order; returns the queued verdicts and what
    /// `take()` says once they are used up.
    fn run(chunks: &[&[u8]]) -> (Vec<Verdict>, Verdict) {
        let verdicts = Arc::new(Verdicts::default());
        let mut tracker = Tracker::new(verdicts.clone());
        for chunk in chunks {
            tracker.feed(chunk);
        }
        let queued = verdicts.lock().pending.drain(..).collect();
        (queued, verdicts.take())
    }

    /// The same verdicts however the stream is split: whole, byte by byte,
    /// and at every single split point.
    fn verdicts(stream: &[u8]) -> (Vec<Verdict>, Verdict) {
        let whole = run(&[stream]);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes), whole, "byte by byte");
        for at in 1..stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(run(&[a, b]), whole, "split at {at}");
        }
        whole
    }

    fn rejected(why: &'static str) -> (Vec<Verdict>, Verdict) {
        (vec![Verdict::Reject(why)], Verdict::Reject(why))
    }

    const BOTH: &str = "both Content-Length and Transfer-Encoding";

    #[test]
    fn plain_requests_are_ok() {
        let stream = [
            GET,
            b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
            GET,
        ]
        .concat();
        assert_eq!(verdicts(&stream), (vec![OK, OK, OK], OK));
    }

    #[test]
    fn content_length_then_transfer_encoding() {
        let req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(req), rejected(BOTH));
    }

    #[test]
    fn transfer_encoding_then_content_length_any_case() {
        let req = b"POST / HTTP/1.1\r\nHost: t\r\ntransfer-ENCODING: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(req), rejected(BOTH));
    }

    #[test]
    fn transfer_encoding_lists_are_refused() {
        let why = "Transfer-Encoding other than chunked";
        for te in [
            "chunked, chunked",
            "gzip, chunked",
            "identity",
            "\x0bchunked",
            "xchunked",
        ] {
            let req =
                format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
            assert_eq!(run(&[req.as_bytes()]), rejected(why), "{te:?}");
        }
    }

    #[test]
    fn transfer_encoding_value_is_trimmed_and_case_insensitive() {
        let req = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \tChunked \r\n\r\n0\r\n\r\n";
        assert_eq!(
            verdicts(&[req.as_slice(), GET].concat()),
            (vec![OK, OK], OK)
        );
    }

    #[test]
    fn two_transfer_encoding_lines() {
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(req), rejected("several Transfer-Encoding headers"));
    }

    #[test]
    fn conflicting_content_lengths() {
        let why = "invalid or conflicting Content-Length";
        for cl in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: +5",
            "Content-Length: 5, 5",
        ] {
            let req = format!("POST / HTTP/1.1\r\n{cl}\r\n\r\nhello");
            assert_eq!(run(&[req.as_bytes()]), rejected(why), "{cl:?}");
        }
        let same = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(run(&[same.as_slice(), GET]), (vec![OK, OK], OK));
    }

    #[test]
    fn pipelined_good_then_bad_then_good() {
        let bad =
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let stream = [GET, bad.as_slice(), GET].concat();
        // The request after the rejected one is never trusted.
        assert_eq!(
            verdicts(&stream),
            (vec![OK, Verdict::Reject(BOTH)], Verdict::Reject(BOTH))
        );
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=\"GET / HTTP/1.1\"\r\nhello\r\nA \t;x\r\n0123456789\r\n0;last\r\nX-Trailer: a\r\n\r\n";
        // Body bytes that look like a request head are skipped, not parsed.
        let smuggle = b"POST / HTTP/1.1\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let stream = [req.as_slice(), smuggle, GET].concat();
        assert_eq!(verdicts(&stream), (vec![OK, OK, OK], OK));
    }

    #[test]
    fn leading_blank_lines_and_bare_lf_heads() {
        let stream = [b"\r\n\nGET / HTTP/1.1\nHost: t\n\n".as_slice(), GET].concat();
        assert_eq!(verdicts(&stream), (vec![OK, OK], OK));
    }

    #[test]
    fn malformed_chunk_framing_poisons() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice();
        for body in [
            b"5;a\nb\r\nhello\r\n0\r\n\r\n".as_slice(),
            b"5\nhello\n0\n\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX\r\n0\r\n\r\n",
            b"2\r\r;a\r\nhi\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
            b"0\r\nX: a\nY: b\r\n\r\n",
        ] {
            let (queued, after) = run(&[head, body, GET]);
            assert_eq!(queued, vec![OK], "{body:?}");
            assert!(matches!(after, Verdict::Reject(_)), "{body:?}");
        }
    }

    #[test]
    fn oversized_head_poisons() {
        let huge = format!("GET / HTTP/1.1\r\nCookie: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            run(&[huge.as_bytes()]),
            (
                vec![],
                Verdict::Reject("request head or chunk framing too long")
            )
        );
    }

    #[test]
    fn endless_chunk_extension_poisons() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;".as_slice();
        let ext = vec![b'e'; MAX_HEAD];
        let (queued, after) = run(&[head, &ext]);
        assert_eq!(queued, vec![OK]);
        assert!(matches!(after, Verdict::Reject(_)));
    }

    #[test]
    fn http2_preface_switches_off() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00";
        assert_eq!(verdicts(preface), (vec![], OK));
    }

    #[test]
    fn opened_once_a_head_or_the_preface_is_complete() {
        for (stream, opened) in [
            (b"".as_slice(), false),
            (b"\r\nGET / HTTP/1.1\r\nHost: t\r\n", false),
            (GET, true),
            (b"PRI * HTTP/2.0\r\n", false),
            (b"PRI * HTTP/2.0\r\n\r\n", true),
        ] {
            let verdicts = Arc::new(Verdicts::default());
            Tracker::new(verdicts.clone()).feed(stream);
            assert_eq!(verdicts.opened(), opened, "{stream:?}");
        }
    }

    #[test]
    fn an_h2c_upgrade_keeps_the_connection_http1() {
        assert!(only_h2c(b"h2c") && only_h2c(b" H2C ,h2c"));
        assert!(!only_h2c(b"websocket") && !only_h2c(b"h2c, websocket"));
        let h2c = b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n";
        let stream = [h2c.as_slice(), GET].concat();
        assert_eq!(
            verdicts(&stream),
            (vec![OK, OK], OK),
            "the next request is served"
        );
    }

    #[test]
    fn nothing_after_an_upgrade_request_is_parsed() {
        let upgrade = b"GET /ws HTTP/1.1\r\nHost: t\r\nUPGRADE: websocket\r\n\r\n".as_slice();
        let after = "request after a protocol upgrade request";
        // WebSocket frames, or a smuggled request with conflicting framing.
        let frames = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\r\n\r\n".as_slice();
        let smuggled =
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                .as_slice();
        for tail in [frames, smuggled, GET] {
            let stream = [GET, upgrade, tail].concat();
            assert_eq!(verdicts(&stream), (vec![OK, OK], Verdict::Reject(after)));
        }
        // The upgrade request's own framing is still judged.
        let bad = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\
            Transfer-Encoding: chunked\r\n\r\n";
        assert_eq!(run(&[bad]), rejected(BOTH));
    }

    #[test]
    fn preface_later_is_just_a_request() {
        let stream = [GET, b"PRI * HTTP/2.0\r\n\r\n"].concat();
        assert_eq!(verdicts(&stream), (vec![OK, OK], OK));
    }

    #[test]
    fn too_many_pending_verdicts_poison() {
        let stream = GET.repeat(MAX_PENDING + 1);
        let (queued, after) = run(&[&stream]);
        assert_eq!(queued.len(), MAX_PENDING);
        assert_eq!(after, Verdict::Reject("too many pipelined requests"));
    }

    #[test]
    fn take_pops_in_order_then_ok() {
        let verdicts = Arc::new(Verdicts::default());
        Tracker::new(verdicts.clone()).feed(&GET.repeat(2));
        assert_eq!([verdicts.take(), verdicts.take(), verdicts.take()], [OK; 3]);
    }

    #[tokio::test]
    async fn sniffed_sees_what_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(4096);
        let verdicts = Arc::new(Verdicts::default());
        let mut sniffed = sniffed(server, verdicts.clone());
        let bad =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n";
        let sent = [GET, bad.as_slice()].concat();
        client.write_all(&sent).await.expect("write");
        drop(client);
        let mut seen = Vec::new();
        sniffed.read_to_end(&mut seen).await.expect("read");
        assert_eq!(seen, sent);
        assert_eq!(verdicts.take(), OK);
        assert_eq!(verdicts.take(), Verdict::Reject(BOTH));
        sniffed.write_all(b"x").await.expect_err("peer is gone");
    }
}
