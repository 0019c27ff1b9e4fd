//! What the HTTP layer refuses before a request reaches the handler:
//! counted by reason, since no crossing record can be written for it.

use super::sniff::Verdicts;
use crate::metrics::ProtocolError;
use prometheus::IntCounterVec;

/// Counts connections and streams refused before a request reached the
/// handler (`customs_protocol_errors_total{reason}`); hyper answers them
/// (400, 431) or drops them itself.
#[derive(Clone, Default)]
pub struct Rejections(Option<IntCounterVec>);

impl Rejections {
    /// Counts into `counter` (labelled by [`ProtocolError`]).
    pub fn new(counter: IntCounterVec) -> Self {
        Rejections(Some(counter))
    }

    pub(super) fn count(&self, reason: ProtocolError) {
        if let Some(c) = &self.0 {
            c.with_label_values(&[reason.as_str()]).inc();
        }
    }
}

impl std::fmt::Debug for Rejections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rejections")
    }
}

/// Why a connection ended with `error`, if it is one the HTTP layer
/// refused; `None` for a caller going away (its crossing is recorded).
pub(super) fn classify(
    error: &(dyn std::error::Error + 'static),
    framing: &Verdicts,
) -> Option<ProtocolError> {
    let Some(e) = error.downcast_ref::<hyper::Error>() else {
        return Some(ProtocolError::Other);
    };
    Some(if e.is_parse_too_large() {
        ProtocolError::HeadTooLarge
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_version_h2() {
        ProtocolError::Malformed
    } else if e.is_timeout() && framing.mid_head() {
        ProtocolError::HeadTimeout
    } else if e.is_incomplete_message() && framing.mid_head() {
        ProtocolError::Incomplete
    } else if e.is_timeout() || e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        // An idle keep-alive connection closed, or a caller that left.
        return None;
    } else if e.is_body_write_aborted() || e.is_user() {
        return None;
    } else if framing.http2() {
        ProtocolError::Http2
    } else {
        ProtocolError::Other
    })
}
