//! `limits:`: the resolved limits and their validation, each error at its line.

use super::{
    Builder, DEFAULT_BODY_READ, DEFAULT_MAX_BODY, DEFAULT_MAX_DEPTH, DEFAULT_RESPONSE_HEADERS,
    DEFAULT_TUNNEL_IDLE, MAX_DEPTH_LIMIT, MAX_RESPONSE_HEADERS, file, units,
};
use serde_saphyr::Spanned;
use std::time::Duration;

/// `limits:` resolved.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body, after decoding.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
    /// Most JSON values (scalars and containers) in one body.
    pub max_json_elements: usize,
    /// Body bytes all crossings may hold at once (read at start).
    pub max_buffered_bytes: usize,
    /// Whole upstream exchange.
    pub upstream_timeout: Duration,
    /// Whole request body, from the end of the head.
    pub body_read_timeout: Duration,
    /// Longest silence, both ways, on an upgraded connection.
    pub tunnel_idle_timeout: Duration,
    /// Largest body a `pass` direction streams; `None`: no limit.
    pub max_pass_bytes: Option<u64>,
    /// Longest silence of a streamed `pass` body.
    pub stream_idle_timeout: Duration,
    /// Most header fields in an upstream response head.
    pub max_response_headers: usize,
    /// Most connections open at once on the proxy listener (read at start).
    pub max_connections: usize,
    /// Deadline for a request head and for a new connection's first request (read at start).
    pub header_timeout: Duration,
    /// An HTTP/2 connection without open streams is closed after this (read at start).
    pub idle_timeout: Duration,
    /// A connection whose writes make no progress for this long is closed (read at start).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY as usize,
            max_json_depth: DEFAULT_MAX_DEPTH,
            max_json_elements: crate::json::DEFAULT_MAX_ELEMENTS,
            max_buffered_bytes: 256 << 20,
            upstream_timeout: Duration::from_secs(30),
            body_read_timeout: DEFAULT_BODY_READ,
            tunnel_idle_timeout: DEFAULT_TUNNEL_IDLE,
            max_pass_bytes: None,
            stream_idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_response_headers: DEFAULT_RESPONSE_HEADERS,
        }
    }
}

impl Builder<'_> {
    pub(super) fn limits(&mut self, raw: &file::LimitsFile) -> Limits {
        let depth = raw.max_json_depth.as_ref();
        let max_json_depth = depth.map_or(DEFAULT_MAX_DEPTH, |d| d.value);
        if !(1..=MAX_DEPTH_LIMIT).contains(&max_json_depth) {
            self.error(
                depth.map_or(0, |d| d.referenced.line()),
                format!("max_json_depth {max_json_depth} is out of range"),
                "use a value from 1 to 127",
            );
        }
        let body = raw
            .max_body_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_BODY, |s| s.value.0);
        if let Some(zero) = raw.max_body_bytes.as_ref().filter(|s| s.value.0 == 0) {
            self.error(
                zero.referenced.line(),
                "limits.max_body_bytes is zero: every body would be refused".into(),
                "use a positive size, e.g. 10MiB",
            );
        }
        for (name, value) in [
            ("upstream_timeout", &raw.upstream_timeout),
            ("body_read_timeout", &raw.body_read_timeout),
            ("tunnel_idle_timeout", &raw.tunnel_idle_timeout),
            ("stream_idle_timeout", &raw.stream_idle_timeout),
            ("header_timeout", &raw.header_timeout),
            ("idle_timeout", &raw.idle_timeout),
            ("write_timeout", &raw.write_timeout),
        ] {
            if let Some(zero) = value.as_ref().filter(|s| s.value.0.is_zero()) {
                self.error(
                    zero.referenced.line(),
                    format!("limits.{name} is zero"),
                    "use a positive duration, e.g. 30s",
                );
            }
        }
        let body_cap = raw
            .max_body_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_BODY, |s| s.value.0);
        if let Some(small) = raw
            .max_buffered_bytes
            .as_ref()
            .filter(|s| s.value.0 < body_cap)
        {
            self.error(
                small.referenced.line(),
                "limits.max_buffered_bytes is below max_body_bytes: a body of the largest allowed size could never be held".into(),
                "use at least max_body_bytes (default 10MiB); the default is 256MiB",
            );
        }
        if let Some(zero) = raw.max_json_elements.as_ref().filter(|s| s.value == 0) {
            self.error(
                zero.referenced.line(),
                "limits.max_json_elements is zero: every JSON body would be refused".into(),
                "use a positive count, e.g. 1000000",
            );
        }
        let headers = raw.max_response_headers.as_ref();
        if let Some(bad) = headers.filter(|h| !(1..=MAX_RESPONSE_HEADERS).contains(&h.value)) {
            self.error(
                bad.referenced.line(),
                format!("limits.max_response_headers {} is out of range", bad.value),
                "use a value from 1 to 10000 (default 100)",
            );
        }
        if let Some(zero) = raw.max_connections.as_ref().filter(|s| s.value == 0) {
            self.error(
                zero.referenced.line(),
                "limits.max_connections is zero: no caller could connect".into(),
                "use a positive count, e.g. 10000",
            );
        }
        let d = Limits::default();
        let span = |v: &Option<Spanned<units::Span>>, default: Duration| {
            v.as_ref().map_or(default, |s| s.value.0)
        };
        Limits {
            max_response_headers: headers.map_or(DEFAULT_RESPONSE_HEADERS, |h| {
                h.value.clamp(1, MAX_RESPONSE_HEADERS)
            }),
            max_body_bytes: usize::try_from(body).unwrap_or(usize::MAX),
            max_json_depth: max_json_depth.clamp(1, MAX_DEPTH_LIMIT),
            max_json_elements: raw
                .max_json_elements
                .as_ref()
                .map_or(d.max_json_elements, |s| s.value),
            max_buffered_bytes: raw
                .max_buffered_bytes
                .as_ref()
                .map_or(d.max_buffered_bytes, |s| {
                    usize::try_from(s.value.0).unwrap_or(usize::MAX)
                }),
            upstream_timeout: span(&raw.upstream_timeout, d.upstream_timeout),
            body_read_timeout: span(&raw.body_read_timeout, d.body_read_timeout),
            tunnel_idle_timeout: span(&raw.tunnel_idle_timeout, d.tunnel_idle_timeout),
            max_pass_bytes: raw.max_pass_bytes.as_ref().map(|s| s.value.0),
            stream_idle_timeout: span(&raw.stream_idle_timeout, d.stream_idle_timeout),
            max_connections: raw
                .max_connections
                .as_ref()
                .map_or(d.max_connections, |s| s.value),
            header_timeout: span(&raw.header_timeout, d.header_timeout),
            idle_timeout: span(&raw.idle_timeout, d.idle_timeout),
            write_timeout: span(&raw.write_timeout, d.write_timeout),
        }
    }
}
