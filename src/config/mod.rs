//! Configuration: `customs.yaml` plus the policies folder, validated into one
//! immutable [`Config`] snapshot. Every mistake is reported with `file:line`;
//! `check` is "load and print the diagnostics".

pub mod file;
mod limits;
mod pattern;
pub mod read;

pub use limits::Limits;
pub mod secret;
pub mod units;
pub mod warnings;

pub use file::{Boundary, Classification, OnFailure};
pub use pattern::PathPattern;

use crate::diag::{Diagnostic, Diagnostics};
use crate::policy::{self, Policy, PolicySet};
use file::{ConfigFile, IntegrationFile, RouteFile, Text};
use http::{HeaderName, Method, Uri};
use secret::SecretTemplate;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default body limit: 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 << 20;
/// Default JSON nesting limit.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// serde_json's recursion limit caps ours.
pub const MAX_DEPTH_LIMIT: usize = crate::json::MAX_DEPTH;
/// Most `listen.workers`.
const MAX_WORKERS: usize = 1024;
/// Default deadline for a whole request body (slow-body attacks).
pub const DEFAULT_BODY_READ: Duration = Duration::from_secs(30);
/// Default idle limit of an upgraded connection (nginx's `proxy_read_timeout`).
pub const DEFAULT_TUNNEL_IDLE: Duration = Duration::from_secs(60);
/// Default `limits.max_response_headers` (hyper's own default).
pub const DEFAULT_RESPONSE_HEADERS: usize = 100;
/// Most `limits.max_response_headers`.
const MAX_RESPONSE_HEADERS: usize = 10_000;
/// Default `reload.settle`: longer than the pauses between the writes of
/// `scp`, NFS clients and configuration management tools.
pub const DEFAULT_RELOAD_SETTLE: Duration = Duration::from_secs(5);

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The config file.
    pub file: PathBuf,
    /// Proxy listener address.
    pub listen: SocketAddr,
    /// Threads serving the listener (`listen.workers`; one per CPU by default).
    pub workers: usize,
    /// Listener TLS files.
    pub tls: Option<TlsFiles>,
    /// Admin listener address.
    pub admin: Option<SocketAddr>,
    /// Crossing log settings.
    pub audit: AuditSettings,
    /// Bounds.
    pub limits: Limits,
    /// HMAC key of `hash` rules (resolved).
    pub hash_key: Option<policy::transform::HashKey>,
    /// Every loaded policy.
    pub policies: PolicySet,
    /// Monitoring signal thresholds.
    pub signals: SignalSettings,
    /// Integrations in file order.
    pub integrations: Vec<Integration>,
    /// Files and folders whose change triggers a reload: the config, the
    /// policies folder and every referenced secret file.
    pub watched: Vec<PathBuf>,
    /// How long watched files must stay unchanged after an in-place write
    /// before they are loaded (`reload.settle`).
    pub reload_settle: Duration,
}

/// Listener certificate files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Chain (PEM).
    pub cert: PathBuf,
    /// Key (PEM).
    pub key: PathBuf,
    /// Client CA (PEM), for mTLS.
    pub client_ca: Option<PathBuf>,
}

/// Where crossing records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// A file, rotated by size.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// `audit:` resolved.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Destination.
    pub sink: AuditSink,
    /// Rotation size.
    pub rotate_bytes: u64,
    /// Refuse or continue when a record cannot be written.
    pub on_failure: OnFailure,
}

/// `signals:` resolved (see [`crate::signals`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalSettings {
    /// Length of one traffic window (a minute outside tests).
    pub window: Duration,
    /// Time after start before volumes are compared with their baseline.
    pub warmup: Duration,
    /// Multiple of the moving baseline that makes a window anomalous.
    pub volume_multiple: f64,
    /// Auth failures per window from which a burst is signalled.
    pub auth_failure_burst: u64,
    /// Days without traffic after which an integration or client is idle.
    pub idle_days: u32,
    /// Quiet time before the same signal repeats.
    pub repeat_after: Duration,
    /// Least time between two shape samples of one integration, route and
    /// direction (`schema_drift` without an allow-list).
    pub drift_sample: Duration,
}

