//! Runs the real `customs serve` against files written into a temp dir.
//!
//! Readiness contract: once listeners are bound and everything is loaded, the
//! binary prints one stdout line `ready proxy=127.0.0.1:PORT [admin=127.0.0.1:PORT]`.
//! Configs say `address: 127.0.0.1:0`; the real ports come from that line.
//! Templates: `{dir}` (the temp dir) and any `.var(name, value)`, e.g. `{upstream}`.

use super::client::{Reply, send};
use super::lock;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long the binary may take to print its `ready` line or to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What a test writes before the proxy starts. Build with [`Proxy::builder`].
#[derive(Default)]
pub struct ProxySetup {
    vars: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    env: Vec<(String, String)>,
    program: Option<Vec<String>>,
}

impl ProxySetup {
    /// Sets `{upstream}`.
    pub fn upstream(self, url: &str) -> Self {
        self.var("upstream", url)
    }
    /// Sets the template placeholder `{name}`.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }
    /// Writes `contents` to `{dir}/rel` (parent folders created) before start.
    pub fn file(mut self, rel: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files
            .push((rel.to_string(), contents.as_ref().to_vec()));
        self
    }
    /// Sets an environment variable for the child (e.g. `CUSTOMS_HASH_KEY`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    /// Runs `argv` instead of the customs binary (harness self-tests only);
    /// `serve --config <path>` is still appended.
    pub fn program(mut self, argv: &[&str]) -> Self {
        self.program = Some(argv.iter().map(|a| a.to_string()).collect());
        self
    }

    /// Writes the files, starts `serve`, waits for readiness; panics (with the
    /// captured stderr) if it exits or is not ready within [`START_TIMEOUT`].
    #[track_caller]
    pub fn start(self, config: &str, policies: &[(&str, &str)]) -> Proxy {
        let mut p = self.spawn(config, policies);
        match p.wait_ready() {
            Ok(line) => p.parse_ready(&line),
            Err(why) => p.fail(&why),
        }
        p
    }

    /// Starts `serve` expecting it to refuse; returns its exit status and stderr.
    #[track_caller]
    pub fn start_expect_failure(
        self,
        config: &str,
        policies: &[(&str, &str)],
    ) -> (ExitStatus, String) {
        let mut p = self.spawn(config, policies);
        match p.wait_ready() {
            Ok(line) => p.fail(&format!("expected a refusal, but it became ready: {line}")),
            Err(_) => match p.wait_exit(START_TIMEOUT) {
                Some(status) => (status, p.logs()),
                None => p.fail("expected a refusal, but it neither got ready nor exited"),
            },
        }
    }

    fn spawn(self, config: &str, policies: &[(&str, &str)]) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars = self.vars;
        vars.push(("dir".into(), dir.path().to_string_lossy().into_owned()));
        let fill = |s: &str| fill(s, &vars);
        std::fs::create_dir_all(dir.path().join("policies")).expect("policies dir");
        let config_path = write(dir.path(), "customs.yaml", fill(config).as_bytes());
        for (name, yaml) in policies {
            write(
                dir.path(),
                &format!("policies/{name}"),
                fill(yaml).as_bytes(),
            );
        }
        for (rel, contents) in &self.files {
            write(dir.path(), rel, contents);
        }
        let default_argv = vec![env!("CARGO_BIN_EXE_customs").to_string()];
        let argv = self.program.unwrap_or(default_argv);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env_remove("CUSTOMS_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn customs");
        let (tx, events) = channel();
        let stdout = Arc::new(Output::default());
        let stderr = Arc::new(Output::default());
        let out = child.stdout.take().expect("stdout pipe");
        let err = child.stderr.take().expect("stderr pipe");
        let (tx2, out_buf, err_buf) = (tx.clone(), stdout.clone(), stderr.clone());
        // The ready line is on stdout, or on stderr when the audit log
        // writes to stdout.
        std::thread::spawn(move || read_lines(out, &out_buf, &tx, Event::StdoutClosed));
        std::thread::spawn(move || read_lines(err, &err_buf, &tx2, Event::StderrClosed));
        Proxy {
            child,
            dir,
            vars,
            addr: None,
            admin: None,
            stdout,
            stderr,
            events,
            stdout_open: true,
            stderr_open: true,
            reported: false,
        }
    }
}

