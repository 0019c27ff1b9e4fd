//! The automaton: several [`Program`]s laid out side by side as one [`Nfa`] over bitsets of
//! states, what it needs to know of a child ([`Child`]) and the filter results ([`Hits`]).

use super::bits::{intersects, set};
use super::keys;
use super::program::{FilterInfo, Program, Sel, Step};
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// Several programs laid out side by side. Program `k` has states `base_k ..= base_k + n_k`.
/// A node in state `s < base_k + n_k` has its children matched against step `s`. A node in
/// state `base_k + n_k` is accepted (matched). The state set of a node is a bitset of
/// `words` u64s.
#[derive(Debug)]
pub(super) struct Nfa {
    /// The step each state applies to a node's children; `None` for accepting states.
    pub(super) steps: Vec<Option<Step>>,
    pub(super) filters: Vec<FilterInfo>,
    pub(super) start: Vec<u64>,
    pub(super) accept: Vec<u64>,
    /// The states whose step has a filter without `$`, which is evaluated per container.
    pub(super) local_filters: Vec<u64>,
    pub(super) words: usize,
    /// The name-only steps, indexed by name.
    pub(super) keys: keys::KeyIndex,
}

impl Nfa {
    pub(super) fn new(programs: &[&Program]) -> Nfa {
        let total: usize = programs.iter().map(|p| p.steps.len() + 1).sum();
        let words = total.div_ceil(64).max(1);
        let mut nfa = Nfa {
            steps: Vec::with_capacity(total),
            filters: Vec::new(),
            start: vec![0; words],
            accept: vec![0; words],
            local_filters: vec![0; words],
            words,
            keys: keys::KeyIndex::default(),
        };
        for program in programs {
            nfa.add(program);
        }
        nfa.keys = keys::KeyIndex::new(&nfa.steps, words);
        nfa
    }

    pub(super) fn add(&mut self, program: &Program) {
        let base = self.steps.len();
        let filter_base = self.filters.len();
        self.filters.extend(program.filters.iter().cloned());
        for step in &program.steps {
            let sels: Vec<Sel> = step
                .sels
                .iter()
                .map(|sel| match sel {
                    Sel::Filter(i) => Sel::Filter(filter_base + i),
                    other => other.clone(),
                })
                .collect();
            let local =
                |sel: &Sel| matches!(sel, Sel::Filter(i) if self.filters[*i].rooted.is_none());
            if sels.iter().any(local) {
                set(&mut self.local_filters, self.steps.len());
            }
            self.steps.push(Some(Step::new(step.descendant, sels)));
        }
        let accept = self.steps.len();
        self.steps.push(None);
        set(&mut self.accept, accept);
        set(&mut self.start, base);
        if program.match_root {
            set(&mut self.start, accept);
        }
    }

    /// True if a node in `states` still has steps to apply to its children.
    pub(super) fn active(&self, states: &[u64]) -> bool {
        states.iter().zip(&self.accept).any(|(s, a)| s & !a != 0)
    }

    pub(super) fn accepts(&self, states: &[u64]) -> bool {
        intersects(states, &self.accept)
    }

    /// Computes the state set of `child` from the state set of its parent.
    pub(super) fn advance(
        &self,
        parent: &[u64],
        child: &Child<'_>,
        hits: &Hits<'_>,
        into: &mut [u64],
    ) {
        let keyed = child
            .key
            .and_then(|k| self.keys.lookup(parent, k, child.ascii));
        // Most walks fit in one word; plain integers keep this hot loop free of slice work.
        if let ([from], [to]) = (parent, &mut *into) {
            *to = self.advance_word(0, *from, child, hits, keyed);
            return;
        }
        for (w, (from, to)) in parent.iter().zip(into.iter_mut()).enumerate() {
            *to = 0;
            if *from != 0 {
                *to = self.advance_word(w * 64, *from, child, hits, keyed);
            }
        }
        // The successor of a word's last state is the first state of the next word.
        for (w, from) in parent.iter().enumerate() {
            let last = w * 64 + 63;
            if from >> 63 == 1 && self.steps_into(last, child, hits) {
                set(into, last + 1);
            }
        }
    }

    /// The states in word `base / 64` reached from the states `from` of that word. Successors
    /// that fall into the next word are handled by the caller.
    pub(super) fn advance_word(
        &self,
        base: usize,
        from: u64,
        child: &Child<'_>,
        hits: &Hits<'_>,
        keyed: Option<&[u64]>,
    ) -> u64 {
        let (mut to, mut rest) = match keyed {
            Some(selected) => self.keys.advance_word(base / 64, from, selected),
            None => (0, from),
        };
        while rest != 0 {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            let Some(Some(step)) = self.steps.get(base + bit as usize) else {
                continue;
            };
            if step.descendant {
                to |= 1 << bit;
            }
            if bit < 63 && step.selects(child, hits) {
                to |= 1 << (bit + 1);
            }
        }
        to
    }

