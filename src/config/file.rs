//! `customs.yaml` as written (SPEC §2.1): a serde mirror with no logic.
//! Unknown and duplicate keys are errors; values checked later keep their line.

use super::units::{Size, Span};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with its line.
pub type Text = Spanned<String>;

/// The whole config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The proxy listener.
    pub listen: ListenFile,
    /// The admin listener (/metrics, /healthz, /readyz, /inventory).
    #[serde(default)]
    pub admin: Option<AdminFile>,
    /// Policies folder, relative to the config file.
    #[serde(default)]
    pub policies: Option<Text>,
    /// The crossing log.
    #[serde(default)]
    pub audit: AuditFile,
    /// Bounds.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Secrets used by the proxy itself.
    #[serde(default)]
    pub secrets: SecretsFile,
    /// Monitoring signals (thresholds of `volume_anomaly`, `idle_integration`, …).
    #[serde(default)]
    pub signals: SignalsFile,
    /// How file changes are picked up.
    #[serde(default)]
    pub reload: ReloadFile,
    /// The integration inventory.
    #[serde(default)]
    pub integrations: Vec<Spanned<IntegrationFile>>,
}

/// `signals:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsFile {
    /// Length of one traffic window ("minute"); shorter only in tests.
    #[serde(default)]
    pub window: Option<Spanned<Span>>,
    /// Time after start before `volume_anomaly` compares with the baseline.
    #[serde(default)]
    pub warmup: Option<Span>,
    /// A window above this multiple of the moving baseline is an anomaly.
    #[serde(default)]
    pub volume_multiple: Option<Spanned<f64>>,
    /// Auth failures per window from which a burst is signalled.
    #[serde(default)]
    pub auth_failure_burst: Option<Spanned<u64>>,
    /// Days without traffic after which an integration or client is idle.
    #[serde(default)]
    pub idle_days: Option<Spanned<u32>>,
    /// Quiet time before the same signal (integration, kind, subject) repeats.
    #[serde(default)]
    pub repeat_after: Option<Span>,
    /// Least time between two drift samples of one route and direction.
    #[serde(default)]
    pub drift_sample: Option<Span>,
}

/// `listen:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    /// host:port.
    pub address: Text,
    /// TLS on the listener.
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// Threads serving requests; default: one per available CPU.
    #[serde(default)]
    pub workers: Option<Spanned<usize>>,
}

/// `listen.tls:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Certificate chain (PEM).
    pub cert: Text,
    /// Private key (PEM).
    pub key: Text,
    /// CA of client certificates; enables mTLS identities.
    #[serde(default)]
    pub client_ca: Option<Text>,
}

/// `admin:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// host:port.
    pub address: Text,
    /// `sha256:<hex>` of the bearer token that guards `/ui`, `/inventory` and `/discovery`.
    #[serde(default)]
    pub token: Option<Text>,
}

/// `audit.on_failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Nothing crosses unaudited: 503.
    #[default]
    Refuse,
    /// Keep serving; count the failure.
    Continue,
}

/// `audit:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// File path, `-` for stdout.
    #[serde(default)]
    pub path: Option<Text>,
    /// Rotate when a file reaches this size.
    #[serde(default)]
    pub rotate_bytes: Option<Size>,
    /// What happens when a record cannot be written.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest body, either direction, after decoding.
    #[serde(default)]
    pub max_body_bytes: Option<Spanned<Size>>,
    /// Deepest JSON nesting.
    #[serde(default)]
    pub max_json_depth: Option<Spanned<usize>>,
    /// Body bytes all crossings may hold in memory at once.
    #[serde(default)]
    pub max_buffered_bytes: Option<Spanned<Size>>,
    /// Most JSON values in one body.
    #[serde(default)]
    pub max_json_elements: Option<Spanned<usize>>,
    /// Whole upstream exchange, headers and body.
    #[serde(default)]
    pub upstream_timeout: Option<Spanned<Span>>,
    /// Deadline for receiving a whole request body.
    #[serde(default)]
    pub body_read_timeout: Option<Spanned<Span>>,
    /// How long an upgraded connection (WebSocket) may carry no byte.
    #[serde(default)]
    pub tunnel_idle_timeout: Option<Spanned<Span>>,
    /// Largest body a `pass` direction streams (default: no limit).
    #[serde(default)]
    pub max_pass_bytes: Option<Spanned<Size>>,
    /// How long a streamed `pass` body may carry no byte.
    #[serde(default)]
    pub stream_idle_timeout: Option<Spanned<Span>>,
    /// Most connections open at once on the proxy listener.
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// Deadline for a request head, and for a new connection's first request.
    #[serde(default)]
    pub header_timeout: Option<Spanned<Span>>,
    /// How long an HTTP/2 connection without open streams stays open.
    #[serde(default)]
    pub idle_timeout: Option<Spanned<Span>>,
    /// How long a write to a caller may make no progress.
    #[serde(default)]
    pub write_timeout: Option<Spanned<Span>>,
    /// Most header fields in an upstream response head.
    #[serde(default)]
    pub max_response_headers: Option<Spanned<usize>>,
}

