//! A real Prometheus server scrapes customs' admin listener and answers a
//! PromQL query about the request counter. `.ci/run` installs Debian's
//! `prometheus`; where it is missing this test says why and passes.

mod common;
use common::*;

fn config() -> String {
    demo_config(&["- { id: read, methods: [GET], path: /x, request: pass, response: pass }"])
}
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `f` every 200 ms until it returns Some, for at most `limit`.
fn until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn prometheus_scrapes_the_request_counter() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: the `prometheus` binary is not installed (apt-get install prometheus)");
        return;
    }
    let up = Upstream::json(200, "{}");
    let proxy = Proxy::builder().upstream(&up.url()).start(&config(), &[]);
    for _ in 0..3 {
        assert_eq!(send(&proxy.url(), "GET", "/demo/x", &[], b"").status, 200);
    }
    let port = free_port();
    let config = proxy.write(
        "prometheus.yml",
        &format!(
            "global: {{ scrape_interval: 1s }}\nscrape_configs:\n  - job_name: customs\n    static_configs: [{{ targets: ['{}'] }}]\n",
            proxy.admin_addr()
        ),
    );
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            proxy.dir().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prometheus = Prometheus(child);
    let base = format!("http://127.0.0.1:{port}");
    let query = "/api/v1/query?query=sum(customs_requests_total%7Bintegration%3D%22demo%22%2Coutcome%3D%22forwarded%22%7D)";
    // Prometheus listens before its storage is up and answers 503 until
    // then: wait for its readiness endpoint, then for the first scrape.
    let ready = until(Duration::from_secs(60), || {
        let r = request(&Via::H1, &base, "GET", "/-/ready", &[], b"").ok()?;
        (r.status == 200).then_some(())
    });
    assert!(ready.is_some(), "prometheus never became ready");
    let value = until(Duration::from_secs(60), || {
        let r = request(&Via::H1, &base, "GET", query, &[], b"").ok()?;
        assert_eq!(r.status, 200, "PromQL query: {}", r.text());
        let v = r.json();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(value.as_deref(), Some("3"), "PromQL answer");
}
