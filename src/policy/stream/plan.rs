//! Which engine runs a policy, decided once when the policy is compiled.
//!
//! The stream engine decides what a node is from the keys and positions on the way down to it,
//! so it runs a policy only where that is all the tree engine looks at, too. Everything else is
//! assigned to the tree engine, with the reason `customs check` prints:
//! - a filter selector `[?…]` (its result depends on the values around the node);
//! - a negative index or a slice that needs the array's length (known only at its end);
//! - an index or slice in a rule that runs after something may remove array elements (an
//!   allow-list with `unknown_fields: drop`, or an earlier `drop` path that can select
//!   elements): the tree engine sees the positions after the removal;
//! - `mode: monitor` (a dry run on a copy; the stream engine only enforces);
//! - more selector states than the stream automaton holds.

use super::super::file::{Mode, UnknownFields};
use super::super::path::{Selector, Stepper};
use super::super::{Action, Rule};

/// The engine a policy runs on.
#[derive(Debug)]
pub enum Assignment {
    /// The stream engine, with its compiled plan (the tree engine still answers what it
    /// bails on at run time).
    Stream(Box<Plan>),
    /// The tree engine only, and why.
    Tree(String),
}

impl Assignment {
    /// Which engine, and for the tree engine why: what `customs check` prints.
    pub fn describe(&self) -> String {
        match self {
            Assignment::Stream(_) => "the stream engine".to_owned(),
            Assignment::Tree(why) => format!("the tree engine: {why}"),
        }
    }
}

/// What a rule unit does to the nodes it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Removes them (one unit per path of a `drop` rule: each path runs on what the paths
    /// before it left).
    Drop,
    /// mask, replace or hash: a value-level action.
    Value,
    /// redact; `deep` scans everything inside a selected container.
    Redact { deep: bool },
}

/// One unit of the rule automaton: a rule, or one path of a `drop` rule.
#[derive(Debug)]
pub(super) struct Unit {
    /// Index into the policy's rules.
    pub(super) rule: usize,
    pub(super) kind: Kind,
}

/// A policy compiled for the stream engine: three automata stepped side by side.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every `refuse` path: a match anywhere refuses (the stream engine then bails).
    pub(super) refuse: Option<Stepper>,
    /// The allow-list, and what to do outside it.
    pub(super) allow: Option<(Stepper, UnknownFields)>,
    /// The other rules' paths, one unit per entry of `units`.
    pub(super) rules: Option<Stepper>,
    pub(super) units: Vec<Unit>,
    /// `embedded_json: refuse`.
    pub(super) embedded: bool,
}

impl Plan {
    /// A plan that governs nothing: the walk only validates and copies.
    pub(super) fn empty() -> Plan {
        Plan::default()
    }
}

/// Assigns `policy`'s body rules to an engine.
pub fn assign(
    mode: Mode,
    rules: &[Rule],
    allow: Option<(&[Selector], UnknownFields)>,
    embedded: bool,
) -> Assignment {
    match plan(mode, rules, allow, embedded) {
        Ok(plan) => Assignment::Stream(Box::new(plan)),
        Err(why) => Assignment::Tree(why),
    }
}

fn plan(
    mode: Mode,
    rules: &[Rule],
    allow: Option<(&[Selector], UnknownFields)>,
    embedded: bool,
) -> Result<Plan, String> {
    if mode == Mode::Monitor {
        return Err("mode: monitor runs on a copy of the document".to_owned());
    }
    if let Some((sels, _)) = allow {
        paths_streamable("the allow-list", sels)?;
    }
    for rule in rules {
        paths_streamable(&format!("rule '{}'", rule.id), &rule.selectors)?;
    }
    positions_stable(rules, allow)?;
    let too_many =
        |what: &str| format!("{what} need more automaton states than the stream engine holds");
    let refuse: Vec<&[Selector]> = rules
        .iter()
        .filter(|r| matches!(r.action, Action::Refuse))
        .map(|r| &r.selectors[..])
        .collect();
    let refuse = match refuse.is_empty() {
        true => None,
        false => Some(Stepper::new(&refuse).ok_or_else(|| too_many("the refuse rules"))?),
    };
    let allow = match allow {
        Some((sels, unknown)) => {
            let stepper = Stepper::new(&[sels]).ok_or_else(|| too_many("the allow-list paths"))?;
            Some((stepper, unknown))
        }
        None => None,
    };
    let (units, paths) = units(rules);
    let rules = match units.is_empty() {
        true => None,
        false => Some(Stepper::new(&paths).ok_or_else(|| too_many("the rules' paths"))?),
    };
    Ok(Plan {
        refuse,
        allow,
        rules,
        units,
        embedded,
    })
}

/// The rule units in order, and each unit's paths.
fn units(rules: &[Rule]) -> (Vec<Unit>, Vec<&[Selector]>) {
    let mut units = Vec::new();
    let mut paths = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let kind = match &rule.action {
            Action::Refuse => continue,
            Action::Drop => {
                for sel in &rule.selectors {
                    units.push(Unit {
                        rule: i,
                        kind: Kind::Drop,
                    });
                    paths.push(std::slice::from_ref(sel));
                }
                continue;
            }
            Action::Mask(_) | Action::Replace(_) | Action::Hash => Kind::Value,
            Action::Redact { deep, .. } => Kind::Redact { deep: *deep },
        };
        units.push(Unit { rule: i, kind });
        paths.push(&rule.selectors[..]);
    }
    (units, paths)
}

fn paths_streamable(whose: &str, sels: &[Selector]) -> Result<(), String> {
    for sel in sels {
        if let Some(why) = sel.needs_tree() {
            return Err(format!("{whose}: {} has {why}", sel.source()));
        }
    }
    Ok(())
}

/// Refuses index and slice selectors that would read positions after a removal.
fn positions_stable(
    rules: &[Rule],
    allow: Option<(&[Selector], UnknownFields)>,
) -> Result<(), String> {
    let mut remover = match allow {
        Some((_, UnknownFields::Drop)) => Some("the allow-list".to_owned()),
        _ => None,
    };
    for rule in rules {
        if matches!(rule.action, Action::Refuse) {
            continue;
        }
        for sel in &rule.selectors {
            if let Some(by) = &remover
                && sel.uses_positions()
            {
                return Err(format!(
                    "rule '{}': {} selects by position after {by} may remove array elements",
                    rule.id,
                    sel.source()
                ));
            }
            if matches!(rule.action, Action::Drop) && sel.may_select_elements() {
                remover = Some(format!("rule '{}'", rule.id));
            }
        }
    }
    Ok(())
}
