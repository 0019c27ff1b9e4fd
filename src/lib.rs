//! customs: an inline data-boundary enforcement proxy.
//!
//! A request crosses these modules in this order:
//!
//! ```text
//! proxy::listener ─▶ proxy::framing ─▶ proxy::route ─▶ proxy::auth
//!   ─▶ proxy::body + policy (request) ─▶ proxy::upstream
//!   ─▶ proxy::body + policy (response) ─▶ proxy::trail ─▶ audit, metrics
//! ```
//!
//! [`policy`] is pure and synchronous: `serve`, `apply`, `check`, the tests
//! and the benches all call the same engine. [`config`] turns the YAML files
//! into one validated snapshot; a reload swaps it whole.

pub mod audit;
pub mod config;
pub mod demo;
pub mod diag;
pub mod discovery;
pub mod inventory;
pub mod json;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod signals;
