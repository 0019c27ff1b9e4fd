//! The workbench page in a real browser: headless Chromium (Debian's
//! `chromium`) driven over the DevTools protocol against the real binary.
//! Where no Chromium is installed the test says so and passes; CI installs
//! it and sets `CUSTOMS_REQUIRE_BROWSER=1`, which turns that into a failure.
//! Screenshots of each view go to `$CUSTOMS_SCREENSHOTS` (default: under
//! Cargo's target tmp dir); `docs/screenshots/` holds the committed ones.

mod common;
use common::*;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Longest wait for Chromium to start, answer a command or reach a state.
const PATIENCE: Duration = Duration::from_secs(30);

struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CUSTOMS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

impl Browser {
    fn launch() -> Option<Browser> {
        let Some(exe) = chromium() else {
            assert!(
                std::env::var_os("CUSTOMS_REQUIRE_BROWSER").is_none(),
                "CUSTOMS_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)"
            );
            eprintln!(
                "SKIPPED: no chromium on PATH (apt-get install chromium, or set CUSTOMS_CHROMIUM)"
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1280,800",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("chromium stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(PATIENCE)
            .expect("chromium's DevTools address");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("DevTools websocket");
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        }
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().expect("session").to_string();
        b.call("Page.enable", json!({}));
        Some(b)
    }

    /// Sends one command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to chromium");
        loop {
            let reply = self.ws.read().expect("read from chromium");
            let Ok(text) = reply.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits, in the page, until `condition` holds (the page's own state, no sleeps here).
    fn wait_for(&mut self, condition: &str, what: &str) {
        let js = format!(
            "new Promise((ok, fail) => {{ const t0 = performance.now(); (function poll() {{ \
             try {{ if ({condition}) return ok(true); }} catch (e) {{}} \
             if (performance.now() - t0 > {ms}) return fail(new Error('timed out: {what}')); \
             setTimeout(poll, 10); }})(); }})",
            ms = PATIENCE.as_millis()
        );
        self.eval(&js);
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64_decode(shot["data"].as_str().expect("png data"));
        let dir = std::env::var_os("CUSTOMS_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

const POLICY: &str = r#"policy: customers
body:
  rules:
    - id: card-last-four
      mask: [$.customer.card]
      keep_last: 4
    - id: backstop
      redact: [$..*]
"#;

fn start_proxy(token: &str) -> Proxy {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let today = customs::config::warnings::today_utc();
    let soon = today
        .checked_add(jiff::Span::new().days(10))
        .expect("a date");
    let config = demo_config(&[
        "- { id: r, methods: [POST], path: /x, request: customers, response: pass }",
    ])
    .replace(
        "admin: { address: 127.0.0.1:0 }",
        &format!("admin: {{ address: 127.0.0.1:0, token: \"sha256:{digest}\" }}"),
    ) + &anonymous_integration(
        "ending",
        &["- { id: r, methods: [GET], path: /y, request: pass, response: pass }"],
    )
    .replace("expires: 2099-01-01", &format!("expires: {soon}"))
    .replace("mount: /demo", "mount: /ending");
    Proxy::builder()
        .upstream("http://127.0.0.1:9")
        .start(&config, &[("customers.yaml", POLICY)])
}

fn click(b: &mut Browser, selector: &str) {
    b.eval(&format!("document.querySelector({selector:?}).click()"));
}

fn fill(b: &mut Browser, selector: &str, value: &str) {
    b.eval(&format!(
        "document.querySelector({selector:?}).value = {}",
        json!(value)
    ));
}

#[test]
fn the_workbench_page_shows_the_inventory_and_runs_the_playground_in_a_browser() {
    let Some(mut b) = Browser::launch() else {
        return;
    };
    let token = fresh_token();
    let proxy = start_proxy(&token);
    b.call(
        "Page.navigate",
        json!({"url": format!("{}/ui", proxy.admin_url())}),
    );
    // Without a token the page asks for one; a wrong one is refused (401).
    b.wait_for(
        "location.pathname === '/ui' && !document.querySelector('#login').hidden",
        "login form",
    );
    fill(&mut b, "#token", "not-the-token");
    click(&mut b, "#use-token");
    b.wait_for(
        "document.querySelector('#login-error').textContent.includes('not accepted')",
        "wrong token refused",
    );
    fill(&mut b, "#token", &token);
    click(&mut b, "#use-token");
    b.wait_for("document.body.dataset.inventory === 'ready'", "inventory");

    let rows = b.eval(
        "[...document.querySelectorAll('#inv tbody tr')].map(tr => [tr.dataset.name, tr.className])",
    );
    let mut rows: Vec<(String, String)> = serde_json::from_value(rows).expect("rows");
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("demo".into(), String::new()),
            ("ending".into(), "warn".into())
        ],
        "one row per integration of the config; the one ending in 10 days is highlighted"
    );

    // A governed body crosses (the upstream is gone: the request side is what is sampled).
    let body = r#"{"customer": {"card": "5555 5555 5555 4444", "email": "ann.lee@partner.example", "tier": "gold"}}"#;
    send(
        &proxy.url(),
        "POST",
        "/demo/x",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    b.eval("delete document.body.dataset.discovery");
    click(&mut b, "header nav a[data-view=discovery]");
    b.wait_for("document.body.dataset.discovery === 'ready' && document.querySelectorAll('#routes tr').length > 1", "discovery");
    let fields = b.eval("[...document.querySelectorAll('#routes tbody tr')].map(tr => [tr.cells[0].textContent, tr.cells[3].textContent])");
    let fields: Vec<(String, String)> = serde_json::from_value(fields).expect("fields");
    assert!(
        fields.contains(&("$['customer']['card']".into(), "credit_card 1 of 1".into())),
        "{fields:?}"
    );
    let shown = b.eval("document.querySelector('#discovery').textContent");
    for planted in ["5555", "ann.lee"] {
        assert!(
            !shown.to_string().contains(planted),
            "discovery shows no value: {shown}"
        );
    }
    click(&mut b, "#routes button.draft");
    b.wait_for("document.body.dataset.draft === 'ready'", "drafted policy");
    let drafted = b.eval("document.querySelector('#draft').textContent");
    let drafted = drafted.as_str().expect("draft text");
    assert!(drafted.contains("policy: demo-r-request"), "{drafted}");
    assert!(
        drafted.contains("mask: [\"$.customer.card\"], keep_last: 4"),
        "{drafted}"
    );
    let discovery_png = b.screenshot("discovery");

    // The refused crossing (its upstream is gone) shows in the inventory's last hour.
    b.eval("delete document.body.dataset.inventory");
    click(&mut b, "header nav a[data-view=inventory]");
    b.wait_for(
        "document.body.dataset.inventory === 'ready'",
        "inventory again",
    );
    let hour = b.eval("document.querySelector('#inv tr[data-name=demo] td.hour').textContent");
    assert_eq!(hour, "1 crossings, 1 not forwarded");
    let inventory_png = b.screenshot("inventory");

    click(&mut b, "header nav a[data-view=playground]");
    b.wait_for(
        "document.querySelector('#policy').options.length > 0",
        "policies",
    );
    fill(&mut b, "#policy", "customers");
    let doc =
        r#"{"customer": {"card": "4111 1111 1111 1111", "note": "write to jane@example.com"}}"#;
    fill(&mut b, "#document", doc);
    click(&mut b, "#run");
    b.wait_for(
        "document.body.dataset.playground === 'ran'",
        "playground answer",
    );
    let output = b.eval("document.querySelector('#output').textContent");
    let output = output.as_str().expect("output text");
    assert!(output.contains("\"**** **** **** 1111\""), "{output}");
    for planted in ["4111 1111 1111 1111", "jane@example.com"] {
        assert!(!output.contains(planted), "{planted} shown: {output}");
    }
    assert!(output.contains("[EMAIL]"), "{output}");
    let marks = b.eval("[...document.querySelectorAll('#output mark')].map(m => m.title)");
    let marks: Vec<String> = serde_json::from_value(marks).expect("marks");
    assert!(
        marks.contains(&"card-last-four: mask".to_string()),
        "{marks:?}"
    );
    assert!(marks.contains(&"backstop: redact".to_string()), "{marks:?}");
    let rules = b.eval(
        "[...document.querySelectorAll('#changes tbody tr')].map(tr => tr.cells[0].textContent)",
    );
    assert!(rules.as_array().is_some_and(|r| r.len() >= 2), "{rules}");
    let playground_png = b.screenshot("playground");

    // How long the page takes once the browser has the token (a reload), from the
    // browser's own clock: reported, not asserted.
    b.eval("window.beforeReload = true");
    b.call("Page.reload", json!({}));
    b.wait_for(
        "!window.beforeReload && performance.getEntriesByName('customs-ready').length > 0",
        "reloaded inventory",
    );
    let timing = b.eval(
        "(() => { const n = performance.getEntriesByType('navigation')[0]; \
         const r = performance.getEntriesByName('customs-ready')[0]; \
         return [n.loadEventEnd - n.startTime, r ? r.startTime : -1, n.transferSize]; })()",
    );
    eprintln!(
        "page load {} ms, data shown at {} ms, {} bytes; screenshots {} {} {}",
        timing[0],
        timing[1],
        timing[2],
        inventory_png.display(),
        discovery_png.display(),
        playground_png.display()
    );
}
