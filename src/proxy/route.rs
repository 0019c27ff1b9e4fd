//! Stage 2: routing. The normalised path selects an integration by mount and
//! a route by pattern and method; anything undeclared is `no_route`. The
//! pipeline checks the integration's end date between the two steps, so an
//! expired integration refuses everything under its mount.

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

/// The integration mounted above a path, its position in the config and
/// the path below the mount.
#[derive(Debug, Clone, Copy)]
pub struct Mounted<'c> {
    /// The integration.
    pub integration: &'c Integration,
    /// Its position in the config.
    pub index: usize,
    /// The path below the mount, starting with `/`.
    pub rest: &'c str,
}

/// Finds the integration mounted above `path` (already normalised); 404
/// when there is none.
pub fn mounted<'c>(config: &'c Config, path: &'c str) -> Result<Mounted<'c>, Refusal> {
    let found = config
        .integrations
        .iter()
        .enumerate()
        .find_map(|(index, it)| {
            let rest = path.strip_prefix(it.mount.as_str())?;
            let rest = match rest {
                "" => "/",
                r if r.starts_with('/') => r,
                _ => return None,
            };
            Some(Mounted {
                integration: it,
                index,
                rest,
            })
        });
    found.ok_or_else(|| Refusal::new(Kind::NoRoute, "no integration mounted here"))
}

/// Finds the route of `method` below the mount; 404 when nothing is declared.
pub fn find<'c>(m: Mounted<'c>, method: &Method) -> Result<Matched<'c>, Refusal> {
    let mut path_matched = false;
    for route in &m.integration.routes {
        if route.pattern.matches(m.rest) {
            path_matched = true;
            if route.methods.contains(method) {
                return Ok(Matched {
                    integration: m.integration,
                    index: m.index,
                    route,
                    rest: m.rest,
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
