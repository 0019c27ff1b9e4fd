//! Live reload: a good change applies without dropping a request, a bad one
//! keeps the running configuration, and both are audited and counted.

mod common;
use common::*;

fn config() -> String {
    demo_config(&["- { id: read, methods: [GET], path: /x, request: pass, response: mask }"])
}
use std::time::{Duration, Instant};

const MASK: &str = "policy: mask\nbody:\n  rules:\n    - id: m\n      mask: [$.v]\n";
const REPLACE: &str =
    "policy: mask\nbody:\n  rules:\n    - id: m\n      replace: [$.v]\n      with: gone\n";

/// Sends requests until `done` says stop (bounded); returns (sent, failed).
fn request_loop(proxy: &Proxy, done: impl Fn(&Reply) -> bool) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut sent, mut failed) = (0, 0);
    while sent < 2_000 && Instant::now() < deadline {
        let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
        sent += 1;
        if r.status != 200 {
            failed += 1;
        }
        if done(&r) {
            break;
        }
    }
    (sent, failed)
}

/// Waits (bounded) for a service log line holding every one of `needles`.
#[track_caller]
fn await_log(proxy: &Proxy, needles: &[&str]) {
    let found = proxy.wait_logs(Duration::from_secs(10), |l| {
        needles.iter().all(|n| l.contains(n))
    });
    assert!(found, "{needles:?} not logged: {}", proxy.logs());
}

/// Every reload so far had `result`: counted in the metric, audited as events.
#[track_caller]
fn assert_reload_recorded(proxy: &Proxy, result: &str) {
    let metrics = proxy.admin("/metrics").text();
    let line = format!("customs_config_reloads_total{{result=\"{result}\"}}");
    assert!(metrics.contains(&line), "{metrics}");
    let events: Vec<_> = proxy
        .read_jsonl("audit.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "reload")
        .collect();
    assert!(
        !events.is_empty() && events.iter().all(|e| e["result"] == result),
        "{events:?}"
    );
}

#[test]
fn a_changed_policy_file_applies_without_failed_requests() {
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config(), &[("mask.yaml", MASK)]);
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x", &[], b"").text(),
        r#"{"v":"******"}"#
    );
    proxy.write("policies/mask.yaml", REPLACE);
    let (sent, failed) = request_loop(&proxy, |r| r.text() == r#"{"v":"gone"}"#);
    assert_eq!(
        failed, 0,
        "no request failed across the reload ({sent} sent)"
    );
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x", &[], b"").text(),
        r#"{"v":"gone"}"#
    );
    assert_reload_recorded(&proxy, "ok");
}

#[test]
fn a_bad_reload_keeps_the_running_configuration() {
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config(), &[("mask.yaml", MASK)]);
    proxy.write(
        "policies/mask.yaml",
        "policy: mask\nbody:\n  rules:\n    - id: m\n      mask: ['$.v[']\n",
    );
    proxy.signal("HUP");
    await_log(&proxy, &["Reload failed"]);
    let (sent, failed) = request_loop(&proxy, |_| true);
    assert_eq!((sent, failed), (1, 0));
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x", &[], b"").text(),
        r#"{"v":"******"}"#,
        "old policy still applies"
    );
    assert_reload_recorded(&proxy, "error");
}

/// A policy that fails its own tests is not what its author meant: the
/// reload is refused like a syntax error, and the running policy stays.
#[test]
fn a_policy_failing_its_own_tests_is_not_reloaded() {
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config(), &[("mask.yaml", MASK)]);
    let wrong = format!(
        "{REPLACE}tests:\n  - name: says mask\n    input: {{\"v\": \"ab\"}}\n    expect: {{\"v\": \"**\"}}\n"
    );
    proxy.write("policies/mask.yaml", &wrong);
    proxy.signal("HUP");
    await_log(&proxy, &["Reload failed", "test 'says mask' failed"]);
    let r = send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(r.text(), r#"{"v":"******"}"#, "old policy still applies");
    assert_reload_recorded(&proxy, "error");
}

/// A credential a reload removes leaves the metrics with it: no expiry
/// alert or orphan report about a key that no longer exists.
#[test]
fn a_removed_credential_leaves_the_metrics() {
    let client = |id: &str| {
        let hash = format!("sha256:{}", "ab".repeat(32));
        format!("clients:\n      - {{ id: {id}, api_key: \"{hash}\", expires: 2099-01-01 }}")
    };
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let with = |id: &str| config().replace("anonymous: true", &client(id));
    let mut proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&with("desk"), &[("mask.yaml", MASK)]);
    let series = |proxy: &Proxy, name: &str, id: &str| {
        let m = metrics::parse(&proxy.admin("/metrics").text());
        metrics::value(&m, name, &[("credential", id)])
    };
    for name in [
        "customs_credential_expiry_timestamp_seconds",
        "customs_credential_last_used_timestamp_seconds",
    ] {
        assert!(series(&proxy, name, "desk").is_some(), "{name}");
    }
    proxy.write("customs.yaml", &with("desk2"));
    proxy.signal("HUP");
    await_log(&proxy, &["Configuration reloaded"]);
    for name in [
        "customs_credential_expiry_timestamp_seconds",
        "customs_credential_last_used_timestamp_seconds",
    ] {
        assert_eq!(series(&proxy, name, "desk"), None, "{name}");
        assert!(series(&proxy, name, "desk2").is_some(), "{name}");
    }
}

