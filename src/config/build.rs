//! The builder: raw config file → validated [`Config`], every mistake a
//! [`Diagnostic`] with its line. Integrations and routes are in
//! [`integration`], clients and their identities in [`client`].

mod client;
mod integration;

use super::*;

pub(super) struct Builder<'a> {
    pub(super) file: &'a Path,
    pub(super) base: PathBuf,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) resolve_secrets: bool,
}

impl Builder<'_> {
    pub(super) fn error(&mut self, line: u64, message: String, hint: &str) {
        let d = Diagnostic::error(self.file, line, message);
        self.diags
            .push(if hint.is_empty() { d } else { d.hint(hint) });
    }

    fn path(&self, t: &Text) -> PathBuf {
        self.base.join(&t.value)
    }

    pub(super) fn config(&mut self, raw: ConfigFile) -> Config {
        let policies_dir = raw
            .policies
            .as_ref()
            .map_or_else(|| self.base.join("policies"), |p| self.path(p));
        let (policies, mut pdiags) = policy::load_dir(&policies_dir);
        self.diags.append(&mut pdiags);
        let listen = self.addr(&raw.listen.address);
        let admin = raw.admin.as_ref().map(|a| self.addr(&a.address));
        let admin_token = raw.admin.as_ref().and_then(|a| self.admin_token(a));
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
            admin_token,
            admin_line: raw
                .admin
                .as_ref()
                .map_or(0, |a| a.address.referenced.line()),
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

    fn admin_token(&mut self, admin: &file::AdminFile) -> Option<[u8; 32]> {
        let t = admin.token.as_ref()?;
        let digest = sha256_digest(&t.value);
        if digest.is_none() {
            self.error(
                t.referenced.line(),
                "admin.token must be sha256: followed by 64 hex digits".into(),
                "never put the token itself in the config; `customs keygen` prints a token and its sha256: line",
            );
        }
        digest
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
}

/// The digest of a `sha256:<64 hex>` value (client keys, the admin token).
pub(super) fn sha256_digest(value: &str) -> Option<[u8; 32]> {
    value
        .strip_prefix("sha256:")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}
