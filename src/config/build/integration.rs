//! Integrations, their upstreams, credentials and routes.

use super::*;

impl Builder<'_> {
    pub(super) fn integrations(
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

    pub(super) fn routes(
        &mut self,
        raw: Vec<Spanned<RouteFile>>,
        policies: &PolicySet,
    ) -> Vec<Route> {
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