impl Default for SignalSettings {
    fn default() -> Self {
        SignalSettings {
            window: Duration::from_secs(60),
            warmup: Duration::from_secs(600),
            volume_multiple: 5.0,
            auth_failure_burst: 20,
            idle_days: 30,
            repeat_after: Duration::from_secs(600),
            drift_sample: Duration::from_secs(1),
        }
    }
}

/// One integration: inventory entry, upstream, clients and routes.
#[derive(Debug)]
pub struct Integration {
    /// Unique name.
    pub name: String,
    /// Owner contact.
    pub owner: String,
    /// Why it exists.
    pub purpose: String,
    /// Classification.
    pub classification: Classification,
    /// Data categories.
    pub data: Vec<String>,
    /// internal | external.
    pub boundary: Boundary,
    /// Last review.
    pub reviewed: jiff::civil::Date,
    /// End date: refused from this day on.
    pub expires: jiff::civil::Date,
    /// Normalised mount prefix without trailing slash (`""` for `/`).
    pub mount: String,
    /// Upstream settings.
    pub upstream: Upstream,
    /// Calling identities.
    pub clients: Vec<Client>,
    /// Admit unauthenticated callers.
    pub anonymous: bool,
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Where it is written in the config file (for diagnostics).
    pub lines: IntegrationLines,
}

/// Config-file lines of an integration, for `check` warnings.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntegrationLines {
    /// The integration's entry.
    pub item: u64,
    /// `reviewed:`.
    pub reviewed: u64,
    /// `expires:`.
    pub expires: u64,
}

/// The upstream of an integration.
#[derive(Debug)]
pub struct Upstream {
    /// `http` or `https`.
    pub https: bool,
    /// host[:port].
    pub authority: http::uri::Authority,
    /// Path prefix without trailing slash.
    pub base_path: String,
    /// Extra trust anchor.
    pub ca: Option<PathBuf>,
    /// Injected credential.
    pub inject: Option<Inject>,
}

/// An injected upstream credential.
#[derive(Debug)]
pub struct Inject {
    /// Header to set.
    pub header: HeaderName,
    /// Value template (secret references).
    pub value: SecretTemplate,
    /// For alerting.
    pub expires: Option<jiff::civil::Date>,
    /// Config-file line of `inject.value`.
    pub line: u64,
}

/// A calling identity.
#[derive(Debug)]
pub struct Client {
    /// Id within the integration.
    pub id: String,
    /// SHA-256 digests of valid API keys.
    pub key_hashes: Vec<[u8; 32]>,
    /// Certificate identity.
    pub mtls: Option<MtlsIdentity>,
    /// Credential end date.
    pub expires: Option<jiff::civil::Date>,
    /// Allowed route ids; `None` = all.
    pub routes: Option<Vec<String>>,
    /// Config-file line of the client's entry.
    pub line: u64,
}

/// How a client certificate is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtlsIdentity {
    /// Subject common name: the certificate must carry exactly one, and it must decode.
    SubjectCn(String),
    /// A subject alternative name of one type.
    San {
        /// The name.
        san: San,
        /// Whether the config wrote its type (`dns:`, `uri:`, `email:`); `check` warns if not.
        typed: bool,
    },
}

/// A subject alternative name, typed: a DNS name never matches a URI of the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// `dNSName`, compared ignoring ASCII case.
    Dns(String),
    /// `uniformResourceIdentifier` (SPIFFE IDs), compared exactly.
    Uri(String),
    /// `rfc822Name`, compared ignoring ASCII case.
    Email(String),
}

impl San {
    /// Parses `dns:NAME`, `uri:URI` or `email:ADDR`, and says whether the type was written.
    /// A bare value with a scheme (`spiffe://…`) is a URI, an `@` makes it an e-mail, and
    /// anything else is a DNS name.
    pub fn parse(text: &str) -> (San, bool) {
        let typed = |prefix: &str| text.strip_prefix(prefix).map(str::to_owned);
        if let Some(v) = typed("dns:") {
            (San::Dns(v), true)
        } else if let Some(v) = typed("uri:") {
            (San::Uri(v), true)
        } else if let Some(v) = typed("email:") {
            (San::Email(v), true)
        } else if text.contains("://") {
            (San::Uri(text.to_owned()), false)
        } else if text.contains('@') {
            (San::Email(text.to_owned()), false)
        } else {
            (San::Dns(text.to_owned()), false)
        }
    }

