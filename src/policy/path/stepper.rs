//! The selector automaton driven one child at a time, for the stream engine
//! ([`crate::policy::stream`]), which sees a document as a token stream and never holds a tree.
//!
//! A [`Stepper`] is the same [`Nfa`] the tree walks use, over the selectors of several units (a
//! rule, or one path of a `drop` rule) laid out in unit order. The stream engine asks it for a
//! child's state set from its parent's, and which units accept a node. It runs only paths whose
//! matches do not depend on anything but the keys and positions on the way down: no filters, no
//! negative indices, no slices that need the array's length (see [`Selector::needs_tree`]).

use super::bits::intersects;
use super::nfa::{Child, Hits, Nfa};
use super::program::{Program, Sel};
use super::selector::Selector;
use std::ops::Range;

/// Words of a state set: a [`Stepper`] of more states than `64 * WORDS` is not built.
pub const WORDS: usize = 4;

/// A state set of a [`Stepper`]; unused words stay zero.
pub type States = [u64; WORDS];

/// The length the automaton is told an array has. Only negative indices and slices without
/// bounds read it, and those paths never reach a `Stepper`; positive bounds compare to it as
/// to any length longer than the position.
const NO_LENGTH: usize = 1 << 40;

/// Several units' selectors as one automaton that steps from a node to its children.
#[derive(Debug)]
pub struct Stepper {
    nfa: Nfa,
    /// The unit each state belongs to.
    owner: Vec<usize>,
    /// Per unit, the range of its states.
    spans: Vec<Range<usize>>,
}

impl Stepper {
    /// One unit per entry, in order, each with its selectors; `None` when the automaton would
    /// need more than [`WORDS`] words.
    pub fn new(units: &[&[Selector]]) -> Option<Stepper> {
        let programs: Vec<&Program> = units
            .iter()
            .flat_map(|sels| sels.iter().map(|s| &*s.program))
            .collect();
        let nfa = Nfa::new(&programs);
        if nfa.words > WORDS {
            return None;
        }
        let mut owner = Vec::with_capacity(nfa.steps.len());
        let mut spans = Vec::with_capacity(units.len());
        for (u, sels) in units.iter().enumerate() {
            let states: usize = sels.iter().map(|s| s.program.steps.len() + 1).sum();
            spans.push(owner.len()..owner.len() + states);
            owner.extend(std::iter::repeat_n(u, states));
        }
        Some(Stepper { nfa, owner, spans })
    }

    /// The state set of the document root.
    pub fn start(&self) -> States {
        let mut s = [0; WORDS];
        s[..self.nfa.words].copy_from_slice(&self.nfa.start);
        s
    }

    /// The state set of a child: member `key`, or element `pos` when `key` is `None`.
    pub fn step(&self, parent: &States, key: Option<&str>, pos: usize) -> States {
        let mut into = [0; WORDS];
        let words = self.nfa.words;
        if parent[..words].iter().all(|w| *w == 0) {
            return into;
        }
        let child = Child {
            key,
            pos,
            len: NO_LENGTH,
            addr: 0,
            ascii: key.is_none_or(str::is_ascii),
        };
        let hits = Hits {
            rooted: &[],
            local: Vec::new(),
        };
        self.nfa
            .advance(&parent[..words], &child, &hits, &mut into[..words]);
        into
    }

    /// Whether a node in `states` is matched by some unit.
    pub fn accepts(&self, states: &States) -> bool {
        intersects(&states[..self.nfa.words], &self.nfa.accept)
    }

    /// Whether some unit can still match below a node in `states`.
    pub fn active(&self, states: &States) -> bool {
        self.nfa.active(&states[..self.nfa.words])
    }

    /// The units that match a node in `states`, in increasing order, each once.
    pub fn accepted(&self, states: &States) -> Accepted<'_> {
        let mut bits = [0; WORDS];
        for (w, a) in self.nfa.accept.iter().enumerate() {
            bits[w] = states[w] & a;
        }
        Accepted {
            owner: &self.owner,
            bits,
            word: 0,
            last: usize::MAX,
        }
    }

    /// `states` without the states of units `limit` and later.
    pub fn before(&self, states: &States, limit: usize) -> States {
        let end = self.spans.get(limit).map_or(usize::MAX, |r| r.start);
        keep_below(states, end)
    }

    /// Whether a unit after `unit` (and before `limit`) can match below a node in `states`.
    pub fn active_after(&self, states: &States, unit: usize, limit: usize) -> bool {
        let from = self.spans.get(unit).map_or(usize::MAX, |r| r.end);
        let mut later = self.before(states, limit);
        let cut = keep_below(&later, from);
        for (w, c) in later.iter_mut().zip(cut) {
            *w &= !c;
        }
        self.active(&later)
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.spans.len()
    }
}

/// The units of the accepting states of a node, in increasing order, each once.
pub struct Accepted<'s> {
    owner: &'s [usize],
    bits: States,
    word: usize,
    last: usize,
}

impl Iterator for Accepted<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            let rest = self.bits.get_mut(self.word)?;
            if *rest == 0 {
                self.word += 1;
                continue;
            }
            let bit = rest.trailing_zeros() as usize;
            *rest &= *rest - 1;
            let unit = self.owner.get(self.word * 64 + bit).copied()?;
            if unit != self.last {
                self.last = unit;
                return Some(unit);
            }
        }
    }
}

/// The states of `states` below bit `end`.
fn keep_below(states: &States, end: usize) -> States {
    let mut out = *states;
    for (w, word) in out.iter_mut().enumerate() {
        let first = w * 64;
        if end <= first {
            *word = 0;
        } else if end < first + 64 {
            *word &= (1u64 << (end - first)) - 1;
        }
    }
    out
}

impl Selector {
    /// Why the stream engine cannot run this path, if it cannot: a filter (its result depends
    /// on the values around the node), a negative index or a slice that needs the array's
    /// length (known only at the array's end).
    pub fn needs_tree(&self) -> Option<&'static str> {
        for step in &self.program.steps {
            for sel in &step.sels {
                match sel {
                    Sel::Filter(_) => return Some("a filter selector [?…]"),
                    Sel::Index(i) if *i < 0 => return Some("a negative index"),
                    Sel::Slice { start, end, step } => {
                        let negative = start.is_some_and(|s| s < 0) || end.is_some_and(|e| e < 0);
                        if *step < 0 || negative {
                            return Some("a slice that needs the array's length");
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// Whether the path selects array elements by position (an index or a slice).
    pub fn uses_positions(&self) -> bool {
        self.program.steps.iter().any(|step| {
            step.sels
                .iter()
                .any(|s| matches!(s, Sel::Index(_) | Sel::Slice { .. }))
        })
    }

    /// Whether the path can select array elements (so dropping what it selects can shift the
    /// positions of the elements after them).
    pub fn may_select_elements(&self) -> bool {
        self.program
            .steps
            .last()
            .is_some_and(|step| step.sels.iter().any(|s| !matches!(s, Sel::Name(_))))
    }
}
