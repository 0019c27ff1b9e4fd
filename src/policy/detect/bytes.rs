//! Byte sets of patterns: the bytes a match can start with ([`Starts`], probed from a lazy DFA)
//! and the bytes it can contain and end with ([`alphabet`], read from its NFA).

use super::spans::next_char;
use super::validate::byte_at;
use regex_automata::hybrid::dfa::DFA;
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, PatternID};

/// The bytes a pattern's match can start with: at the start of the text, and
/// anywhere else. A superset is fine (it only costs an anchored try).
#[derive(Debug, Clone, Copy)]
pub(super) struct Starts {
    pub(super) first: ByteSet,
    pub(super) inner: ByteSet,
    /// For a pattern with a lead: the bytes the candidate after it can start with.
    pub(super) then: Option<ByteSet>,
}

impl Starts {
    pub(super) const ANY: Starts = Starts {
        first: ByteSet::ALL,
        inner: ByteSet::ALL,
        then: None,
    };

    /// Whether the pattern may match at `s` of `t`.
    pub(super) fn may(&self, t: &str, s: usize) -> bool {
        let b = t.as_bytes();
        let set = if s == 0 { &self.first } else { &self.inner };
        set.has(byte_at(b, Some(s)))
            && self
                .then
                .is_none_or(|then| then.has(byte_at(b, Some(next_char(t, s)))))
    }

    /// Probes the anchored start state of each pattern of a lazy DFA with
    /// every byte, for each kind of preceding context (text start, word
    /// byte, non-word byte, `\n`, `\r`). Anything unexpected means "any byte".
    pub(super) fn of(sources: &[&str]) -> Vec<Starts> {
        if sources.is_empty() {
            return Vec::new();
        }
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .starts_for_each_pattern(true)
                    .unicode_word_boundary(true),
            )
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(sources);
        let Ok(dfa) = dfa else {
            return vec![Starts::ANY; sources.len()];
        };
        let mut cache = dfa.create_cache();
        let mut probe = |pid: PatternID, look_behind: Option<u8>| {
            let config = start::Config::new()
                .anchored(Anchored::Pattern(pid))
                .look_behind(look_behind);
            let Ok(sid) = dfa.start_state(&mut cache, &config) else {
                return ByteSet::ALL;
            };
            let mut set = ByteSet::EMPTY;
            for byte in 0..=u8::MAX {
                if !dfa
                    .next_state(&mut cache, sid, byte)
                    .is_ok_and(|next| next.is_dead())
                {
                    set.insert(byte);
                }
            }
            set
        };
        (0..sources.len())
            .map(|i| {
                let pid = PatternID::new_unchecked(i);
                let mut inner = ByteSet::EMPTY;
                for lb in [b'a', b' ', b'\n', b'\r'] {
                    inner.union(probe(pid, Some(lb)));
                }
                Starts {
                    first: probe(pid, None),
                    inner,
                    then: None,
                }
            })
            .collect()
    }
}

/// The bytes a match of `source` can contain and end with: every byte of
/// every transition reachable from its anchored start, and of those that lead
/// to a match without consuming more (any byte if it does not compile).
pub(super) fn alphabet(source: &str) -> Bytes {
    use thompson::State;
    let any = Bytes {
        all: ByteSet::ALL,
        last: ByteSet::ALL,
    };
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().which_captures(WhichCaptures::None))
        .build(source);
    let Ok(nfa) = nfa else {
        return any;
    };
    // Whether a state reaches a match without consuming a byte (look-around
    // assertions taken as satisfied): walk the epsilon edges backwards from
    // the match states.
    let states = nfa.states();
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); states.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let mut edge = |next: StateID| {
            if let Some(v) = back.get_mut(next.as_usize()) {
                v.push(i);
            }
        };
        match state {
            State::Match { .. } => todo.push(i),
            State::Look { next, .. } | State::Capture { next, .. } => edge(*next),
            State::Union { alternates } => alternates.iter().copied().for_each(edge),
            State::BinaryUnion { alt1, alt2 } => {
                edge(*alt1);
                edge(*alt2);
            }
            _ => {}
        }
    }
    let mut matches = vec![false; states.len()];
    while let Some(i) = todo.pop() {
        match matches.get_mut(i) {
            Some(m) if !*m => *m = true,
            _ => continue,
        }
        todo.extend(back.get(i).into_iter().flatten());
    }
    let ends = |id: StateID| matches.get(id.as_usize()).copied().unwrap_or(true);
    let mut out = Bytes {
        all: ByteSet::EMPTY,
        last: ByteSet::EMPTY,
    };
    let mut seen = vec![false; states.len()];
    let mut todo = vec![nfa.start_anchored()];
    while let Some(id) = todo.pop() {
        match seen.get_mut(id.as_usize()) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        let mut step = |lo: u8, hi: u8, next: StateID| {
            out.all.insert_range(lo, hi);
            if ends(next) {
                out.last.insert_range(lo, hi);
            }
            todo.push(next);
        };
        match nfa.state(id) {
            State::ByteRange { trans } => step(trans.start, trans.end, trans.next),
            State::Sparse(sparse) => {
                for trans in sparse.transitions.iter() {
                    step(trans.start, trans.end, trans.next);
                }
            }
            State::Dense(dense) => {
                for (byte, &next) in (0..=u8::MAX).zip(dense.transitions.iter()) {
                    if next != StateID::ZERO {
                        step(byte, byte, next);
                    }
                }
            }
            State::Look { next, .. } | State::Capture { next, .. } => todo.push(*next),
            State::Union { alternates } => todo.extend(alternates.iter().copied()),
            State::BinaryUnion { alt1, alt2 } => todo.extend([*alt1, *alt2]),
            State::Fail | State::Match { .. } => {}
        }
    }
    out
}

/// What [`alphabet`] finds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bytes {
    pub(super) all: ByteSet,
    pub(super) last: ByteSet,
}

/// A set of bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteSet([u64; 4]);

impl ByteSet {
    pub(super) const EMPTY: ByteSet = ByteSet([0; 4]);
    pub(super) const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    pub(super) fn has(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }

    pub(super) fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }

    pub(super) fn insert_range(&mut self, lo: u8, hi: u8) {
        for byte in lo..=hi {
            self.insert(byte);
        }
    }

    pub(super) fn union(&mut self, other: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
}
