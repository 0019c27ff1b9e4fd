//! The proxy: listener → framing → route → identity → request policy →
//! upstream → response policy → audit and metrics. [`pipeline::handle`]
//! reads in that order; this module owns the running snapshot ([`Runtime`])
//! and the process around it ([`serve`]).

pub mod admin;
pub mod auth;
pub mod body;
pub mod budget;
pub mod client;
pub mod credential;
pub mod decode;
pub mod echo;
pub mod error;
pub mod framing;
pub mod headers;
pub mod listener;
pub mod observe;
pub mod offload;
pub mod pipeline;
pub mod reload;
pub mod route;
pub mod server;
pub mod sniff;
pub mod stream;
pub mod tls;
pub mod trail;
pub mod tunnel;
pub mod upload;
pub mod upstream;
pub mod uri;

use crate::audit::Auditor;
use crate::config::Config;
use crate::metrics::{Meters, Metrics};
use crate::signals::Signals;
use budget::Budget;
use client::UpstreamClient;
use credential::Credential;
use error::{Kind, Refusal};
use http::HeaderValue;
use route::Matched;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything a request needs, built once per configuration.
pub struct Runtime {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The crossing log.
    pub auditor: Auditor,
    /// Prometheus collectors.
    pub metrics: Arc<Metrics>,
    /// Monitoring signal state (kept across reloads).
    pub signals: Arc<Signals>,
    /// Pooled clients by integration, then listener shard.
    clients: Vec<Vec<UpstreamClient>>,
    /// HTTP/1.1-only clients, for integrations with an `upgrade` route.
    upgrade_clients: Vec<Option<UpstreamClient>>,
    /// Injected credentials by integration.
    credentials: Vec<Option<Credential>>,
    /// Each integration's most used metric series.
    meters: Vec<Meters>,
    /// Listener shards (fixed at start; reloads keep it).
    shards: usize,
    /// The policy threads for large bodies (kept across reloads).
    pub offload: Arc<offload::Offload>,
    /// Body bytes held by all crossings (kept across reloads).
    pub budget: Arc<Budget>,
    id_prefix: u32,
    id_counter: AtomicU64,
}

/// Why the runtime cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An upstream's TLS settings are unusable.
    #[error("integration '{integration}': {source}")]
    Upstream {
        /// The integration.
        integration: String,
        /// Why.
        source: Box<tls::TlsError>,
    },
}

impl Runtime {
    /// Builds upstream clients (a pool per integration and listener shard)
    /// and credential caches for `config`.
    pub fn new(
        config: Arc<Config>,
        auditor: Auditor,
        metrics: Arc<Metrics>,
        signals: Arc<Signals>,
        shards: usize,
        offload: Arc<offload::Offload>,
        budget: Arc<Budget>,
    ) -> Result<Self, RuntimeError> {
        let failed = |it: &crate::config::Integration| {
            let integration = it.name.clone();
            move |source| RuntimeError::Upstream {
                integration,
                source: Box::new(source),
            }
        };
        let max_headers = config.limits.max_response_headers;
        let clients = config
            .integrations
            .iter()
            .map(|it| {
                client::build_per_shard(&it.upstream, shards, max_headers).map_err(failed(it))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let upgrade_clients = config
            .integrations
            .iter()
            .map(|it| {
                let upgrades = it.routes.iter().any(|r| r.upgrade);
                upgrades
                    .then(|| {
                        client::build_for_upgrades(&it.upstream, max_headers).map_err(failed(it))
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = config
            .integrations
            .iter()
            .map(|it| {
                it.upstream
                    .inject
                    .as_ref()
                    .map(|i| Credential::new(&i.value, config.reload_settle))
            })
            .collect();
        let meters = config
            .integrations
            .iter()
            .map(|it| metrics.meters(&it.name, it.upstream.inject.is_some()))
            .collect();
        let mut prefix = [0u8; 4];
        // Without randomness ids are still unique within the process.
        let _ = getrandom::fill(&mut prefix);
        Ok(Runtime {
            config,
            auditor,
            metrics,
            signals,
            clients,
            upgrade_clients,
            credentials,
            meters,
            shards,
            offload,
            budget,
            id_prefix: u32::from_le_bytes(prefix),
            id_counter: AtomicU64::new(0),
        })
    }

    /// A new request id: process prefix and counter, 16 hex digits. Callers'
    /// own ids are not trusted: they would end up in audit records.
    pub fn next_request_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed) as u32;
        let id = (u64::from(self.id_prefix) << 32) | u64::from(n);
        let mut digits = [0u8; 16];
        // Eight bytes always fill sixteen hex digits.
        let _ = hex::encode_to_slice(id.to_be_bytes(), &mut digits);
        digits.iter().map(|&d| char::from(d)).collect()
    }

    /// Today's date in UTC: end dates are whole UTC days.
    pub fn today(&self) -> jiff::civil::Date {
        crate::config::warnings::today_utc()
    }

    /// The metric series of the integration at `index` in the config.
    pub fn meters(&self, index: usize) -> Option<&Meters> {
        self.meters.get(index)
    }

    /// Listener shards this runtime has client pools for.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The matched integration's pooled client for listener shard `shard`.
    pub fn client(&self, matched: &Matched<'_>, shard: usize) -> &UpstreamClient {
        let pools = &self.clients[matched.index];
        &pools[shard % pools.len()]
    }

    /// The HTTP/1.1-only client that carries the matched integration's
    /// upgrades; `None` when none of its routes allows one.
    pub fn upgrade_client(&self, matched: &Matched<'_>) -> Option<&UpstreamClient> {
        self.upgrade_clients[matched.index].as_ref()
    }

    /// The injected credential (see [`credential`]). A secret that cannot be read
    /// refuses the crossing rather than sending it without.
    pub fn credential(&self, matched: &Matched<'_>) -> Result<Option<HeaderValue>, Refusal> {
        let Some(Some(credential)) = self.credentials.get(matched.index) else {
            return Ok(None);
        };
        credential
            .current()
            .map(Some)
            .map_err(|why| Refusal::new(Kind::CredentialUnavailable, why))
    }
}
