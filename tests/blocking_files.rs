//! Reading a file never blocks the proxy: a FIFO or a device put in place of a secret, a
//! policy or the config is an error (a 503 for the secret, a failed reload, a failed check),
//! while crossings, `/healthz` and SIGTERM keep working.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Two routes: `/demo/open` has no credential, `/secret/x` injects one from a file.
fn config() -> String {
    let mut config = demo_config(&[
        "- { id: open, methods: [GET], path: /open, request: pass, response: pass }",
    ]);
    config.push_str(
        r#"  - name: secret
    owner: team@example.com
    classification: internal
    boundary: internal
    reviewed: 2026-09-01
    expires: 2099-01-01
    anonymous: true
    upstream:
      url: "{upstream}"
      inject: { header: Authorization, value: "Bearer ${file:secrets/token}" }
    routes:
      - { id: x, methods: [GET], path: /x, request: pass, response: pass }
"#,
    );
    config
}

fn start(up: &Upstream) -> Proxy {
    Proxy::builder()
        .upstream(&up.url())
        .file("secrets/token", "t0k3n\n")
        .start(&config(), &[])
}

/// Sends `GET path` until the status is `want` (bounded); true when it was.
fn until_status(proxy: &Proxy, path: &str, want: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if send(&proxy.url(), "GET", path, &[], b"").status == want {
            return true;
        }
    }
    false
}

#[track_caller]
fn still_serving(proxy: &Proxy) {
    assert_eq!(proxy.admin("/healthz").status, 200);
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/open", &[], b"").status,
        200
    );
}

#[track_caller]
fn stops_on_sigterm(mut proxy: Proxy) {
    proxy.signal("TERM");
    let exit = proxy.wait_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "SIGTERM ended the proxy: {exit:?}"
    );
}

#[test]
fn a_secret_replaced_by_a_fifo_refuses_its_crossings_and_blocks_nothing() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    assert_eq!(send(&proxy.url(), "GET", "/secret/x", &[], b"").status, 200);
    mkfifo(&proxy.dir().join("secrets/token"));
    assert!(
        until_status(&proxy, "/secret/x", 503),
        "a secret that cannot be read refuses its crossings"
    );
    still_serving(&proxy);
    let sent: Vec<_> = up
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        !sent.is_empty() && sent.iter().all(|t| t == "Bearer t0k3n"),
        "{sent:?}"
    );
    stops_on_sigterm(proxy);
}

#[test]
fn a_fifo_in_the_policies_folder_fails_the_reload_and_blocks_nothing() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    mkfifo(&proxy.dir().join("policies/f.yaml"));
    let failed = proxy.wait_logs(Duration::from_secs(10), |l| {
        l.contains("Reload failed") && l.contains("not a regular file")
    });
    assert!(failed, "the reload names the problem: {}", proxy.logs());
    still_serving(&proxy);
    stops_on_sigterm(proxy);
}

#[test]
fn check_refuses_a_policy_that_is_a_device_or_a_fifo_at_once() {
    let up = Upstream::json(200, "{}");
    let proxy = start(&up);
    let policies = proxy.dir().join("policies");
    std::os::unix::fs::symlink("/dev/zero", policies.join("zero.yaml")).expect("symlink");
    mkfifo(&policies.join("fifo.yaml"));
    let mut check = Command::new(env!("CARGO_BIN_EXE_customs"))
        .args(["check", "--config"])
        .arg(proxy.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run check");
    // Bounded: a check that hangs on the FIFO fails here instead of hanging the suite.
    let deadline = Instant::now() + Duration::from_secs(20);
    while check.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = check.kill();
    let out = check.wait_with_output().expect("check output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("zero.yaml") && text.contains("fifo.yaml"),
        "{text}"
    );
    assert_eq!(text.matches("not a regular file").count(), 2, "{text}");
}
