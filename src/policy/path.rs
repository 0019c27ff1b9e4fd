//! Compiled JSONPath selectors that read and mutate a [`serde_json::Value`] in place.
//!
//! Policy paths are RFC 9535 JSONPath. Each one is parsed once, at policy load, by
//! `jsonpath_rust::parser::parse_json_path`, then compiled into a small automaton with one state
//! per segment. This module runs the automaton over the document itself, mutably, and formats no
//! path while walking. jsonpath-rust can only query, and it builds a path `String` at every node
//! it visits (5–9 ms for `$..x` on 191 KiB; research note §1.4).
//!
//! # What runs where
//!
//! | form                                  | example                     | evaluated by                 |
//! |---------------------------------------|-----------------------------|------------------------------|
//! | name (shorthand or quoted)            | `$.a`, `$['a-b']`           | this module                  |
//! | wildcard                              | `$.*`, `$[*]`               | this module                  |
//! | index, negative index                 | `$[0]`, `$[-1]`             | this module                  |
//! | slice, with any step                  | `$[1:5:2]`, `$[::-1]`       | this module                  |
//! | descendant segment                    | `$..a`, `$..[0]`, `$..*`    | this module                  |
//! | several selectors in one bracket      | `$['a','b']`, `$[0,-1]`     | this module                  |
//! | filter                                | `$.a[?@.x == 1]`            | jsonpath-rust, per container |
//!
//! A filter selector is the only thing jsonpath-rust evaluates. When the walk reaches a container
//! with a filter pending, it runs the filter alone (`$[?…]`) on that container to learn which
//! children pass, then continues its own walk into those children.
//!
//! `$` inside a filter means the real document root, as the RFC says. The mutable walk holds
//! the root mutably, so it cannot lend it to jsonpath-rust. A filter that mentions `$` is
//! therefore evaluated once per walk, before the walk starts: jsonpath-rust runs the path up to
//! and including that filter on the root, with name selectors widened to `*` so that
//! case-insensitive matches are covered. The walk then matches children against that result by
//! address. This costs one jsonpath-rust query per such filter per document. Prefer `@` in
//! filters on hot routes.
//!
//! # Semantics
//! - Name selectors match object keys as people read them, by Unicode compatibility
//!   normalisation with case folding (`SSN`, `ssn`, `ſsn`, `ｓｓｎ` are one key; see `fold`),
//!   unless the policy sets `exact_names`. Names inside filter expressions (`@.role`) fold the
//!   same way: the filter runs on a folded view of the container.
//! - Every matched node is visited once, even where an RFC nodelist repeats it (`$['a','a']`,
//!   overlapping `..`). Callbacks run in document order, children before their parent. This is
//!   not the RFC nodelist order.
//! - Filter comparisons are jsonpath-rust's: numbers compare as `f64`.
//! - jsonpath-rust's parser is slightly lenient: it reads `$.a b` as the name `a b`.
//!
//! # Cost
//! A walk goes only into nodes some selector can still reach; `..` makes it visit the whole
//! subtree. Measured on a 149 KiB document of 1,000 users (release build, best of 20 runs on a
//! shared 2-core VM; jsonpath-rust `query_with_path` in brackets): `$.data.users[*].email`
//! 0.13 ms (0.24 ms), `$..email` 0.33 ms (2.7 ms), `$..cards[*].pan` 0.35 ms (2.9 ms), and
//! `$.data.users[?@.active == true].email` 0.31 ms (0.33 ms), where evaluating the filter
//! dominates. The ignored test `perf_on_a_large_body` repeats the measurement.
//!
//! # Files
//! - `location.rs`: [`Location`], a node's place during a walk, and its normalized path.
//! - `selector.rs`: [`Selector`], one compiled path, and what it does to a document.
//! - `allow.rs`: [`AllowList`], the `body.allow` selectors walked together.
//! - `group.rs`: [`RuleGroup`], several rules' selectors walked together in one pass.
//! - `stepper.rs`: [`Stepper`], the automaton driven one child at a time by the stream engine.
//! - `program.rs`: the compiled form of one path (steps, selectors, filters).
//! - `nfa.rs`: the automaton over several programs, and what it needs to know of a child.
//! - `keys.rs`: the index of name-only steps by name.
//! - `bits.rs`: bitsets of automaton states.
//! - `walk.rs`: one walk of one document (visit, find, remove, prune).
//! - `fold.rs`: key-name folding, and filters run on a folded view.
//! - `explain.rs`: parse errors explained for policy authors.
//! - `hash.rs`: `Fx`, the seeded hash of key names and paths.

mod allow;
mod bits;
mod explain;
mod fold;
mod group;
mod hash;
mod keys;
mod location;
mod nfa;
mod program;
mod selector;
mod stepper;
#[cfg(test)]
mod tests;
mod walk;

pub use allow::AllowList;
pub use group::RuleGroup;
pub(crate) use hash::Fx;
pub use location::{Location, PathSegment};
pub use selector::Selector;
pub use stepper::{Accepted, States, Stepper, WORDS};

/// A policy path that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The text is not an RFC 9535 JSONPath. `reason` says what is wrong and how to fix it. It
    /// does not repeat the path, because callers already quote it.
    #[error("{reason}")]
    Syntax { path: String, reason: String },
}
