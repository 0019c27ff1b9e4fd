//! Why a crossing did not go through, and how each reason is answered
//! (SPEC §2.3). One table maps a reason to status, error code and audit
//! outcome; details go to the audit record only, never to the caller.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// What went wrong, classified by who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No or unknown credential.
    Unauthenticated,
    /// Credential expired, or route not in its subset.
    Forbidden,
    /// The integration is past its end date.
    IntegrationExpired,
    /// No integration, route or method matches.
    NoRoute,
    /// The request body was refused by policy.
    PolicyRefused,
    /// Malformed request: framing, path, body syntax.
    BadRequest,
    /// A body the policy cannot inspect (type or encoding).
    UnsupportedContent,
    /// Request body over the limit.
    TooLarge,
    /// Request body not received within `body_read_timeout`.
    RequestTimeout,
    /// The response was refused by policy or could not be inspected.
    ResponseRefused,
    /// The upstream could not be reached or broke the exchange.
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The injected upstream credential cannot be read.
    CredentialUnavailable,
    /// The crossing cannot be recorded.
    AuditUnavailable,
    /// No room in `limits.max_buffered_bytes` for a body.
    Overloaded,
}

/// Audit `outcome` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Crossed.
    Forwarded,
    /// Refused by policy.
    Refused,
    /// Refused by identity.
    Denied,
    /// Integration past its end date.
    Expired,
    /// Nothing declared matches.
    NoRoute,
    /// The upstream failed.
    UpstreamError,
    /// Malformed or unsupported input, or an internal refusal.
    Rejected,
}

impl Outcome {
    /// Label value in audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Refused => "refused",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::NoRoute => "no_route",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Rejected => "rejected",
        }
    }
}

impl Kind {
    /// Status, error code and audit outcome.
    pub fn answer(self) -> (StatusCode, &'static str, Outcome) {
        use Outcome as O;
        match self {
            Kind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", O::Denied),
            Kind::Forbidden => (StatusCode::FORBIDDEN, "forbidden", O::Denied),
            Kind::IntegrationExpired => (StatusCode::FORBIDDEN, "integration_expired", O::Expired),
            Kind::NoRoute => (StatusCode::NOT_FOUND, "no_route", O::NoRoute),
            Kind::PolicyRefused => (StatusCode::FORBIDDEN, "policy_refused", O::Refused),
            Kind::BadRequest => (StatusCode::BAD_REQUEST, "bad_request", O::Rejected),
            Kind::UnsupportedContent => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content",
                O::Rejected,
            ),
            Kind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", O::Rejected),
            Kind::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout", O::Rejected),
            Kind::ResponseRefused => (StatusCode::BAD_GATEWAY, "response_refused", O::Refused),
            Kind::UpstreamUnavailable => (
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                O::UpstreamError,
            ),
            Kind::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                O::UpstreamError,
            ),
            Kind::CredentialUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "credential_unavailable",
                O::Rejected,
            ),
            Kind::AuditUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                O::Rejected,
            ),
            Kind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", O::Rejected),
        }
    }
}

/// A refused crossing: the kind for the caller, the detail for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Classification.
    pub kind: Kind,
    /// For the audit record: which rule, which check. Never payload values.
    pub detail: String,
    /// Close the connection after answering (framing attacks).
    pub close: bool,
}

impl Refusal {
    /// A refusal with an audit detail.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Refusal {
            kind,
            detail: detail.into(),
            close: false,
        }
    }

    /// The same refusal, closing the connection afterwards.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The JSON error response the caller sees.
    pub fn response(&self, request_id: &str) -> Response<Full<Bytes>> {
        let (status, code, _) = self.kind.answer();
        let body = format!(r#"{{"error":"{code}","request_id":"{request_id}"}}"#);
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
