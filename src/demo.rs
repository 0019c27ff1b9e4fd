//! `customs demo`: a sample partner API (an ITSM incident service full of
//! personal data) for the proxy to stand in front of. The same generator
//! feeds the benchmarks, so both see realistic payloads.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Where the sample API listens (the sample `customs.yaml` points here).
pub const SAMPLE_API_ADDR: &str = "127.0.0.1:18081";

const FIRST: [&str; 8] = [
    "Jane", "Omar", "Li", "Priya", "Lukas", "Amara", "Diego", "Sofia",
];
const LAST: [&str; 8] = [
    "Doe", "Haddad", "Wei", "Raman", "Becker", "Okafor", "Silva", "Rossi",
];
const CARDS: [&str; 4] = [
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "3400 000000 00009",
    "4012888888881881",
];
const SSNS: [&str; 4] = ["078-05-1120", "219-09-9999", "457-55-5462", "123-45-6789"];
const STATES: [&str; 4] = ["new", "in_progress", "on_hold", "resolved"];
const TOPICS: [&str; 6] = [
    "VPN drops every 10 minutes",
    "Mailbox full",
    "Laptop will not boot",
    "Payroll export failed",
    "MFA prompt loops",
    "Printer on floor 3 offline",
];

/// One deterministic incident, numbered `i`.
pub fn incident(i: usize) -> Value {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let email = format!(
        "{}.{}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let phone = format!("+1 415 555 {:04}", i % 10_000);
    let card = CARDS[i % CARDS.len()];
    json!({
        "id": format!("INC{:07}", 10_000 + i),
        "title": TOPICS[i % TOPICS.len()],
        "description": format!("Caller {first} {last} ({email}, {phone}) reports: {}. Card {card} was charged for the replacement. Ticket opened from 10.20.{}.{}.", TOPICS[i % TOPICS.len()].to_lowercase(), i % 250, (i * 7) % 250),
        "priority": 1 + i % 4,
        "state": STATES[i % STATES.len()],
        "opened_at": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, (i * 13) % 60),
        "customer": {
            "name": format!("{first} {last}"),
            "email": email,
            "phone": phone,
            "card_number": card,
            "ssn": SSNS[i % SSNS.len()],
        },
        "assignee": {"name": "Sam Agent", "email": format!("agent{}@corp.example", i % 17)},
        "internal_notes": "VIP customer; escalate to tier 2 if reopened.",
        "comments": [
            {"author": "caller", "text": format!("Still broken. Reach me at {phone}."), "at": "2026-11-20T09:00:00Z"},
            {"author": "desk", "text": "Restarted the gateway; monitoring.", "at": "2026-11-20T09:30:00Z"},
        ],
        "ci": format!("vpn-gw-{:02}", i % 12),
    })
}

/// An incident export of about `target_bytes` of JSON.
pub fn export(target_bytes: usize) -> Value {
    let one = serde_json::to_vec(&incident(0)).map_or(1_000, |v| v.len());
    let n = (target_bytes / one).max(1);
    json!({ "incidents": (0..n).map(incident).collect::<Vec<_>>() })
}

/// Serves the sample API until the task is dropped.
pub async fn sample_api(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req| async {
                Ok::<_, std::convert::Infallible>(answer(req).await)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    match (parts.method, path.strip_prefix("/api/incidents")) {
        (Method::GET, Some("" | "/")) => json_response(StatusCode::OK, &export(4_000)),
        (Method::GET, Some(id)) => {
            let n = id
                .trim_start_matches("/INC")
                .parse::<usize>()
                .unwrap_or(10_000);
            json_response(
                StatusCode::OK,
                &json!({"incidents": [incident(n.saturating_sub(10_000))]}),
            )
        }
        (Method::POST | Method::PATCH, Some(_)) => {
            // Echo what arrived, so the demo shows what the partner received.
            let received = Limited::new(body, 1 << 20)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let value: Value = serde_json::from_slice(&received).unwrap_or(Value::Null);
            let auth = parts.headers.get(header::AUTHORIZATION).is_some();
            json_response(
                StatusCode::OK,
                &json!({"partner_received": value, "credential_injected": auth}),
            )
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
