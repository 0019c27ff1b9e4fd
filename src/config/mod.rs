//! Configuration: `customs.yaml` plus the policies folder, validated into one
//! immutable [`Config`] snapshot. Every mistake is reported with `file:line`;
//! `check` is "load and print the diagnostics".

mod build;
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
use build::Builder;
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
    /// SHA-256 of the admin bearer token (`admin.token`), when set.
    pub admin_token: Option<[u8; 32]>,
    /// Line of `admin:` (for warnings).
    pub admin_line: u64,
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
