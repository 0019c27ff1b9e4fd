//! Stages 4 and 6: bodies. A governed body is read whole (bounded), decoded
//! (bounded), parsed strictly and rewritten by its policy before a single
//! byte of it is released; anything that cannot be inspected is refused.

use super::budget::{Budget, Charge};
use super::decode::{self, DecodeError};
use crate::config::Limits;
use crate::json::Bounds;
use crate::policy::document::{DocumentError, Format, apply_bytes, apply_bytes_seen};
use crate::policy::names::{essence, is_ndjson};
use crate::policy::transform::HashKey;
use crate::policy::{Apply, OtherContent, Outcome, Policy};
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;

/// Why a body was not released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over `max_body_bytes`, raw or decoded.
    TooLarge,
    /// No room in `limits.max_buffered_bytes` within the wait.
    Overloaded,
    /// The body broke off or its framing was invalid.
    Broken,
    /// A type or encoding the policy cannot inspect.
    Unsupported(String),
    /// Not strict JSON.
    Malformed(String),
    /// A rule refused it.
    /// A rule refused it; what the policy counted up to then, for the record.
    Refused(String, Box<Outcome>),
    /// The policy could not run.
    Internal(String),
}

/// Reads a whole body, stopping as soon as it passes `limit` bytes; a
/// declared `Content-Length` over the limit is refused before reading. Every
/// byte held is charged to `budget` (a declared length up front) and stays
/// charged while the returned [`Charge`] lives.
pub async fn read<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    budget: &Budget,
) -> Result<(Bytes, Charge), BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let declared = content_length(headers);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut charge = Charge::default();
    let declared = declared.map_or(0, |n| n as usize);
    budget
        .charge(&mut charge, declared)
        .await
        .map_err(|_| BodyError::Overloaded)?;
    let mut body = std::pin::pin!(body);
    let held = fill(body.as_mut(), limit, declared, budget, &mut charge).await?;
    match held.ended {
        true => Ok((concat(held.chunks, held.len), charge)),
        false => Err(BodyError::TooLarge),
    }
}

/// The `Content-Length` a body declares (hyper has checked its framing).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// What [`fill`] read of a body.
#[derive(Debug, Default)]
pub struct Held {
    /// The chunks read, in order.
    pub chunks: Vec<Bytes>,
    /// Their length.
    pub len: usize,
    /// Whether the body ended; if not, it passed the limit (its last chunk,
    /// the one past it, is held but not charged).
    pub ended: bool,
}

/// Reads a body until its end, or until it holds more than `limit` bytes.
/// Bytes beyond the `prepaid` ones are charged to `budget` as they arrive.
pub async fn fill<B>(
    mut body: std::pin::Pin<&mut B>,
    limit: usize,
    prepaid: usize,
    budget: &Budget,
    charge: &mut Charge,
) -> Result<Held, BodyError>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let mut held = Held::default();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue;
        };
        let len = held.len + data.len();
        if len > limit {
            held.chunks.push(data);
            held.len = len;
            return Ok(held);
        }
        let beyond = len.saturating_sub(prepaid.max(held.len));
        budget
            .charge(charge, beyond)
            .await
            .map_err(|_| BodyError::Overloaded)?;
        held.len = len;
        held.chunks.push(data);
    }
    held.ended = true;
    Ok(held)
}

/// One buffer from the chunks; a body that came in one chunk is not copied.
pub fn concat(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(len);
    chunks.iter().for_each(|c| all.extend_from_slice(c));
    all.freeze()
}

/// A body released by its policy.
#[derive(Debug)]
pub struct Governed {
    /// The bytes to send on.
    pub body: Bytes,
    /// What the policy did; `None` when the body crossed untouched.
    pub outcome: Option<Outcome>,
}

