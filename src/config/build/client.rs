//! Clients: API key digests, mTLS identities, route subsets.

use super::*;

impl Builder<'_> {
    pub(super) fn client(
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
        let digest = sha256_digest(&k.value);
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