    /// Whether a certificate's SAN is this name.
    pub fn matches(&self, cert: &San) -> bool {
        match (self, cert) {
            (San::Dns(a), San::Dns(b)) | (San::Email(a), San::Email(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (San::Uri(a), San::Uri(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(v) => write!(f, "dns:{v}"),
            San::Uri(v) => write!(f, "uri:{v}"),
            San::Email(v) => write!(f, "email:{v}"),
        }
    }
}

/// One route.
#[derive(Debug)]
pub struct Route {
    /// Unique within the integration.
    pub id: String,
    /// Allowed methods.
    pub methods: Vec<Method>,
    /// Path pattern below the mount.
    pub pattern: PathPattern,
    /// Request policy; `None` = `pass`.
    pub request: Option<Arc<Policy>>,
    /// Response policy; `None` = `pass`.
    pub response: Option<Arc<Policy>>,
    /// Protocol upgrades allowed (only with `pass` both ways).
    pub upgrade: bool,
    /// Config-file line of the route's entry.
    pub line: u64,
}

/// How a config file is loaded.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// The day date-based warnings are computed for: UTC today unless a
    /// command is asked to look at another day (`check --as-of`).
    pub today: jiff::civil::Date,
    /// Read every `${env:}` / `${file:}` secret now (the default). When
    /// false, references are only parsed: for commands that never use a
    /// secret (`inventory`), so they run where the secrets are not present.
    pub resolve_secrets: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            today: warnings::today_utc(),
            resolve_secrets: true,
        }
    }
}

/// Loads and validates a config file and its policies.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let config = load_checked(path, &LoadOptions::default())?;
    // A policy that fails its own tests is not what its author meant: it
    // is not served (and a reload keeps the running snapshot).
    let (_, failures) = policy::run_all_tests(&config.policies);
    if failures.is_empty() {
        Ok(config)
    } else {
        Err(Diagnostics(failures))
    }
}

/// [`load`] with options: the config, or every error (warnings dropped).
pub fn load_checked(path: &Path, opts: &LoadOptions) -> Result<Config, Diagnostics> {
    let (config, diags) = load_with(path, opts);
    let errors: Vec<Diagnostic> = diags
        .into_iter()
        .filter(|d| d.severity == crate::diag::Severity::Error)
        .collect();
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(Diagnostics(errors)),
    }
}

/// Loads as far as possible, returning every error and warning.
pub fn load_with_diagnostics(path: &Path) -> (Option<Config>, Vec<Diagnostic>) {
    load_with(path, &LoadOptions::default())
}

/// Loads as far as possible with `opts`, returning every error and, for a
/// config without errors, the warnings of [`warnings::check`].
pub fn load_with(path: &Path, opts: &LoadOptions) -> (Option<Config>, Vec<Diagnostic>) {
    let text = match read::read_text(path, read::MAX_CONFIG_BYTES) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::error(path, 0, format!("cannot read config: {e}"));
            let d = d.hint("pass --config FILE or set CUSTOMS_CONFIG");
            return (None, vec![d]);
        }
    };
    let raw: ConfigFile = match serde_saphyr::from_str(&text) {
        Ok(r) => r,
        Err(e) => return (None, vec![Diagnostic::from_yaml(path, &e)]),
    };
    let mut b = Builder {
        file: path,
        base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        diags: Vec::new(),
        resolve_secrets: opts.resolve_secrets,
    };
    let config = b.config(raw);
    let mut diags = b.diags;
    if !diags
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error)
    {
        diags.extend(warnings::check(&config, opts.today));
    }
    (Some(config), diags)
}

struct Builder<'a> {
    file: &'a Path,
    base: PathBuf,
    diags: Vec<Diagnostic>,
    resolve_secrets: bool,
}