/// A running `customs serve`; killed on drop (its stderr is printed when the
/// test is panicking).
pub struct Proxy {
    child: Child,
    dir: TempDir,
    vars: Vec<(String, String)>,
    addr: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    events: Receiver<Event>,
    stdout_open: bool,
    stderr_open: bool,
    /// Set once a panic message already carries the logs.
    reported: bool,
}

enum Event {
    Ready(String),
    StdoutClosed,
    StderrClosed,
}

/// A growing byte buffer fed by a reader thread, with change notification.
#[derive(Default)]
struct Output {
    data: Mutex<Vec<u8>>,
    changed: Condvar,
}

impl Output {
    fn push(&self, bytes: &[u8]) {
        lock(&self.data).extend_from_slice(bytes);
        self.changed.notify_all();
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.data)).into_owned()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() && !self.reported {
            eprintln!("--- customs stderr ---\n{}--- end ---", self.logs());
        }
    }
}

impl Proxy {
    pub fn builder() -> ProxySetup {
        ProxySetup::default()
    }
    /// Starts with only `{dir}` substituted (see [`ProxySetup::start`]).
    #[track_caller]
    pub fn start(config: &str, policies: &[(&str, &str)]) -> Proxy {
        ProxySetup::default().start(config, policies)
    }
    /// See [`ProxySetup::start_expect_failure`].
    #[track_caller]
    pub fn start_expect_failure(config: &str, policies: &[(&str, &str)]) -> (ExitStatus, String) {
        ProxySetup::default().start_expect_failure(config, policies)
    }

