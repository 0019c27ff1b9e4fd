//! [`Selector`]: one compiled JSONPath, and the walks it runs over a document.

use super::PathError;
use super::explain;
use super::location::Location;
use super::nfa::Nfa;
use super::program::{Program, Sel, Step};
use super::walk::Walk;
use jsonpath_rust::parser::parse_json_path;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// One compiled JSONPath.
#[derive(Clone)]
pub struct Selector {
    pub(super) source: Arc<str>,
    pub(super) program: Arc<Program>,
    pub(super) nfa: Arc<Nfa>,
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("source", &self.source)
            .field("exact_names", &self.program.exact_names)
            .finish_non_exhaustive()
    }
}

impl Selector {
    /// Parses and compiles `src`. Call this at policy load, never per request.
    pub fn parse(src: &str, exact_names: bool) -> Result<Selector, PathError> {
        let syntax = |reason| PathError::Syntax {
            path: src.to_owned(),
            reason,
        };
        let query = parse_json_path(src).map_err(|e| syntax(explain::explain(src, &e)))?;
        let program = Program::compile(&query, exact_names).map_err(syntax)?;
        Ok(Selector::from_program(src, program))
    }

    /// Matches the root and every descendant. `redact` uses it when a rule has no paths.
    pub fn everything() -> Selector {
        let step = Step::new(true, vec![Sel::Wildcard]);
        let program = Program {
            steps: vec![step],
            filters: Vec::new(),
            match_root: true,
            exact_names: true,
        };
        Selector::from_program("$..*", program)
    }

    fn from_program(src: &str, program: Program) -> Selector {
        let nfa = Nfa::new(&[&program]);
        Selector {
            source: src.into(),
            program: Arc::new(program),
            nfa: Arc::new(nfa),
        }
    }

    /// The path as written in the policy. For [`Selector::everything`] this is `$..*`, which
    /// also matches the root.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for exactly `$`, the whole document.
    pub fn is_root(&self) -> bool {
        self.program.steps.is_empty()
    }

    /// True when the path can share a [`RuleGroup`](super::RuleGroup) walk: it has no filter, whose result
    /// could depend on what an earlier rule of the group did.
    pub fn groupable(&self) -> bool {
        self.program.filters.is_empty()
    }

    /// True when the path ends in `..*`: it selects everything below the node before it, so as
    /// an allow-list entry it admits a whole subtree.
    pub fn admits_subtree(&self) -> bool {
        self.program
            .steps
            .last()
            .is_some_and(|s| s.descendant && matches!(s.sels[..], [Sel::Wildcard]))
    }

    /// True when the path has a `..` segment, which makes the walk visit every node below it.
    pub fn has_descendant(&self) -> bool {
        self.program.steps.iter().any(|s| s.descendant)
    }

    /// Calls `f` once for every matched node with its location, children before their
    /// ancestors. Returns the number of nodes visited.
    pub fn visit_mut(
        &self,
        doc: &mut Value,
        f: &mut dyn FnMut(&Location<'_>, &mut Value),
    ) -> usize {
        let walk = Walk::new(&self.nfa, doc);
        let mut scratch = walk.scratch();
        walk.visit(doc, &Location::root(), &self.nfa.start, &mut scratch, f)
    }

    /// Calls `f` for each matched node, in the order of [`Selector::visit_mut`], until `f`
    /// returns false. Returns true if anything matched.
    pub fn any_match(&self, doc: &Value, f: &mut dyn FnMut(&Location<'_>, &Value) -> bool) -> bool {
        let walk = Walk::new(&self.nfa, doc);
        let mut scratch = walk.scratch();
        let mut found = false;
        // A break only means that `f` asked to stop; `found` already says what we need.
        let _ = walk.find(
            doc,
            &Location::root(),
            &self.nfa.start,
            &mut scratch,
            f,
            &mut found,
        );
        found
    }

    /// The normalized path of the first match, if there is one.
    pub fn first_match(&self, doc: &Value) -> Option<String> {
        let mut first = None;
        self.any_match(doc, &mut |loc, _| {
            first = Some(loc.normalized());
            false
        });
        first
    }

    /// Removes every matched object member and array element, calling `f` with each removed
    /// node's location. It does not walk into a removed node, because its matched descendants go
    /// with it. Each container's removals are applied together after its children are walked,
    /// so one removal never shifts the index of another. The root itself is never removed.
    /// Returns the number of nodes removed.
    pub fn remove(&self, doc: &mut Value, f: &mut dyn FnMut(&Location<'_>)) -> usize {
        let walk = Walk::new(&self.nfa, doc);
        let mut scratch = walk.scratch();
        walk.remove(doc, &Location::root(), &self.nfa.start, &mut scratch, f)
    }
}
