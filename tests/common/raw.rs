//! Raw HTTP/1 over TCP or TLS, for smuggling and framing tests: send bytes
//! verbatim, read until the peer closes (or a timeout), parse what came back.
//! End the last request with `Connection: close` to avoid waiting the timeout.

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a raw exchange reads before giving up on the peer closing.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `bytes` to `addr` and returns everything read until the peer closes
/// or [`RAW_TIMEOUT`] passes. The write side is never half-closed.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_exchange_for(addr, bytes, RAW_TIMEOUT)
}

/// [`raw_exchange`] with an explicit read deadline.
pub fn raw_exchange_for(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut tcp = TcpStream::connect_timeout(&addr, limit).expect("raw connect");
    // A peer that answers early and closes may reset the rest of the write.
    let _ = tcp.write_all(bytes);
    let sock = tcp.try_clone().expect("clone socket");
    read_until_close(&mut tcp, &sock, limit)
}

/// [`raw_exchange`] over TLS (server name = the IP of `addr`).
pub fn raw_exchange_tls(addr: SocketAddr, tls: &ClientConfig, bytes: &[u8]) -> Vec<u8> {
    let tcp = TcpStream::connect_timeout(&addr, RAW_TIMEOUT).expect("raw connect");
    let sock = tcp.try_clone().expect("clone socket");
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(tls.clone()), name).expect("TLS client");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    sock.set_read_timeout(Some(RAW_TIMEOUT))
        .expect("read timeout");
    let _ = stream.write_all(bytes).and_then(|()| stream.flush());
    read_until_close(&mut stream, &sock, RAW_TIMEOUT)
}

fn read_until_close(r: &mut impl Read, sock: &TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..100_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// One HTTP/1 response parsed from raw bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Names lower-cased, values trimmed, in wire order.
    pub headers: Vec<(String, String)>,
    /// De-chunked when the response was chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The status of the first response in `bytes`; panics (showing the bytes)
/// when they hold no HTTP/1 response. Check `is_empty()` first if "the
/// connection closed without answering" is an acceptable outcome.
pub fn parse_status(bytes: &[u8]) -> u16 {
    match parse_responses(bytes).first() {
        Some(r) => r.status,
        None => panic!(
            "no HTTP response in {} bytes: {:?}",
            bytes.len(),
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Every response in `bytes` (e.g. pipelined answers), framed by
/// Content-Length / chunked / end of data. Stops at the first unparseable byte.
pub fn parse_responses(mut bytes: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    while bytes.starts_with(b"HTTP/") {
        let Some((head, rest)) = split_head(bytes) else {
            break;
        };
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let Some(status) = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
        else {
            break;
        };
        let headers = parse_headers(lines);
        let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let chunked = find("transfer-encoding").is_some_and(|te| te.ends_with("chunked"));
        let (body, used) = if (100..200).contains(&status) || status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if chunked {
            dechunk(rest).unwrap_or_else(|| (rest.to_vec(), rest.len()))
        } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let len = len.min(rest.len());
            (rest[..len].to_vec(), len)
        } else {
            (rest.to_vec(), rest.len())
        };
        out.push(RawResponse {
            status,
            headers,
            body,
        });
        bytes = &rest[used..];
    }
    out
}

/// Splits a message at the blank line: (head text without it, rest).
pub fn split_head(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    Some((head, &bytes[end + 4..]))
}

/// `name: value` lines to lower-cased names and trimmed values.
pub fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// Decodes a chunked body: (payload, bytes consumed incl. trailers), or
/// `None` if incomplete or malformed.
pub fn dechunk(mut bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = bytes.len();
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let eol = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[..eol]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        bytes = &bytes[eol + 2..];
        if size == 0 {
            // Trailers (possibly none) end with an empty line.
            let end = if bytes.starts_with(b"\r\n") {
                2
            } else {
                bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4
            };
            return Some((out, total - bytes.len() + end));
        }
        if bytes.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
    None
}