    /// Does the step of state `s` select `child`?
    pub(super) fn steps_into(&self, s: usize, child: &Child<'_>, hits: &Hits<'_>) -> bool {
        match self.steps.get(s) {
            Some(Some(step)) => step.selects(child, hits),
            _ => false,
        }
    }
}

/// What a selector needs to know about a child.
pub(super) struct Child<'k> {
    /// The member name, or `None` for an array element.
    pub(super) key: Option<&'k str>,
    /// The index in the array (or the position in the object).
    pub(super) pos: usize,
    /// The length of the parent array or object.
    pub(super) len: usize,
    /// The child's address, to look up filter results.
    pub(super) addr: usize,
    /// The key is ASCII (checked once here, not once per name compared).
    pub(super) ascii: bool,
}

impl<'k> Child<'k> {
    pub(super) fn member(key: &'k str, pos: usize, len: usize, child: &Value) -> Child<'k> {
        Child {
            key: Some(key),
            pos,
            len,
            addr: addr(child),
            ascii: key.is_ascii(),
        }
    }

    pub(super) fn element(pos: usize, len: usize, child: &Value) -> Child<'k> {
        Child {
            key: None,
            pos,
            len,
            addr: addr(child),
            ascii: true,
        }
    }
}

impl Sel {
    pub(super) fn selects(&self, child: &Child<'_>, hits: &Hits<'_>) -> bool {
        match self {
            // Tested by `Step::selects`, before any other kind.
            Sel::Name(_) => false,
            Sel::Wildcard => true,
            Sel::Index(i) => child.key.is_none() && index_selects(*i, child.pos, child.len),
            Sel::Slice { start, end, step } => {
                child.key.is_none() && slice_selects(*start, *end, *step, child.pos, child.len)
            }
            Sel::Filter(slot) => hits.contains(*slot, child.addr),
        }
    }
}

fn index_selects(i: i64, pos: usize, len: usize) -> bool {
    let i = if i >= 0 { i } else { len as i64 + i };
    i == pos as i64
}

/// RFC 9535 §2.3.4.2.2, tested for one index instead of enumerated.
fn slice_selects(start: Option<i64>, end: Option<i64>, step: i64, pos: usize, len: usize) -> bool {
    let (i, len) = (pos as i64, len as i64);
    let norm = |v: i64| if v >= 0 { v } else { len + v };
    if step > 0 {
        let lower = norm(start.unwrap_or(0)).clamp(0, len);
        let upper = norm(end.unwrap_or(len)).clamp(0, len);
        lower <= i && i < upper && (i - lower) % step == 0
    } else if step < 0 {
        let upper = norm(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = norm(end.unwrap_or(-len - 1)).clamp(-1, len - 1);
        lower < i && i <= upper && (upper - i) % step == 0
    } else {
        false
    }
}

/// Filter results: the addresses of the children that pass, sorted.
///
/// An address identifies the same node for the whole walk. Results are computed before the walk
/// (filters with `$`) or when the walk enters the container (the others). Nothing moves a node
/// before all the children of its container have been walked. Callbacks change only the node
/// they are given, after its subtree is done. Removals happen after all of a container's
/// children have been walked.
pub(super) struct Hits<'w> {
    /// Per filter slot, for filters that mention `$` (empty for the others).
    pub(super) rooted: &'w [Vec<usize>],
    /// Per filter slot, for the current container.
    pub(super) local: Vec<(usize, Vec<usize>)>,
}

impl Hits<'_> {
    pub(super) fn contains(&self, slot: usize, addr: usize) -> bool {
        let list = match self.local.iter().find(|(s, _)| *s == slot) {
            Some((_, list)) => list.as_slice(),
            None => self.rooted.get(slot).map_or(&[][..], Vec::as_slice),
        };
        list.binary_search(&addr).is_ok()
    }
}

/// Runs a query with jsonpath-rust and returns the addresses of the resulting nodes, sorted.
pub(super) fn run_filter(query: &JpQuery, on: &Value) -> Vec<usize> {
    let mut addrs: Vec<usize> = match js_path_process(query, on) {
        Ok(refs) => refs.into_iter().map(|r| addr(r.val)).collect(),
        Err(_) => Vec::new(),
    };
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

pub(super) fn addr(v: &Value) -> usize {
    std::ptr::from_ref(v).addr()
}

pub(super) fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}