/// A partner's rotated CA file is picked up like any other watched file.
#[test]
fn a_changed_upstream_ca_file_reloads() {
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let with_ca = config().replace(
        "upstream: { url: \"{upstream}\" }",
        "upstream: { url: \"{upstream}\", ca: partner-ca.pem }",
    );
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .file("partner-ca.pem", Pki::new().ca_pem())
        .start(&with_ca, &[("mask.yaml", MASK)]);
    proxy.write("partner-ca.pem", &Pki::new().ca_pem());
    await_log(&proxy, &["Configuration reloaded"]);
    assert_reload_recorded(&proxy, "ok");
}

/// Both rules of a policy, as the operator meant it, and its first rule
/// alone: valid YAML, but `$.w` would cross in clear.
const FULL_A: &str = "policy: mask\nbody:\n  rules:\n    - id: v\n      mask: [$.v]\n    - id: w\n      mask: [$.w]\n";
const HALF_B: &str =
    "policy: mask\nbody:\n  rules:\n    - id: v\n      replace: [$.v]\n      with: gone\n";
const REST_B: &str = "    - id: w\n      replace: [$.w]\n      with: gone\n";

/// A policy rewritten in place in two writes seconds apart (`scp`, NFS,
/// configuration management) is never served half-written: customs waits
/// for the files to settle (`reload.settle`, 5 s by default).
#[test]
fn a_policy_written_in_two_steps_is_never_served_half_written() {
    let up = Upstream::json(200, r#"{"v":"secret","w":"private"}"#);
    let proxy = Proxy::builder()
        .upstream(&up.url())
        .start(&config(), &[("mask.yaml", FULL_A)]);
    let get = || send(&proxy.url(), "GET", "/demo/x", &[], b"");
    assert_eq!(get().text(), r#"{"v":"******","w":"*******"}"#);

    proxy.write_in_place("policies/mask.yaml", HALF_B);
    // Seen (or, on a customs without a settle time, already loaded).
    let seen = |l: &str| l.contains("changed in place") || l.contains("Configuration reloaded");
    assert!(
        proxy.wait_logs(Duration::from_secs(10), seen),
        "{}",
        proxy.logs()
    );
    // Time itself is under test: longer than the old two-polls debounce
    // (1 s), well inside the settle time.
    std::thread::sleep(Duration::from_millis(1500));
    let between = get();
    assert_eq!(between.status, 200, "{}", between.text());
    assert_eq!(
        between.text(),
        r#"{"v":"******","w":"*******"}"#,
        "the half-written policy was served"
    );
    proxy.write_in_place("policies/mask.yaml", &format!("{HALF_B}{REST_B}"));
    await_log(&proxy, &["Configuration reloaded"]);
    assert_eq!(get().text(), r#"{"v":"gone","w":"gone"}"#);

    // One reload, of the complete file.
    assert_eq!(proxy.logs().matches("Configuration reloaded").count(), 1);
    let events: Vec<_> = proxy
        .read_jsonl("audit.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "reload")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "file change");
    assert_eq!(events[0]["result"], "ok");
}

/// A policy folder mounted from a Kubernetes ConfigMap, written the way the
/// kubelet's atomic writer does: the files are `name -> ..data/name`,
/// `..data` points at a timestamped folder, and an update writes a new
/// folder, then renames a new symlink over `..data`.
struct ConfigMapVolume {
    dir: std::path::PathBuf,
    current: String,
    updates: u32,
}

impl ConfigMapVolume {
    fn new(dir: &std::path::Path, files: &[(&str, &str)]) -> Self {
        let mut volume = ConfigMapVolume {
            dir: dir.to_path_buf(),
            current: String::new(),
            updates: 0,
        };
        let first = volume.payload(files);
        std::os::unix::fs::symlink(&first, dir.join("..data")).expect("..data symlink");
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name))
                .expect("user-visible symlink");
        }
        volume.current = first;
        volume
    }

    /// Writes a new timestamped folder; returns its name.
    fn payload(&mut self, files: &[(&str, &str)]) -> String {
        self.updates += 1;
        let name = format!(
            "..2026_12_07_21_00_0{}.00000000{}",
            self.updates, self.updates
        );
        std::fs::create_dir(self.dir.join(&name)).expect("payload folder");
        for (file, contents) in files {
            std::fs::write(self.dir.join(&name).join(file), contents).expect("payload file");
        }
        name
    }

    /// The kubelet's update: new folder, `..data_tmp` renamed over
    /// `..data`, old folder removed.
    fn update(&mut self, files: &[(&str, &str)]) {
        let next = self.payload(files);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&next, &tmp).expect("..data_tmp symlink");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        std::fs::remove_dir_all(self.dir.join(&self.current)).expect("remove old payload");
        self.current = next;
    }
}

#[test]
fn a_configmap_update_swapping_data_applies_at_once_without_failed_requests() {
    let up = Upstream::json(200, r#"{"v":"secret"}"#);
    let mount = tempfile::tempdir().expect("volume folder");
    let mut volume = ConfigMapVolume::new(mount.path(), &[("mask.yaml", MASK)]);
    let config = config().replace(
        "policies: policies/",
        &format!("policies: \"{}\"", mount.path().display()),
    );
    let proxy = Proxy::builder().upstream(&up.url()).start(&config, &[]);
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x", &[], b"").text(),
        r#"{"v":"******"}"#
    );
    volume.update(&[("mask.yaml", REPLACE)]);
    let (sent, failed) = request_loop(&proxy, |r| r.text() == r#"{"v":"gone"}"#);
    assert_eq!(failed, 0, "no request failed across the swap ({sent} sent)");
    assert_eq!(
        send(&proxy.url(), "GET", "/demo/x", &[], b"").text(),
        r#"{"v":"gone"}"#
    );
    // Applied as an atomic replacement, without waiting for a settle time.
    let events: Vec<_> = proxy
        .read_jsonl("audit.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "reload")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "file replaced");
    assert_eq!(events[0]["result"], "ok");
}
