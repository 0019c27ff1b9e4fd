//! Stage 2: routing. The normalised path selects an integration by mount and
//! a route by pattern and method; anything undeclared is `no_route`.

use super::error::{Kind, Refusal};
use crate::config::{Config, Integration, Route};
use http::Method;

/// The integration and route a request matched.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'c> {
    /// The integration.
    pub integration: &'c Integration,
    /// Its position in the config: indexes the runtime's per-integration
    /// clients and credential caches of the same snapshot.
    pub index: usize,
    /// The route.
    pub route: &'c Route,
    /// The path below the mount, starting with `/`.
    pub rest: &'c str,
}

impl Matched<'_> {
    /// The upstream path: the upstream's prefix followed by the path below the mount.
    pub fn upstream_path(&self) -> String {
        format!("{}{}", self.integration.upstream.base_path, self.rest)
    }
}

/// Finds the integration mounted above `path` (already normalised).
pub fn integration<'c>(
    config: &'c Config,
    path: &'c str,
) -> Option<(usize, &'c Integration, &'c str)> {
    config.integrations.iter().enumerate().find_map(|(i, it)| {
        let rest = path.strip_prefix(it.mount.as_str())?;
        match rest {
            "" => Some((i, it, "/")),
            r if r.starts_with('/') => Some((i, it, r)),
            _ => None,
        }
    })
}

/// Finds the route of `method` and `path`; 404 when nothing is declared.
pub fn find<'c>(
    config: &'c Config,
    method: &Method,
    path: &'c str,
) -> Result<Matched<'c>, Refusal> {
    let (index, integration, rest) = integration(config, path)
        .ok_or_else(|| Refusal::new(Kind::NoRoute, "no integration mounted here"))?;
    let mut path_matched = false;
    for route in &integration.routes {
        if route.pattern.matches(rest) {
            path_matched = true;
            if route.methods.contains(method) {
                return Ok(Matched {
                    integration,
                    index,
                    route,
                    rest,
                });
            }
        }
    }
    let detail = if path_matched {
        "method not declared"
    } else {
        "no route matches"
    };
    Err(Refusal::new(Kind::NoRoute, detail))
}
