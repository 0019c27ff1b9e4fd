//! Several rules' selectors walked together, in one pass, with the result of running the rules
//! one after the other.
//!
//! Each rule ("member") owns a contiguous range of the automaton's states, in rule order. At a
//! node that some members match, the walk goes below the node once per matching member: first
//! with only the states of the members up to and including it (their deeper matches come first,
//! as in a sequential run, and a member's own matches stay children-first), then acts for that
//! member on the node, then moves on with the later members' states, which see the changed node.
//! Where no member matches a node — nearly everywhere — that is one ordinary step of the walk.
//!
//! Only rules whose effects cannot change what a later rule's selectors match may share a group:
//! no removals (indices would shift) and no filters (their results are computed when the walk
//! reaches a container, or before the walk for filters with `$`). See
//! [`Selector::groupable`].

use super::bits::{intersects, ones};
use super::location::Location;
use super::nfa::{Nfa, is_container};
use super::program::Program;
use super::selector::Selector;
use super::walk::Walk;
use serde_json::Value;
use std::fmt;
use std::ops::Range;

/// The selectors of several rules compiled into one automaton.
pub struct RuleGroup {
    nfa: Nfa,
    /// The member each state belongs to.
    owner: Vec<usize>,
    /// Per member, its states' range of bits.
    spans: Vec<Range<usize>>,
}

impl fmt::Debug for RuleGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleGroup")
            .field("members", &self.spans.len())
            .finish_non_exhaustive()
    }
}

impl RuleGroup {
    /// One member per rule, in rule order, each with its selectors. Every selector must be
    /// [`Selector::groupable`].
    pub fn new(members: &[&[Selector]]) -> RuleGroup {
        let programs: Vec<&Program> = members
            .iter()
            .flat_map(|sels| sels.iter().map(|s| &*s.program))
            .collect();
        let nfa = Nfa::new(&programs);
        let mut owner = Vec::with_capacity(nfa.steps.len());
        let mut spans = Vec::with_capacity(members.len());
        for (m, sels) in members.iter().enumerate() {
            let states: usize = sels.iter().map(|s| s.program.steps.len() + 1).sum();
            spans.push(owner.len()..owner.len() + states);
            owner.extend(std::iter::repeat_n(m, states));
        }
        RuleGroup { nfa, owner, spans }
    }

    /// Calls `f(member, location, node)` for every node a member's selectors match, once per
    /// member and node, in the order a run of the members one after the other would.
    pub fn visit_mut(&self, doc: &mut Value, f: &mut dyn FnMut(usize, &Location<'_>, &mut Value)) {
        let walk = Walk::new(&self.nfa, doc);
        let mut scratch = walk.scratch();
        let mut run = Run {
            group: self,
            walk: &walk,
            f,
        };
        let all = 0..self.owner.len();
        run.node(doc, &Location::root(), &self.nfa.start, all, &mut scratch);
    }
}

/// One walk of a group over one document.
struct Run<'g, 'f> {
    group: &'g RuleGroup,
    walk: &'g Walk<'g>,
    f: &'f mut dyn FnMut(usize, &Location<'_>, &mut Value),
}

impl Run<'_, '_> {
    /// Handles `node`, reached in `states`, for the members whose states lie in `bits`.
    fn node(
        &mut self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        bits: Range<usize>,
        scratch: &mut [u64],
    ) {
        let group = self.group;
        let mut from = bits.start;
        if intersects(states, &group.nfa.accept) {
            let mut last = None;
            for s in ones(states)
                .filter(|s| bits.contains(s) && matches!(group.nfa.steps.get(*s), Some(None)))
            {
                let member = group.owner[s];
                if last == Some(member) {
                    continue;
                }
                last = Some(member);
                let to = group.spans[member].end;
                self.below(node, loc, states, from..to, scratch);
                (self.f)(member, loc, node);
                from = to;
            }
        }
        self.below(node, loc, states, from..bits.end, scratch);
    }

    /// Walks the children of `node` with only the states in `bits`.
    fn below(
        &mut self,
        node: &mut Value,
        loc: &Location<'_>,
        states: &[u64],
        bits: Range<usize>,
        scratch: &mut [u64],
    ) {
        let group = self.group;
        if bits.is_empty() || !is_container(node) {
            return;
        }
        // Most automata fit in a word or two: mask on the stack.
        let (mut small, mut large) = ([0u64; 4], Vec::new());
        let states = if bits == (0..group.owner.len()) {
            states
        } else {
            let out = match small.get_mut(..states.len()) {
                Some(out) => out,
                None => {
                    large.resize(states.len(), 0);
                    &mut large[..]
                }
            };
            mask(states, &bits, out);
            &*out
        };
        if !group.nfa.active(states) {
            return;
        }
        let walk = self.walk;
        let f = &mut *self.f;
        walk.children_mut(
            node,
            loc,
            states,
            scratch,
            false,
            &mut |cloc, child, cstates, rest| {
                let mut run = Run {
                    group,
                    walk,
                    f: &mut *f,
                };
                run.node(child, cloc, cstates, bits.clone(), rest);
                false
            },
        );
    }
}

