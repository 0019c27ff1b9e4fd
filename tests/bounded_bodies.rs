//! Governed bodies cost memory bounded by configuration, not by their shape: a body of
//! tiny values is refused while it is parsed once it holds more than
//! `limits.max_json_elements` values, both ways.

mod common;
use common::*;

const POLICY: &str = "policy: strict\nbody:\n  rules:\n    - id: m\n      mask: [$..ssn]\n";

fn ones(n: usize) -> String {
    let mut body = String::with_capacity(2 * n + 2);
    body.push('[');
    for i in 0..n {
        body.push_str(if i == 0 { "1" } else { ",1" });
    }
    body.push(']');
    body
}

fn start(up: &Upstream, limits: &str) -> Proxy {
    let config = demo_config(&[
        "- { id: up, methods: [POST], path: /up, request: strict, response: pass }",
        "- { id: down, methods: [GET], path: /down, request: pass, response: strict }",
    ]) + limits;
    Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("strict.yaml", POLICY)])
}

#[test]
fn a_body_over_the_element_budget_is_refused_both_ways() {
    let up = Upstream::json(200, &ones(1_001));
    let proxy = start(&up, "limits: { max_json_elements: 1000 }\n");
    let json = [("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(999).as_bytes(),
    );
    assert_eq!(r.status, 200, "1000 values cross: {}", r.text());
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(1_000).as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("bad_request"), "{}", r.text());
    assert_eq!(up.hits(), 1, "the refused body never reached the upstream");
    let r = send(&proxy.url(), "GET", "/demo/down", &[], b"");
    assert_eq!(r.status, 502, "{}", r.text());
    let records = proxy.crossings("audit.jsonl");
    let reasons: Vec<String> = records.iter().map(|r| r["reason"].to_string()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("more than 1000 values"))
            .count(),
        2,
        "{reasons:?}"
    );
}

#[test]
fn the_default_budget_refuses_a_ten_megabyte_array_of_ones() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up, "limits: { max_body_bytes: 12MiB }\n");
    let json = [("content-type", "application/json")];
    let r = send(
        &proxy.url(),
        "POST",
        "/demo/up",
        &json,
        ones(5 << 20).as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(up.hits(), 0);
}

/// Opens a POST declaring `len` body bytes and sends only the head and one byte.
async fn stalled_upload(addr: std::net::SocketAddr, len: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /demo/up HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n["
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp
}

/// The rest of the JSON array started by [`stalled_upload`], `len` bytes in all.
fn rest_of_array(len: usize) -> Vec<u8> {
    let mut rest = vec![b' '; len - 2];
    rest.push(b']');
    rest
}

/// Reads one response head from `read`; its status.
async fn status_of(mut read: tokio::net::tcp::OwnedReadHalf) -> u16 {
    use tokio::io::AsyncReadExt;
    let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match read.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return 0,
        }
    }
    parse_status(&head)
}

#[test]
fn bodies_held_at_once_are_bounded_by_the_budget_and_the_excess_gets_503() {
    const LEN: usize = 900 << 10;
    let up = Upstream::json(200, "{}");
    let proxy = start(
        &up,
        "limits: { max_body_bytes: 1MiB, max_buffered_bytes: 2MiB }\n",
    );
    let addr = proxy.addr();
    let (first, rest) = block_on(async move {
        use tokio::io::AsyncWriteExt;
        let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
        let mut writers = Vec::new();
        for i in 0..3 {
            let (read, write) = stalled_upload(addr, LEN).await.into_split();
            let answers = answers.clone();
            tokio::spawn(async move { answers.send((i, status_of(read).await)) });
            writers.push(write);
        }
        // Two bodies fit the budget; whichever came third waits for room, then gets 503
        // while the other two are still arriving.
        let (refused, first) = answered.recv().await.expect("a first answer");
        for (i, write) in writers
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != refused)
        {
            write
                .write_all(&rest_of_array(LEN))
                .await
                .unwrap_or_else(|e| panic!("{i}: {e}"));
        }
        let rest = [answered.recv().await, answered.recv().await];
        (first, rest.map(|a| a.expect("an answer").1))
    });
    assert_eq!(first, 503);
    assert_eq!(rest, [200, 200]);
    let overloaded = proxy
        .crossings("audit.jsonl")
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("max_buffered_bytes"))
        })
        .count();
    assert_eq!(
        overloaded, 1,
        "the refused crossing is recorded with its reason"
    );
}

/// `n` JSON strings of prose with an e-mail in each: work for a `redact` rule.
fn prose(n: usize) -> String {
    let item = r#""Caller jane.doe@example.com reports the printer on floor 3 is jammed again""#;
    format!("[{}]", vec![item; n].join(","))
}

#[test]
fn one_integrations_backlog_does_not_hold_up_anothers_bodies() {
    let up = Upstream::json(200, "{}");
    let mut config =
        demo_config(&["- { id: up, methods: [POST], path: /up, request: redact, response: pass }"]);
    config = config.replace(
        "listen: { address: 127.0.0.1:0 }",
        "listen: { address: 127.0.0.1:0, workers: 1 }",
    );
    config.push_str(&anonymous_integration(
        "other",
        &["- { id: up, methods: [POST], path: /up, request: redact, response: pass }"],
    ));
    let policy = "policy: redact\nbody:\n  rules:\n    - id: r\n      redact: [$..*]\n      detectors: [email]\n";
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config, &[("redact.yaml", policy)]);
    let json = [("content-type", "application/json")];
    let heavy = prose(20_000);
    let url = proxy.url();
    // Six large bodies from `demo` queue on the single policy thread...
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..6)
        .map(|_| {
            let (url, heavy, done) = (url.clone(), heavy.clone(), done.clone());
            std::thread::spawn(move || {
                let r = send(&url, "POST", "/demo/up", &json, heavy.as_bytes());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r.status
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let waiting = || {
        let samples = metrics::parse(&proxy.admin("/metrics").text());
        metrics::value(&samples, "customs_policy_jobs_waiting", &[]).unwrap_or(0.0)
    };
    let queued = std::iter::from_fn(|| (std::time::Instant::now() < deadline).then(waiting))
        .any(|v| v >= 5.0);
    assert!(queued, "the heavy bodies queued");
    // ...(one running, five waiting), and a small one from `other` takes its turn after at
    // most two of them (the running one and the next in `demo`'s lane), not after all six.
    let r = send(&url, "POST", "/other/up", &json, prose(60).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let heavy_done = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        heavy_done < 6,
        "the small body waited for the whole backlog"
    );
    for s in senders {
        assert_eq!(s.join().expect("sender"), 200);
    }
}
