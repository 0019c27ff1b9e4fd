//! [`Walk`]: one walk of one document by an [`Nfa`], reading, removing or pruning the nodes it
//! reaches.

use super::bits::{any, intersects, ones};
use super::location::Location;
use super::nfa::{Child, Hits, Nfa, is_container};
use super::program::Sel;
use serde_json::Value;
use std::ops::ControlFlow;

/// Levels of state bitsets allocated up front; deeper documents allocate more on the way down.
pub(super) const LEVELS: usize = 130;

/// Called for each child of a container with its location, value and state set, plus the
/// scratch space for the levels below. Returns true to remove the child.
pub(super) type EachMut<'e> = dyn FnMut(&Location<'_>, &mut Value, &[u64], &mut [u64]) -> bool + 'e;
pub(super) type Each<'e> =
    dyn FnMut(&Location<'_>, &Value, &[u64], &mut [u64]) -> ControlFlow<()> + 'e;

/// What `prune` does with an unknown node.
pub(super) struct Unknown<'f> {
    pub(super) remove: bool,
    pub(super) f: &'f mut dyn FnMut(&Location<'_>),
}

/// One walk of one document.
pub(super) struct Walk<'n> {
    pub(super) nfa: &'n Nfa,
    /// Results of the filters that mention `$`, computed on the untouched document.
    pub(super) rooted: Vec<Vec<usize>>,
}

impl<'n> Walk<'n> {
    pub(super) fn new(nfa: &'n Nfa, doc: &Value) -> Walk<'n> {
        let rooted = nfa
            .filters
            .iter()
            .map(|f| f.rooted.as_ref().map(|q| f.run(q, doc)).unwrap_or_default())
            .collect();
        Walk { nfa, rooted }
    }

    pub(super) fn scratch(&self) -> Vec<u64> {
        vec![0; self.nfa.words * LEVELS]
    }

    /// Evaluates, on this container, the `$`-free filters of the states it is in.
    pub(super) fn hits(&self, node: &Value, states: &[u64]) -> Hits<'_> {
        let mut local = Vec::new();
        if intersects(states, &self.nfa.local_filters) {
            for s in ones(states) {
                let Some(Some(step)) = self.nfa.steps.get(s) else {
                    continue;
                };
                for sel in &step.sels {
                    if let Sel::Filter(slot) = sel
                        && let Some(info) = self.nfa.filters.get(*slot)
                        && info.rooted.is_none()
                    {
                        local.push((*slot, info.run(&info.local, node)));
                    }
                }
            }
        }
        Hits {
            rooted: &self.rooted,
            local,
        }
    }

    /// Calls `each` for the children of `node` some selector can still reach (for every child
    /// when `dead_too`), then removes the children it asked to remove.
    pub(super) fn children_mut(
        &self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        dead_too: bool,
        each: &mut EachMut<'_>,
    ) {
        if !is_container(node) {
            return;
        }
        let hits = self.hits(node, states);
        let mut spare = Vec::new();
        let (buf, rest) = split_level(scratch, self.nfa.words, &mut spare);
        let mut doomed = Vec::new();
        match node {
            Value::Object(map) => {
                let len = map.len();
                for (pos, (key, child)) in map.iter_mut().enumerate() {
                    let c = Child::member(key, pos, len, child);
                    self.nfa.advance(states, &c, &hits, buf);
                    if (dead_too || any(buf)) && each(&loc.key(key), child, buf, rest) {
                        doomed.push(pos);
                    }
                }
                if !doomed.is_empty() {
                    map.retain(keep_except(&doomed));
                }
            }
            Value::Array(items) => {
                let len = items.len();
                for (pos, child) in items.iter_mut().enumerate() {
                    let c = Child::element(pos, len, child);
                    self.nfa.advance(states, &c, &hits, buf);
                    if (dead_too || any(buf)) && each(&loc.index(pos), child, buf, rest) {
                        doomed.push(pos);
                    }
                }
                if !doomed.is_empty() {
                    let mut keep = keep_except(&doomed);
                    items.retain_mut(|v| keep(&(), v));
                }
            }
            _ => {}
        }
    }