/// Writes to `out` the states of `states` whose index lies in `bits`.
fn mask(states: &[u64], bits: &Range<usize>, out: &mut [u64]) {
    for (w, (word, out)) in states.iter().zip(out).enumerate() {
        let first = w * 64;
        let lo = bits.start.clamp(first, first + 64);
        let hi = bits.end.clamp(first, first + 64);
        *out = word & ones_between(lo - first, hi - first);
    }
}

/// A word with bits `lo..hi` set (`hi` ≤ 64).
fn ones_between(lo: usize, hi: usize) -> u64 {
    if lo >= hi {
        return 0;
    }
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(p: &str) -> Selector {
        Selector::parse(p, false).expect("path")
    }

    /// Runs the members one after the other, each in a group of its own (the reference), and
    /// all in one group; both must give the same document and the same (member, path) actions.
    fn same_as_sequential(members: &[Vec<&str>], doc: Value) {
        let sels: Vec<Vec<Selector>> = members
            .iter()
            .map(|m| m.iter().map(|p| sel(p)).collect())
            .collect();
        let act = |m: usize, loc: &Location<'_>, node: &mut Value, log: &mut Vec<_>| {
            // Strings grow by a tag, not by re-quoting (which would double them per action).
            match node {
                Value::String(s) => s.push_str(&format!("|{m}")),
                other => *other = json!(format!("{m}:{other}")),
            }
            log.push((m, loc.normalized()));
        };
        let mut seq_doc = doc.clone();
        let mut seq = Vec::new();
        for (m, member) in sels.iter().enumerate() {
            RuleGroup::new(&[member.as_slice()]).visit_mut(&mut seq_doc, &mut |_, loc, node| {
                act(m, loc, node, &mut seq)
            });
        }
        let refs: Vec<&[Selector]> = sels.iter().map(Vec::as_slice).collect();
        let mut one_doc = doc;
        let mut one = Vec::new();
        RuleGroup::new(&refs).visit_mut(&mut one_doc, &mut |m, loc, node| {
            act(m, loc, node, &mut one)
        });
        assert_eq!(one_doc, seq_doc);
        seq.sort();
        one.sort();
        assert_eq!(one, seq);
    }

    #[test]
    fn disjoint_rules_act_as_in_sequence() {
        let doc = json!({"a": [{"x": 1, "y": 2}, {"x": 3}], "b": "s"});
        same_as_sequential(&[vec!["$.a[*].x"], vec!["$.b"], vec!["$.a[*].y"]], doc);
    }

    #[test]
    fn an_earlier_rule_inside_a_later_rules_node_acts_first() {
        // Rule 0 changes a.x; rule 1 then turns the whole of `a` into text that contains it.
        let doc = json!({"a": {"x": 1, "z": {"x": 2}}});
        same_as_sequential(&[vec!["$..x"], vec!["$.a"]], doc);
    }

    #[test]
    fn a_later_rule_sees_what_an_earlier_rule_made_of_an_ancestor() {
        // Rule 0 replaces `a` with a string, so rule 1 finds nothing below it.
        let doc = json!({"a": {"x": 1}, "c": {"x": 5}});
        same_as_sequential(&[vec!["$.a"], vec!["$..x"]], doc);
    }

    #[test]
    fn one_member_with_overlapping_selectors_acts_once_per_node() {
        let doc = json!({"a": [{"b": "x"}, {"b": "y"}]});
        same_as_sequential(&[vec!["$.a[*].b", "$..b", "$.a[0]"], vec!["$.a"]], doc);
    }

    #[test]
    fn many_members_span_several_words() {
        let paths: Vec<String> = (0..40).map(|i| format!("$.k{}.v.w", i % 7)).collect();
        let members: Vec<Vec<&str>> = paths.iter().map(|p| vec![p.as_str(), "$..w"]).collect();
        let doc = json!({"k0": {"v": {"w": 1}}, "k3": {"v": {"w": [2, {"w": 3}]}}});
        same_as_sequential(&members, doc);
    }

    #[test]
    fn a_group_of_one_selector_visits_what_the_selector_visits() {
        let doc = json!({"a": [{"b": {"b": 1}}, {"c": [{"b": 2}]}], "b": 3});
        for p in ["$..b", "$.a[*]", "$..*", "$.a[::-1].b", "$"] {
            let s = sel(p);
            let mut alone = Vec::new();
            s.visit_mut(&mut doc.clone(), &mut |loc, _| alone.push(loc.normalized()));
            let mut grouped = Vec::new();
            RuleGroup::new(&[std::slice::from_ref(&s)])
                .visit_mut(&mut doc.clone(), &mut |_, loc, _| {
                    grouped.push(loc.normalized())
                });
            assert_eq!(grouped, alone, "{p}");
        }
    }

    #[test]
    fn ones_between_covers_word_edges() {
        assert_eq!(ones_between(0, 64), u64::MAX);
        assert_eq!(ones_between(3, 3), 0);
        assert_eq!(ones_between(63, 64), 1 << 63);
        assert_eq!(ones_between(1, 3), 0b110);
    }
}