impl Builder<'_> {
    fn error(&mut self, line: u64, message: String, hint: &str) {
        let d = Diagnostic::error(self.file, line, message);
        self.diags
            .push(if hint.is_empty() { d } else { d.hint(hint) });
    }

    fn path(&self, t: &Text) -> PathBuf {
        self.base.join(&t.value)
    }

    fn config(&mut self, raw: ConfigFile) -> Config {
        let policies_dir = raw
            .policies
            .as_ref()
            .map_or_else(|| self.base.join("policies"), |p| self.path(p));
        let (policies, mut pdiags) = policy::load_dir(&policies_dir);
        self.diags.append(&mut pdiags);
        let listen = self.addr(&raw.listen.address);
        let admin = raw.admin.as_ref().map(|a| self.addr(&a.address));
        let tls = raw.listen.tls.as_ref().map(|t| TlsFiles {
            cert: self.path(&t.cert),
            key: self.path(&t.key),
            client_ca: t.client_ca.as_ref().map(|c| self.path(c)),
        });
        let workers = self.workers(raw.listen.workers.as_ref());
        let limits = self.limits(&raw.limits);
        let audit = self.audit(&raw.audit);
        let signals = self.signals(&raw.signals);
        let hash_key = self.hash_key(raw.secrets.hash_key.as_ref(), &policies);
        let integrations = self.integrations(raw.integrations, &policies);
        let watched = self.watched(&policies_dir, raw.secrets.hash_key.as_ref(), &integrations);
        let reload_settle = self.reload_settle(&raw.reload);
        Config {
            file: self.file.to_path_buf(),
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            workers,
            tls,
            admin: admin.flatten(),
            audit,
            limits,
            hash_key,
            policies,
            signals,
            integrations,
            watched,
            reload_settle,
        }
    }

    fn reload_settle(&mut self, raw: &file::ReloadFile) -> Duration {
        let settle = raw.settle.as_ref();
        if let Some(zero) = settle.filter(|s| s.value.0.is_zero()) {
            self.error(
                zero.referenced.line(),
                "reload.settle is zero: a file caught mid-write would be loaded".into(),
                "use a positive duration, e.g. 5s (atomic replacements reload at once anyway)",
            );
        }
        settle.map_or(DEFAULT_RELOAD_SETTLE, |s| s.value.0)
    }

    fn watched(
        &self,
        policies_dir: &Path,
        hash_key: Option<&Text>,
        integrations: &[Integration],
    ) -> Vec<PathBuf> {
        let mut files = vec![self.file.to_path_buf(), policies_dir.to_path_buf()];
        let hash_template = hash_key.and_then(|t| SecretTemplate::parse(&t.value, &self.base).ok());
        let injects = integrations
            .iter()
            .filter_map(|it| it.upstream.inject.as_ref())
            .map(|i| &i.value);
        for template in hash_template.iter().chain(injects) {
            files.extend(template.files().map(Path::to_path_buf));
        }
        // A partner's rotated CA applies without a restart too.
        files.extend(integrations.iter().filter_map(|it| it.upstream.ca.clone()));
        files
    }

    fn addr(&mut self, t: &Text) -> Option<SocketAddr> {
        let parsed = t.value.parse().ok();
        if parsed.is_none() {
            self.error(
                t.referenced.line(),
                format!("invalid address '{}'", t.value),
                "use IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8443",
            );
        }
        parsed
    }

    fn workers(&mut self, raw: Option<&Spanned<usize>>) -> usize {
        let Some(w) = raw else {
            return std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        };
        if !(1..=MAX_WORKERS).contains(&w.value) {
            self.error(
                w.referenced.line(),
                format!("listen.workers {} is out of range", w.value),
                "use 1 to 1024, or leave it out for one per CPU",
            );
        }
        w.value.clamp(1, MAX_WORKERS)
    }

    fn signals(&mut self, raw: &file::SignalsFile) -> SignalSettings {
        let d = SignalSettings::default();
        let window = raw.window.as_ref().map_or(d.window, |s| s.value.0);
        if window < Duration::from_millis(10) {
            self.error(
                raw.window.as_ref().map_or(0, |s| s.referenced.line()),
                "signals.window is too short".into(),
                "use 10ms or more (60s outside tests)",
            );
        }
        let multiple = raw.volume_multiple.as_ref();
        let volume_multiple = multiple.map_or(d.volume_multiple, |m| m.value);
        if !(volume_multiple.is_finite() && volume_multiple >= 1.0) {
            self.error(
                multiple.map_or(0, |m| m.referenced.line()),
                format!("signals.volume_multiple {volume_multiple} is out of range"),
                "use a number of at least 1, e.g. 5",
            );
        }
        SignalSettings {
            window: window.max(Duration::from_millis(10)),
            warmup: raw.warmup.map_or(d.warmup, |s| s.0),
            volume_multiple: if volume_multiple.is_finite() {
                volume_multiple.max(1.0)
            } else {
                d.volume_multiple
            },
            auth_failure_burst: raw
                .auth_failure_burst
                .as_ref()
                .map_or(d.auth_failure_burst, |n| n.value.max(1)),
            idle_days: raw.idle_days.as_ref().map_or(d.idle_days, |n| n.value),
            repeat_after: raw.repeat_after.map_or(d.repeat_after, |s| s.0),
            drift_sample: raw.drift_sample.map_or(d.drift_sample, |s| s.0),
        }
    }

    fn audit(&mut self, raw: &file::AuditFile) -> AuditSettings {
        let sink = match &raw.path {
            Some(p) if p.value == "-" => AuditSink::Stdout,
            Some(p) => AuditSink::File(self.path(p)),
            None => AuditSink::File(self.base.join("audit/crossings.jsonl")),
        };
        AuditSettings {
            sink,
            rotate_bytes: raw.rotate_bytes.map_or(100 << 20, |s| s.0),
            on_failure: raw.on_failure,
        }
    }

    fn hash_key(
        &mut self,
        raw: Option<&Text>,
        policies: &PolicySet,
    ) -> Option<policy::transform::HashKey> {
        let Some(raw) = raw else {
            if let Some(p) = policies.by_name.values().find(|p| p.needs_hash_key()) {
                self.diags.push(
                    Diagnostic::error(self.file, 0, format!("policy '{}' has hash rules but secrets.hash_key is not set", p.name))
                        .hint("add secrets: { hash_key: ${env:CUSTOMS_HASH_KEY} } and set the variable to 32+ random bytes"),
                );
            }
            return None;
        };
        let line = raw.referenced.line();
        let template = SecretTemplate::parse(&raw.value, &self.base);
        // A key in the config (or none at all) lets anyone who reads it,
        // or no one needs to, reverse every pseudonym by trying candidates.
        if template.as_ref().is_ok_and(SecretTemplate::is_inline) {
            self.error(
                line,
                "secrets.hash_key must be read from ${env:NAME} or ${file:PATH}, not written in the config".into(),
                "hash_key: ${env:CUSTOMS_HASH_KEY}, with the variable set to 32+ random bytes (e.g. from: head -c 32 /dev/urandom | base64)",
            );
            return None;
        }
        let resolved = match template {
            Ok(_) if !self.resolve_secrets => return None,
            Ok(t) => t.resolve(),
            Err(e) => Err(e),
        };
        match resolved {
            Ok(key) => Some(policy::transform::HashKey::new(key.as_bytes())),
            Err(e) => {
                self.error(line, format!("secrets.hash_key: {e}"), "");
                None
            }
        }
    }

    fn integrations(
        &mut self,
        raw: Vec<Spanned<IntegrationFile>>,
        policies: &PolicySet,
    ) -> Vec<Integration> {
        let mut names = HashSet::new();
        let mut out: Vec<Integration> = Vec::new();
        for spanned in raw {
            let line = spanned.referenced.line();
            let it = spanned.value;
            if !names.insert(it.name.value.clone()) {
                self.error(
                    it.name.referenced.line(),
                    format!("duplicate integration name '{}'", it.name.value),
                    "integration names must be unique",
                );
            }
            let integration = self.integration(it, policies, line);
            self.check_mount_overlap(&out, &integration, line);
            out.push(integration);
        }
        out
    }

    fn check_mount_overlap(&mut self, before: &[Integration], new: &Integration, line: u64) {
        for other in before {
            if mounts_overlap(&other.mount, &new.mount) {
                self.error(
                    line,
                    format!(
                        "mount '{}' of '{}' overlaps mount '{}' of '{}'",
                        display_mount(&new.mount),
                        new.name,
                        display_mount(&other.mount),
                        other.name
                    ),
                    "give each integration a mount that is not a prefix of another",
                );
            }
        }
    }

    fn integration(&mut self, it: IntegrationFile, policies: &PolicySet, line: u64) -> Integration {
        let name = it.name.value.clone();
        if !is_slug(&name) {
            self.error(
                it.name.referenced.line(),
                format!("integration name '{name}' is not of the form [a-z0-9-]+"),
                "use lower-case letters, digits and dashes",
            );
        }
        let mount = match &it.mount {
            Some(m) => self.mount(m),
            None => format!("/{name}"),
        };
        let upstream = self.upstream(it.upstream);
        let routes = self.routes(it.routes, policies);
        let route_ids: HashSet<&str> = routes.iter().map(|r| r.id.as_str()).collect();
        let clients: Vec<Client> = it
            .clients
            .into_iter()
            .filter_map(|c| self.client(c, &route_ids))
            .collect();
        self.check_unique_clients(&name, &clients);
        let lines = IntegrationLines {
            item: line,
            reviewed: it.reviewed.referenced.line(),
            expires: it.expires.referenced.line(),
        };
        Integration {
            name,
            owner: it.owner,
            purpose: it.purpose.unwrap_or_default(),
            classification: it.classification,
            data: it.data,
            boundary: it.boundary,
            reviewed: it.reviewed.value,
            expires: it.expires.value,
            mount,
            upstream,
            clients,
            anonymous: it.anonymous,
            routes,
            lines,
        }
    }

    /// Client ids, API key hashes and certificate identities must each name
    /// one client of the integration: otherwise audit records, metrics and
    /// route subsets would credit the wrong one.
    fn check_unique_clients(&mut self, integration: &str, clients: &[Client]) {
        for (i, c) in clients.iter().enumerate() {
            let earlier = &clients[..i];
            if earlier.iter().any(|e| e.id == c.id) {
                self.error(
                    c.line,
                    format!(
                        "duplicate client id '{}' in integration '{integration}'",
                        c.id
                    ),
                    "client ids must be unique within an integration",
                );
            }
            let shared_key = c.key_hashes.iter().enumerate().any(|(k, h)| {
                c.key_hashes[..k].contains(h) || earlier.iter().any(|e| e.key_hashes.contains(h))
            });
            if shared_key {
                self.error(
                    c.line,
                    format!("client '{}' repeats an api_key hash already listed in integration '{integration}'", c.id),
                    "each key belongs to one client; give every client its own key (`customs keygen`)",
                );
            }
            if c.mtls.is_some() && earlier.iter().any(|e| e.mtls == c.mtls) {
                self.error(
                    c.line,
                    format!("client '{}' has the same mtls identity as another client of '{integration}'", c.id),
                    "each certificate identity belongs to one client",
                );
            }
        }
    }

    fn mount(&mut self, m: &Text) -> String {
        let v = m.value.trim_end_matches('/');
        let ok = m.value.starts_with('/')
            && v.split('/')
                .skip(1)
                .all(|s| !s.is_empty() && s != "." && s != "..")
            && !v.contains(['*', '?', '#', '%', '\\', ';']);
        if !ok {
            self.error(
                m.referenced.line(),
                format!("invalid mount '{}'", m.value),
                "a mount is a plain path prefix such as /acme or /partners/acme",
            );
        }
        v.to_string()
    }

    fn upstream(&mut self, u: file::UpstreamFile) -> Upstream {
        let line = u.url.referenced.line();
        let uri: Option<Uri> = u.url.value.parse().ok();
        let parts = uri.as_ref().and_then(|uri| {
            let https = match uri.scheme_str()? {
                "https" => true,
                "http" => false,
                _ => return None,
            };
            let authority = uri.authority()?.clone();
            let ok = uri.query().is_none() && !authority.as_str().contains('@');
            ok.then(|| {
                (
                    https,
                    authority,
                    uri.path().trim_end_matches('/').to_string(),
                )
            })
        });
        let (https, authority, base_path) = parts.unwrap_or_else(|| {
            self.error(
                line,
                format!("invalid upstream url '{}'", u.url.value),
                "use http(s)://host[:port][/prefix] without query or credentials",
            );
            (
                false,
                http::uri::Authority::from_static("invalid"),
                String::new(),
            )
        });
        let ca = u.ca.as_ref().map(|c| self.path(c));
        let inject = u.inject.and_then(|i| self.inject(i));
        Upstream {
            https,
            authority,
            base_path,
            ca,
            inject,
        }
    }

    fn inject(&mut self, i: file::InjectFile) -> Option<Inject> {
        let header = match HeaderName::from_bytes(i.header.value.as_bytes()) {
            Ok(h) => h,
            Err(_) => {
                let msg = format!("invalid header name '{}'", i.header.value);
                self.error(
                    i.header.referenced.line(),
                    msg,
                    "e.g. header: Authorization",
                );
                return None;
            }
        };
        if RESERVED_INJECT.contains(&header.as_str()) {
            self.error(
                i.header.referenced.line(),
                format!(
                    "upstream.inject cannot set '{}': customs owns that header",
                    header
                ),
                "inject a credential header such as Authorization or X-Api-Key",
            );
            return None;
        }
        let line = i.value.referenced.line();
        let value = SecretTemplate::parse(&i.value.value, &self.base).and_then(|t| {
            if self.resolve_secrets {
                t.resolve().map(|v| (t, Some(v)))
            } else {
                Ok((t, None))
            }
        });
        let hint = "the integration refuses traffic (503) until the secret can be read";
        match value {
            Ok((_, Some(v))) if http::HeaderValue::from_str(&v).is_err() => {
                // Never print the value: it holds the secret.
                let msg = "upstream.inject: the resolved value is not a valid header value (control characters or line breaks)";
                self.error(line, msg.into(), hint);
                None
            }
            Ok((value, _)) => Some(Inject {
                header,
                value,
                expires: i.expires,
                line,
            }),
            Err(e) => {
                self.error(line, format!("upstream.inject: {e}"), hint);
                None
            }
        }
    }

    fn routes(&mut self, raw: Vec<Spanned<RouteFile>>, policies: &PolicySet) -> Vec<Route> {
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for r in raw {
            let line = r.referenced.line();
            let r = r.value;
            if !ids.insert(r.id.value.clone()) {
                let msg = format!("duplicate route id '{}'", r.id.value);
                self.error(
                    r.id.referenced.line(),
                    msg,
                    "route ids must be unique within an integration",
                );
            }
            out.push(self.route(r, policies, line));
        }
        out
    }

    fn route(&mut self, r: RouteFile, policies: &PolicySet, line: u64) -> Route {
        let methods = r.methods.iter().filter_map(|m| self.method(m)).collect();
        let pattern = PathPattern::parse(&r.path.value).unwrap_or_else(|e| {
            self.error(
                r.path.referenced.line(),
                format!("invalid route path '{}': {e}", r.path.value),
                "use /exact/segments, * for one segment, ** as the last segment for any suffix",
            );
            PathPattern::never()
        });
        let request = self.policy_ref(&r.request, policies);
        let response = self.policy_ref(&r.response, policies);
        if r.upgrade && (request.is_some() || response.is_some()) {
            self.error(r.id.referenced.line(), format!("route '{}' allows upgrades but has policies", r.id.value),
                "upgraded connections cannot be inspected: use request: pass and response: pass, or remove upgrade");
        }
        Route {
            id: r.id.value,
            methods,
            pattern,
            request,
            response,
            upgrade: r.upgrade,
            line,
        }
    }

    fn method(&mut self, m: &Text) -> Option<Method> {
        let ok = !m.value.is_empty() && m.value.bytes().all(|b| b.is_ascii_uppercase());
        let method = Method::from_bytes(m.value.as_bytes()).ok().filter(|_| ok);
        if method.is_none() {
            self.error(
                m.referenced.line(),
                format!("invalid method '{}'", m.value),
                "methods are upper case, e.g. GET, POST",
            );
        }
        method
    }

    fn policy_ref(&mut self, t: &Text, policies: &PolicySet) -> Option<Arc<Policy>> {
        if t.value == "pass" {
            return None;
        }
        let found = policies.get(&t.value).cloned();
        if found.is_none() {
            let mut known: Vec<&str> = policies.by_name.keys().map(String::as_str).collect();
            known.sort_unstable();
            self.error(
                t.referenced.line(),
                format!("unknown policy '{}'", t.value),
                &format!(
                    "known policies: {}; or write pass to let the body cross unfiltered",
                    known.join(", ")
                ),
            );
        }
        found
    }

    fn client(
        &mut self,
        c: Spanned<file::ClientFile>,
        route_ids: &HashSet<&str>,
    ) -> Option<Client> {
        let line = c.referenced.line();
        let c = c.value;
        if c.id.value == "upstream" {
            // customs_credential_expiry_timestamp_seconds{credential="upstream"}
            // is the injected upstream credential.
            self.error(
                line,
                "client id 'upstream' is reserved for the injected upstream credential".into(),
                "choose another id, e.g. the calling system's name",
            );
        }
        let keys: Vec<&Text> = match &c.api_key {
            None => Vec::new(),
            Some(file::OneOrMany::One(k)) => vec![k],
            Some(file::OneOrMany::Many(ks)) => ks.iter().collect(),
        };
        let key_hashes = keys
            .iter()
            .filter_map(|k| self.key_hash(k, line))
            .collect::<Vec<_>>();
        let mtls = c.mtls.as_ref().and_then(|m| self.mtls(line, m));
        if key_hashes.is_empty() && mtls.is_none() {
            if !keys.is_empty() || c.mtls.is_some() {
                // Already reported: the credential written is invalid.
                return None;
            }
            self.error(
                line,
                format!("client '{}' has no credential", c.id.value),
                "add api_key: sha256:<hex> (see `customs keygen`) or mtls: { subject_cn: NAME }",
            );
            return None;
        }
        for r in c.routes.iter().flatten() {
            if !route_ids.contains(r.value.as_str()) {
                let mut known: Vec<&str> = route_ids.iter().copied().collect();
                known.sort_unstable();
                self.error(
                    r.referenced.line(),
                    format!("client '{}' names unknown route '{}'", c.id.value, r.value),
                    &format!("routes of this integration: {}", known.join(", ")),
                );
            }
        }
        let routes = c.routes.map(|rs| rs.into_iter().map(|r| r.value).collect());
        Some(Client {
            id: c.id.value,
            key_hashes,
            mtls,
            expires: c.expires,
            routes,
            line,
        })
    }

    /// `sha256:<64 hex>`. Values inside `api_key` lose their own line (the
    /// one-or-many form is buffered by serde), so `client_line` stands in.
    fn key_hash(&mut self, k: &Text, client_line: u64) -> Option<[u8; 32]> {
        let digest = k
            .value
            .strip_prefix("sha256:")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        if digest.is_none() {
            let line = match k.referenced.line() {
                0 => client_line,
                l => l,
            };
            self.error(line, "api_key must be sha256: followed by 64 hex digits".into(),
                "never put the key itself in the config; `customs keygen` prints a key and its sha256: line");
        }
        digest
    }

    fn mtls(&mut self, line: u64, m: &file::MtlsFile) -> Option<MtlsIdentity> {
        match (&m.subject_cn, &m.san) {
            (Some(v), _) | (_, Some(v)) if v.trim().is_empty() => {
                self.error(
                    line,
                    "mtls identity is empty".into(),
                    "name the certificate's subject CN or a SAN, e.g. mtls: { subject_cn: servicenow-dr }",
                );
                None
            }
            (Some(cn), None) => Some(MtlsIdentity::SubjectCn(cn.clone())),
            (None, Some(san)) => {
                let (san, typed) = San::parse(san);
                Some(MtlsIdentity::San { san, typed })
            }
            _ => {
                self.error(
                    line,
                    "mtls needs exactly one of subject_cn or san".into(),
                    "e.g. mtls: { san: \"uri:spiffe://corp/app\" }",
                );
                None
            }
        }
    }
}

/// Headers an injected credential may not replace: framing, routing and
/// the headers customs sets on every forwarded request itself.
const RESERVED_INJECT: [&str; 17] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "content-type",
    "content-encoding",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
];

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn display_mount(m: &str) -> &str {
    if m.is_empty() { "/" } else { m }
}

/// Whether one mount is a segment prefix of the other.
fn mounts_overlap(a: &str, b: &str) -> bool {
    let prefix = |short: &str, long: &str| {
        long.starts_with(short)
            && (long.len() == short.len() || long.as_bytes()[short.len()] == b'/')
    };
    prefix(a, b) || prefix(b, a)
}