/// `reload:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadFile {
    /// Quiet time after an in-place write before the files are loaded.
    #[serde(default)]
    pub settle: Option<Spanned<Span>>,
}

/// `secrets:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// HMAC key of `hash` rules: `${env:NAME}` or `${file:PATH}`.
    #[serde(default)]
    pub hash_key: Option<Text>,
}

/// One integration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationFile {
    /// `[a-z0-9-]+`, unique.
    pub name: Text,
    /// Who answers for it.
    pub owner: String,
    /// Why it exists.
    #[serde(default)]
    pub purpose: Option<String>,
    /// public | internal | confidential | restricted.
    pub classification: Classification,
    /// Data categories.
    #[serde(default)]
    pub data: Vec<String>,
    /// internal | external.
    pub boundary: Boundary,
    /// Last security review.
    pub reviewed: Spanned<jiff::civil::Date>,
    /// From this date on, every request is refused.
    pub expires: Spanned<jiff::civil::Date>,
    /// Path prefix; default `/<name>`.
    #[serde(default)]
    pub mount: Option<Text>,
    /// The partner API.
    pub upstream: UpstreamFile,
    /// Calling identities.
    #[serde(default)]
    pub clients: Vec<Spanned<ClientFile>>,
    /// Admit unauthenticated callers.
    #[serde(default)]
    pub anonymous: bool,
    /// What may cross.
    #[serde(default)]
    pub routes: Vec<Spanned<RouteFile>>,
}

/// Data classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Public.
    Public,
    /// Internal.
    Internal,
    /// Confidential.
    Confidential,
    /// Restricted.
    Restricted,
}

/// Which side of the organisation's boundary the upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boundary {
    /// Inside.
    Internal,
    /// A partner or vendor.
    External,
}

/// `upstream:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// http(s)://host[:port][/prefix].
    pub url: Text,
    /// Extra trust anchor (PEM).
    #[serde(default)]
    pub ca: Option<Text>,
    /// Credential set on every upstream request.
    #[serde(default)]
    pub inject: Option<InjectFile>,
}

/// `upstream.inject:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectFile {
    /// Header name.
    pub header: Text,
    /// Value with `${env:NAME}` / `${file:PATH}` references.
    pub value: Text,
    /// When the credential expires, for alerting.
    #[serde(default)]
    pub expires: Option<jiff::civil::Date>,
}

/// One API key hash or a list of them (during rotation).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single `sha256:` hash.
    One(Text),
    /// Several, all valid.
    Many(Vec<Text>),
}

/// One client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// Client id, unique within the integration.
    pub id: Text,
    /// `sha256:<hex>` of the API key(s).
    #[serde(default)]
    pub api_key: Option<OneOrMany>,
    /// TLS client certificate identity.
    #[serde(default)]
    pub mtls: Option<MtlsFile>,
    /// Credential end date.
    #[serde(default)]
    pub expires: Option<jiff::civil::Date>,
    /// Least-privilege subset of route ids.
    #[serde(default)]
    pub routes: Option<Vec<Text>>,
}

/// `mtls:` identity: subject CN or a typed SAN.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsFile {
    /// Subject common name.
    #[serde(default)]
    pub subject_cn: Option<String>,
    /// Subject alternative name: `dns:NAME`, `uri:URI` or `email:ADDR`.
    #[serde(default)]
    pub san: Option<String>,
}

/// One route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Unique within the integration.
    pub id: Text,
    /// Allowed methods, upper case.
    pub methods: Vec<Text>,
    /// Path pattern below the mount.
    pub path: Text,
    /// Request policy name or `pass`.
    pub request: Text,
    /// Response policy name or `pass`.
    pub response: Text,
    /// Allow `Upgrade` (WebSocket) on this route; both policies must be `pass`.
    #[serde(default)]
    pub upgrade: bool,
}