/// Applies `policy` to a body with these headers. On success with an
/// outcome, the body was re-serialised: the caller must drop encoding and
/// digest headers (see `headers::strip_body_digests`). `seen`, when a drift
/// probe samples this body, is shown each parsed document before the policy
/// runs; it needs the tree engine's `Value`, so only bodies nobody samples may
/// take the stream engine.
pub fn govern(
    policy: &Policy,
    headers: &HeaderMap,
    raw: Bytes,
    limits: &Limits,
    hash_key: Option<&HashKey>,
    seen: Option<&mut dyn FnMut(&serde_json::Value)>,
) -> Result<Governed, BodyError> {
    // An empty body carries no data to govern (204s, GETs, HEAD answers).
    if raw.is_empty() {
        return Ok(Governed {
            body: raw,
            outcome: None,
        });
    }
    // Several Content-Type headers: which one the upstream reads is anyone's
    // guess, so neither is trusted (attacks.md C.28).
    let mut declared = headers.get_all(CONTENT_TYPE).iter();
    let content_type = declared.next().map(|v| v.to_str().unwrap_or_default());
    if declared.next().is_some() {
        return Err(BodyError::Unsupported(
            "several Content-Type headers".into(),
        ));
    }
    let media = content_type.map(essence).unwrap_or_default();
    if media.is_empty() || !policy.governs(&media) {
        return match policy.other_content {
            OtherContent::Pass => Ok(Governed {
                body: raw,
                outcome: None,
            }),
            OtherContent::Refuse => Err(BodyError::Unsupported(format!(
                "content type '{}' is not governed by policy '{}'",
                if media.is_empty() {
                    "(none)"
                } else {
                    media.as_str()
                },
                policy.name
            ))),
        };
    }
    // The policy reads UTF-8; a body declared in another charset means
    // something else to the upstream (UTF-7 `+ADA-` is a digit to it).
    if !charset_is_utf8(content_type.unwrap_or_default()) {
        return Err(BodyError::Unsupported(format!(
            "charset other than UTF-8 for '{media}'"
        )));
    }
    let decoded = decode_body(headers, raw, limits.max_body_bytes)?;
    let format = if is_ndjson(&media) {
        Format::Ndjson
    } else {
        Format::Json
    };
    let how = Apply {
        hash_key,
        report: false,
    };
    let bounds = Bounds {
        depth: limits.max_json_depth,
        elements: limits.max_json_elements,
    };
    let applied = match seen {
        Some(seen) => apply_bytes_seen(policy, &decoded, format, bounds, &how, seen),
        None => apply_bytes(policy, &decoded, format, bounds, &how),
    }
    .map_err(|e| match e {
        DocumentError::Apply(e) => BodyError::Internal(e.to_string()),
        other => BodyError::Malformed(other.to_string()),
    })?;
    if let Some(r) = applied
        .outcome
        .refused
        .as_ref()
        .filter(|_| applied.outcome.blocks(policy))
    {
        let path = crate::audit::redact::field_path(&r.path);
        let detail = format!("rule {} at {path}", r.rule);
        return Err(BodyError::Refused(detail, Box::new(applied.outcome)));
    }
    Ok(Governed {
        body: Bytes::from(applied.bytes),
        outcome: Some(applied.outcome),
    })
}

/// Whether every `charset` parameter of a Content-Type value (if any) names
/// UTF-8. Parameters are split naively on `;`: a quoted value holding one
/// does not parse as UTF-8 and is refused, never guessed at.
fn charset_is_utf8(content_type: &str) -> bool {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|param| param.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .all(|(_, value)| {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        })
}

fn decode_body(headers: &HeaderMap, raw: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    let values: Vec<&str> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    let coding = match values.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => {
            return Err(BodyError::Unsupported(
                "several Content-Encoding headers".into(),
            ));
        }
    };
    decode::decode(coding, raw, limit).map_err(|e| match e {
        DecodeError::TooLarge { .. } => BodyError::TooLarge,
        other => BodyError::Unsupported(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::charset_is_utf8;

    #[test]
    fn only_utf8_charsets_are_read() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json; CHARSET=utf8; v=1",
        ] {
            assert!(charset_is_utf8(ok), "{ok}");
        }
        for bad in [
            "application/json; charset=utf-7",
            "application/json; charset=utf-16",
            "application/json; charset=utf-8; charset=utf-7",
            "application/json; charset=",
            "application/json; charset=\"utf-8;\"",
        ] {
            assert!(!charset_is_utf8(bad), "{bad}");
        }
    }
}