    /// The proxy listener, `127.0.0.1:PORT`.
    /// The proxy's process id (e.g. to read its memory use in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("proxy address")
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
    /// `https://127.0.0.1:PORT`, for configs with `listen.tls`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr())
    }
    /// The admin listener; panics if the config has none.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("the ready line has no admin= address")
    }
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr())
    }
    /// GET on the admin listener, e.g. `proxy.admin("/metrics").text()`.
    pub fn admin(&self, path: &str) -> Reply {
        send(&self.admin_url(), "GET", path, &[], b"")
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("customs.yaml")
    }
    /// Substitutes this proxy's template variables in `s`.
    pub fn fill(&self, s: &str) -> String {
        fill(s, &self.vars)
    }
    /// Replaces `{dir}/rel` (templated) atomically, e.g. to change a policy
    /// before a reload.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        write(self.dir(), rel, self.fill(contents).as_bytes())
    }
    /// Writes `{dir}/rel` in place (truncate, write), the way `scp` and
    /// NFS clients do: customs waits for such a file to settle.
    pub fn write_in_place(&self, rel: &str, contents: &str) {
        let path = self.dir().join(rel);
        std::fs::write(path, self.fill(contents)).expect("write file in place");
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir().join(rel)).expect("read file in proxy dir")
    }
    /// One JSON value per non-empty line of `{dir}/rel` (e.g. the audit log).
    pub fn read_jsonl(&self, rel: &str) -> Vec<serde_json::Value> {
        let text = self.read(rel);
        let lines = text.lines().filter(|l| !l.trim().is_empty());
        lines
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL ({e}): {l}")))
            .collect()
    }
    /// The crossing records of an audit log: events (`reload`, signals)
    /// share the chain but are left out here.
    /// Runs `customs audit verify` on `{dir}/rel`: its exit code and report.
    pub fn audit_verify(&self, rel: &str) -> (Option<i32>, String) {
        let verify = std::process::Command::new(env!("CARGO_BIN_EXE_customs"))
            .args(["audit", "verify"])
            .arg(self.dir().join(rel))
            .output()
            .expect("run audit verify");
        let out = String::from_utf8_lossy(&verify.stdout).into_owned();
        (verify.status.code(), out)
    }
    /// [`Proxy::audit_verify`]'s report; panics unless the chain is intact.
    pub fn verify_chain(&self, rel: &str) -> String {
        let (code, out) = self.audit_verify(rel);
        assert_eq!(code, Some(0), "{out}");
        out
    }
    pub fn crossings(&self, rel: &str) -> Vec<serde_json::Value> {
        let records = self.read_jsonl(rel).into_iter();
        records.filter(|r| r.get("event").is_none()).collect()
    }
    /// Service logs (stderr) so far.
    pub fn logs(&self) -> String {
        self.stderr.text()
    }
    /// Stdout so far (the ready line, and audit records with `path: "-"`).
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }
    /// Waits until `pred(logs)` holds; false after `limit`.
    pub fn wait_logs(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut data = lock(&self.stderr.data);
        for _ in 0..100_000 {
            if pred(&String::from_utf8_lossy(&data)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            data = match self.stderr.changed.wait_timeout(data, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        false
    }
    /// Polls `f` (bounded, 10 s) until it gives a value: for state that
    /// settles just after a response, e.g. a record written or a metric
    /// counted when a crossing's bookkeeping is dropped.
    #[track_caller]
    pub fn eventually<T>(&self, what: &str, mut f: impl FnMut(&Proxy) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..100_000 {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{what}: not seen within 10 s\n--- stderr ---\n{}",
            self.logs()
        )
    }
    /// Sends a signal by name (`"HUP"`, `"TERM"`, ...) via `kill`; does
    /// nothing once the process has exited.
    pub fn signal(&mut self, sig: &str) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let status = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.child.id().to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{sig} failed: {status}");
        }
    }
    /// SIGTERM, then waits up to 20 s for the exit status; panics on timeout.
    #[track_caller]
    pub fn stop_gracefully(&mut self) -> ExitStatus {
        self.signal("TERM");
        match self.wait_exit(START_TIMEOUT) {
            Some(status) => status,
            None => self.fail("did not exit within 20 s of SIGTERM"),
        }
    }
    /// Waits for the process to exit: first for both pipes to close, then
    /// for its status. `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while self.stdout_open || self.stderr_open {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.note(&event),
                Err(_) => return None,
            }
        }
        for _ in 0..10_000 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                break;
            }
            // Pipes are closed; the exit status follows within moments.
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn note(&mut self, event: &Event) {
        match event {
            Event::StdoutClosed => self.stdout_open = false,
            Event::StderrClosed => self.stderr_open = false,
            Event::Ready(_) => {}
        }
    }

    fn wait_ready(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for _ in 0..16 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Ready(line)) => return Ok(line),
                Ok(event) => self.note(&event),
                Err(_) => return Err("no ready line within 20 s".into()),
            }
            if !self.stdout_open {
                return Err("stdout closed before the ready line".into());
            }
        }
        Err("no ready line".into())
    }

    fn parse_ready(&mut self, line: &str) {
        for field in line.split_whitespace().skip(1) {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.rsplit("://").next().unwrap_or(value);
            let addr = value.parse().ok();
            match key {
                "proxy" => self.addr = addr,
                "admin" => self.admin = addr,
                _ => {}
            }
        }
        if self.addr.is_none() {
            self.fail(&format!("malformed ready line: {line:?}"));
        }
    }

    #[track_caller]
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let status = self.wait_exit(Duration::from_secs(5));
        self.reported = true;
        panic!(
            "customs serve: {why} (exit: {status:?})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.logs(),
            self.stdout()
        );
    }
}

fn read_lines(out: impl Read, buf: &Output, tx: &Sender<Event>, closed: Event) {
    let mut reader = BufReader::new(out);
    let mut line = Vec::new();
    let mut ready_sent = false;
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        buf.push(&line);
        if !ready_sent && line.starts_with(b"ready ") {
            ready_sent = true;
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let _ = tx.send(Event::Ready(text));
        }
        line.clear();
    }
    let _ = tx.send(closed);
}

/// Replaces each `{name}` in `template` by its value.
pub fn fill(template: &str, vars: &[(String, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn write(dir: &Path, rel: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder in proxy dir");
    }
    // Replaced atomically, as operators are told to: a temporary file
    // next to it, renamed over it (customs reloads that at once).
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).expect("write file in proxy dir");
    std::fs::rename(&tmp, &path).expect("rename file into place");
    path
}
