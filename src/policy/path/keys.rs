//! A key looked up once per child instead of compared with every name a walk is waiting for.
//!
//! At an object where several paths wait for different names (an allow-list of nine fields,
//! a group of rules), testing each state's names costs one comparison per state and key. The
//! index maps each name to the states whose step selects it, so a key costs one hash lookup,
//! and the successors of all those states come out of two bit operations.

use super::bits::set;
use super::hash::Fx;
use super::program::Step;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Below this many waiting states, comparing names is cheaper than a lookup.
const WORTH_IT: u32 = 3;

/// Longest key folded on the stack; longer keys take the comparing path.
const MAX_KEY: usize = 64;

/// The states whose step selects by name only, indexed by name.
#[derive(Debug, Default)]
pub(super) struct KeyIndex {
    /// Name (ASCII-folded unless exact) → the states whose step has it.
    by_name: HashMap<Box<[u8]>, Vec<u64>, BuildHasherDefault<Fx>>,
    /// States whose step has name selectors and nothing else.
    named: Vec<u64>,
    /// Those of them that are `..` steps (they also stay where they are).
    descendant: Vec<u64>,
    /// The answer for a key no step names.
    none: Vec<u64>,
    exact: bool,
}

impl KeyIndex {
    /// Indexes `steps` (the automaton's states, `None` for accepting ones).
    pub(super) fn new(steps: &[Option<Step>], words: usize) -> KeyIndex {
        let mut index = KeyIndex {
            named: vec![0; words],
            descendant: vec![0; words],
            none: vec![0; words],
            ..KeyIndex::default()
        };
        let mut exact = None;
        for (s, step) in steps.iter().enumerate() {
            let Some(step) = step else { continue };
            if step.names.is_empty() || step.names.len() != step.sels.len() {
                continue;
            }
            set(&mut index.named, s);
            if step.descendant {
                set(&mut index.descendant, s);
            }
            for name in &step.names {
                if *exact.get_or_insert(name.exact) != name.exact {
                    // Paths of one policy share `exact_names`; anything else compares names.
                    return KeyIndex::default();
                }
                let key = if name.exact { &name.raw } else { &name.folded };
                // A non-ASCII folded name never equals an ASCII key, and only ASCII keys are
                // looked up when names fold.
                if name.exact || key.is_ascii() {
                    let states = index
                        .by_name
                        .entry(key.as_bytes().into())
                        .or_insert_with(|| vec![0; words]);
                    set(states, s);
                }
            }
        }
        index.exact = exact.unwrap_or(false);
        index
    }

    /// The named states of `parent` worth a lookup for `key`: the states whose step selects
    /// it, or `None` when the caller should compare names itself.
    pub(super) fn lookup(&self, parent: &[u64], key: &str, ascii: bool) -> Option<&[u64]> {
        let waiting: u32 = parent
            .iter()
            .zip(&self.named)
            .map(|(p, n)| (p & n).count_ones())
            .sum();
        if waiting < WORTH_IT {
            return None;
        }
        let found = if self.exact {
            self.by_name.get(key.as_bytes())
        } else {
            if !ascii || key.len() > MAX_KEY {
                return None;
            }
            let mut folded = [0u8; MAX_KEY];
            let folded = folded.get_mut(..key.len())?;
            folded.copy_from_slice(key.as_bytes());
            folded.make_ascii_lowercase();
            self.by_name.get(&*folded)
        };
        Some(found.map_or(&self.none, Vec::as_slice))
    }

    /// The successors in word `w` of the named states in `from`, given the lookup's answer
    /// (a successor past bit 63 is the caller's), and the rest of `from` still to handle.
    pub(super) fn advance_word(&self, w: usize, from: u64, selected: &[u64]) -> (u64, u64) {
        let named = from & self.named.get(w).copied().unwrap_or(0);
        let stay = named & self.descendant.get(w).copied().unwrap_or(0);
        let step = (named & selected.get(w).copied().unwrap_or(0)) << 1;
        (stay | step, from & !named)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RuleGroup, Selector};
    use serde_json::{Value, json};

    /// The nodes the paths select one by one (no index: one state waits at a time) must be the
    /// nodes they select together (several states wait: the index answers).
    fn same_with_index(paths: &[&str], exact: bool, doc: &Value) {
        let sels: Vec<Selector> = paths
            .iter()
            .map(|p| Selector::parse(p, exact).expect("path"))
            .collect();
        let mut alone = Vec::new();
        for s in &sels {
            s.visit_mut(&mut doc.clone(), &mut |loc, _| alone.push(loc.normalized()));
        }
        alone.sort();
        alone.dedup();
        let mut together = Vec::new();
        RuleGroup::new(&[&sels[..]]).visit_mut(&mut doc.clone(), &mut |_, loc, _| {
            together.push(loc.normalized())
        });
        together.sort();
        assert_eq!(together, alone, "{paths:?} exact={exact}");
    }

    #[test]
    fn an_indexed_walk_selects_what_name_comparisons_select() {
        let long = "k".repeat(70);
        let doc = json!({
            "Email": 1, "email": 2, "PHONE": 3, "ſsn": 4, "SSN": 5, "K": 6, "\u{212a}": 7,
            long.to_uppercase(): 8, "other": {"email": 9, "x": [ {"phone": 10} ]},
            "tiers": {"gold": 11, "Gold": 12},
            "ＰＨＯＮＥ": 13, "e\u{200b}mail": 14, "ｓｓｎ": 15,
        });
        let paths = [
            "$.email",
            "$.phone",
            "$.ssn",
            "$.k",
            "$..email",
            "$..phone",
            "$.tiers.gold",
            "$.other['x'][*].phone",
            "$['Email']",
            "$['ｅｍａｉｌ']",
        ];
        let long_path = format!("$.{long}");
        let mut with_long = paths.to_vec();
        with_long.push(&long_path);
        for exact in [false, true] {
            same_with_index(&with_long, exact, &doc);
        }
    }

    #[test]
    fn many_states_across_words_use_the_index_too() {
        let names: Vec<String> = (0..80).map(|i| format!("$.f{i}.v")).collect();
        let paths: Vec<&str> = names.iter().map(String::as_str).collect();
        let doc = json!({"f3": {"v": 1}, "F63": {"v": 2}, "f64": {"V": 3}, "f79": {"w": 4}});
        same_with_index(&paths, false, &doc);
    }
}