    /// Calls `each` for the children of `node` some selector can still reach, until it breaks.
    pub(super) fn children(
        &self,
        node: &Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        each: &mut Each<'_>,
    ) -> ControlFlow<()> {
        if !is_container(node) {
            return ControlFlow::Continue(());
        }
        let hits = self.hits(node, states);
        let mut spare = Vec::new();
        let (buf, rest) = split_level(scratch, self.nfa.words, &mut spare);
        match node {
            Value::Object(map) => {
                let len = map.len();
                for (pos, (key, child)) in map.iter().enumerate() {
                    let c = Child::member(key, pos, len, child);
                    self.nfa.advance(states, &c, &hits, buf);
                    if any(buf) {
                        each(&loc.key(key), child, buf, rest)?;
                    }
                }
            }
            Value::Array(items) => {
                let len = items.len();
                for (pos, child) in items.iter().enumerate() {
                    let c = Child::element(pos, len, child);
                    self.nfa.advance(states, &c, &hits, buf);
                    if any(buf) {
                        each(&loc.index(pos), child, buf, rest)?;
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    pub(super) fn visit(
        &self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        f: &mut dyn FnMut(&Location<'_>, &mut Value),
    ) -> usize {
        let mut n = 0;
        if self.nfa.active(states) {
            self.children_mut(
                node,
                loc,
                states,
                scratch,
                false,
                &mut |cloc, child, cst, rest| {
                    n += self.visit(child, cloc, cst, rest, &mut *f);
                    false
                },
            );
        }
        if self.nfa.accepts(states) {
            f(loc, node);
            n += 1;
        }
        n
    }

    pub(super) fn find(
        &self,
        node: &Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        f: &mut dyn FnMut(&Location<'_>, &Value) -> bool,
        found: &mut bool,
    ) -> ControlFlow<()> {
        if self.nfa.active(states) {
            self.children(
                node,
                loc,
                states,
                scratch,
                &mut |cloc, child, cstates, rest| {
                    self.find(child, cloc, cstates, rest, &mut *f, &mut *found)
                },
            )?;
        }
        if self.nfa.accepts(states) {
            *found = true;
            if !f(loc, node) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    pub(super) fn remove(
        &self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        f: &mut dyn FnMut(&Location<'_>),
    ) -> usize {
        let mut n = 0;
        if !self.nfa.active(states) {
            return 0;
        }
        self.children_mut(
            node,
            loc,
            states,
            scratch,
            false,
            &mut |cloc, child, cstates, rest| {
                if self.nfa.accepts(cstates) {
                    f(cloc);
                    n += 1;
                    return true;
                }
                n += self.remove(child, cloc, cstates, rest, &mut *f);
                false
            },
        );
        n
    }

    pub(super) fn prune(
        &self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        scratch: &mut [u64],
        unknown: &mut Unknown<'_>,
    ) -> usize {
        let mut n = 0;
        self.children_mut(
            node,
            loc,
            states,
            scratch,
            true,
            &mut |cloc, child, cstates, rest| {
                // An admitted container or an ancestor of admitted nodes: keep it, and look at
                // its members.
                if any(cstates) && is_container(child) {
                    n += self.prune(child, cloc, cstates, rest, unknown);
                    return false;
                }
                if self.nfa.accepts(cstates) {
                    return false;
                }
                (unknown.f)(cloc);
                n += 1;
                unknown.remove
            },
        );
        n
    }
}

/// This level's state bitset and the scratch for the levels below. When the preallocated levels
/// run out, it borrows a fresh block from `spare`.
fn split_level<'s>(
    scratch: &'s mut [u64],
    words: usize,
    spare: &'s mut Vec<u64>,
) -> (&'s mut [u64], &'s mut [u64]) {
    if scratch.len() >= words {
        return scratch.split_at_mut(words);
    }
    *spare = vec![0; words * LEVELS];
    spare.split_at_mut(words)
}

/// A `retain` predicate that drops the elements at the (ascending) positions in `doomed`.
/// `retain` visits elements in order, exactly once, so counting positions is exact.
fn keep_except<K: ?Sized>(doomed: &[usize]) -> impl FnMut(&K, &mut Value) -> bool + '_ {
    let mut pos = 0;
    let mut next = doomed.iter().peekable();
    move |_, _| {
        let drop = next.next_if_eq(&&pos).is_some();
        pos += 1;
        !drop
    }
}
