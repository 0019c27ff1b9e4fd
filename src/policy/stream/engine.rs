//! The walk: one forward pass over a document's tokens that validates them, steps the plan's
//! automata from each node to its children, acts on the nodes the rules select and writes the
//! result compactly.
//!
//! Each node is reached with three state sets: the refuse rules' (on the document as
//! received), the allow-list's (while the walk is inside what it admits) and the other rules'
//! (`limit` cuts off the units that no longer see the node: those after a `drop` that removed
//! an ancestor, or all of them below a node the allow-list removed). The rules run in file
//! order, each seeing the effects of the ones before it, so at a node the walk applies the
//! actions of the units that select it in unit order; a deep `redact` on a container applies
//! to every value inside it ("covers", counted once per container that changed). A leaf's
//! applications are therefore: per unit, in order, its own match, then the covers of that unit
//! from the nearest container outwards: what the tree engine's rule-by-rule walks do to it.
//!
//! Whatever the walk does not reproduce exactly it leaves to the tree engine ([`Stop::Bail`]):
//! a refusal, a key a `redact` rule would rename, a value-level action on a container, a value
//! replaced by a container that later rules look into.

use super::plan::{Kind, Plan};
use super::scan::{self, Invalid, Span};
use crate::policy::file::UnknownFields;
use crate::policy::path::{Fx, Location, States, WORDS};
use crate::policy::redact::{self, redact_number, redact_str};
use crate::policy::transform::HashKey;
use crate::policy::{Action, Outcome, Policy, Unknowns, embedded};
use serde_json::Value;
use std::borrow::Cow;
use std::hash::Hasher;

/// Why a walk ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The body is not strict JSON.
    Invalid,
    /// The tree engine must answer, for this reason.
    Bail(&'static str),
}

impl From<Invalid> for Stop {
    fn from(_: Invalid) -> Stop {
        Stop::Invalid
    }
}

/// No states.
const NONE: States = [0; WORDS];

/// Most units one node may be selected by before the walk leaves it to the tree engine.
const MAX_ACTS: usize = 16;

/// Objects with more keys than this are checked for duplicates by sorting, not pairwise.
const PAIRWISE_KEYS: usize = 16;

/// How a node is reached.
#[derive(Clone, Copy)]
struct Node<'n> {
    refuse: States,
    /// `None` outside the allow-list's walk (no list, or below a node it did not admit).
    allow: Option<States>,
    rules: States,
    /// Units from this one on do not see the node.
    limit: usize,
    loc: &'n Location<'n>,
    root: bool,
}

/// The units that select a node, up to the first `drop` (which removes it).
#[derive(Clone, Copy)]
struct Acts {
    units: [usize; MAX_ACTS],
    len: usize,
    drop: Option<usize>,
}

impl Acts {
    const NONE: Acts = Acts {
        units: [0; MAX_ACTS],
        len: 0,
        drop: None,
    };

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.units.iter().take(self.len).copied()
    }
}

/// A deep `redact` on an open container, and whether it changed anything inside yet.
#[derive(Debug, Clone, Copy)]
struct Cover {
    unit: usize,
    changed: bool,
}

/// One action to apply to a leaf: its unit's own match, or a cover (index into the covers).
#[derive(Debug, Clone, Copy)]
enum App {
    Direct,
    Cover(usize),
}

/// An open container.
struct Frame {
    acts: Acts,
    covers_base: usize,
    /// The `limit` of its children.
    limit: usize,
    /// Its rule states without the units at or past `limit`.
    base: States,
    /// Units that scan its keys (redact rules whose scope it is in).
    scope: Acts,
}

/// A leaf token.
enum Tok<'t> {
    Str(Span, Cow<'t, str>),
    Num(scan::Number),
    Lit(usize, usize),
}

/// A leaf's value while actions apply to it.
enum Cur {
    /// As received.
    Raw,
    /// A string produced by `redact`.
    Text(String),
    /// Anything else an action produced.
    Val(Value),
}

/// The state of one pass over a body (all its NDJSON lines).
pub(super) struct Walk<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    pub(super) out: Vec<u8>,
    plan: &'a Plan,
    policy: &'a Policy,
    hash_key: Option<&'a HashKey>,
    max_depth: usize,
    /// Values the element budget still allows.
    left: usize,
    outcome: Outcome,
    unknowns: Unknowns,
    covers: Vec<Cover>,
    /// The keys of the open objects: hash and token.
    keys: Vec<(u64, Span)>,
    /// Scratch for a leaf's applications.
    apps: Vec<(usize, App)>,
}

impl<'a> Walk<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        policy: &'a Policy,
        hash_key: Option<&'a HashKey>,
        bounds: crate::json::Bounds,
        size: usize,
    ) -> Walk<'a> {
        Walk {
            text: "",
            b: b"",
            pos: 0,
            out: Vec::with_capacity(size),
            plan,
            policy,
            hash_key,
            max_depth: bounds.depth.min(crate::json::MAX_DEPTH),
            left: bounds.elements,
            outcome: Outcome::default(),
            unknowns: Unknowns::default(),
            covers: Vec::new(),
            keys: Vec::new(),
            apps: Vec::new(),
        }
    }

    /// Walks one document (the whole body, or one NDJSON line), appending it to the output.
    pub(super) fn document(&mut self, text: &'a str) -> Result<Outcome, Stop> {
        self.text = text;
        self.b = text.as_bytes();
        self.pos = scan::skip_ws(self.b, 0);
        self.outcome = Outcome {
            counts: vec![0; self.policy.rules.len()],
            ..Outcome::default()
        };
        self.unknowns = Unknowns::default();
        self.covers.clear();
        self.keys.clear();
        let root = Location::root();
        let container = match self.b.get(self.pos) {
            None => return Err(Stop::Invalid),
            Some(c) => matches!(c, b'{' | b'['),
        };
        let allow = match &self.plan.allow {
            Some((list, _)) if container => Some(list.start()),
            Some((list, unknown)) => {
                // A scalar the list does not admit is reported, never removed.
                if !list.accepts(&list.start()) {
                    self.unknowns.note(&mut self.outcome, &root);
                    if *unknown == UnknownFields::Refuse {
                        return Err(Stop::Bail("unknown_fields: refuse matched"));
                    }
                }
                None
            }
            None => None,
        };
        let node = Node {
            refuse: self.plan.refuse.as_ref().map_or(NONE, |r| r.start()),
            allow,
            rules: self.plan.rules.as_ref().map_or(NONE, |r| r.start()),
            limit: self.plan.units.len(),
            loc: &root,
            root: true,
        };
        self.value(&node, 0)?;
        self.pos = scan::skip_ws(self.b, self.pos);
        if self.pos != self.b.len() {
            return Err(Stop::Invalid);
        }
        Ok(std::mem::take(&mut self.outcome))
    }

    /// Walks the value at the current position; true when a rule removed it.
    fn value(&mut self, n: &Node<'_>, depth: usize) -> Result<bool, Stop> {
        self.left = self.left.checked_sub(1).ok_or(Stop::Invalid)?;
        if let Some(refuse) = &self.plan.refuse
            && refuse.accepts(&n.refuse)
        {
            return Err(Stop::Bail("a refuse rule matched"));
        }
        match self.b.get(self.pos) {
            Some(b'{') => self.object(n, depth),
            Some(b'[') => self.array(n, depth),
            Some(_) => self.leaf(n),
            None => Err(Stop::Invalid),
        }
    }

    /// The units that select `n`, up to the first `drop` (never at the root, which no rule
    /// removes).
    fn acts(&self, n: &Node<'_>) -> Result<Acts, Stop> {
        let mut acts = Acts::NONE;
        let Some(rules) = &self.plan.rules else {
            return Ok(acts);
        };
        if !rules.accepts(&n.rules) {
            return Ok(acts);
        }
        for u in rules.accepted(&n.rules) {
            match self.plan.units.get(u).map(|u| u.kind) {
                Some(Kind::Drop) if n.root => {}
                Some(Kind::Drop) => {
                    acts.drop = Some(u);
                    break;
                }
                _ => {
                    *acts
                        .units
                        .get_mut(acts.len)
                        .ok_or(Stop::Bail("too many rules select one node"))? = u;
                    acts.len += 1;
                }
            }
        }
        Ok(acts)
    }

    fn object(&mut self, n: &Node<'_>, depth: usize) -> Result<bool, Stop> {
        if depth >= self.max_depth {
            return Err(Stop::Invalid);
        }
        let frame = self.enter(n, true)?;
        self.out.push(b'{');
        self.pos = scan::skip_ws(self.b, self.pos + 1);
        let keys_base = self.keys.len();
        let mut first = true;
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            let mut idx = 0;
            loop {
                if self.b.get(self.pos) != Some(&b'"') {
                    return Err(Stop::Invalid);
                }
                let span = scan::string(self.b, self.pos)?;
                let key = span.decode(self.text)?;
                // Raw control characters are outside the grammar; escaped ones in keys are
                // refused too (json.rs).
                if span.escaped && key.bytes().any(|c| c < 0x20) {
                    return Err(Stop::Invalid);
                }
                self.keys.push((key_hash(&key), span));
                self.pos = scan::skip_ws(self.b, span.end);
                if self.b.get(self.pos) != Some(&b':') {
                    return Err(Stop::Invalid);
                }
                self.pos = scan::skip_ws(self.b, self.pos + 1);
                self.member(&frame, n, Some((&key, span)), idx, depth, &mut first)?;
                idx += 1;
                if self.close(b'}')? {
                    break;
                }
            }
        }
        self.out.push(b'}');
        if self.duplicate(keys_base)? {
            return Err(Stop::Invalid);
        }
        self.keys.truncate(keys_base);
        Ok(self.leave(frame))
    }

    fn array(&mut self, n: &Node<'_>, depth: usize) -> Result<bool, Stop> {
        if depth >= self.max_depth {
            return Err(Stop::Invalid);
        }
        let frame = self.enter(n, false)?;
        self.out.push(b'[');
        self.pos = scan::skip_ws(self.b, self.pos + 1);
        let mut first = true;
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            let mut idx = 0;
            loop {
                self.member(&frame, n, None, idx, depth, &mut first)?;
                idx += 1;
                if self.close(b']')? {
                    break;
                }
            }
        }
        self.out.push(b']');
        Ok(self.leave(frame))
    }

    /// After a member: true at the container's end `end`, false after a comma.
    fn close(&mut self, end: u8) -> Result<bool, Stop> {
        self.pos = scan::skip_ws(self.b, self.pos);
        match self.b.get(self.pos) {
            Some(b',') => {
                self.pos = scan::skip_ws(self.b, self.pos + 1);
                Ok(false)
            }
            Some(c) if *c == end => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Stop::Invalid),
        }
    }

    /// Opens a container: the units that select it, the covers it starts, what its children
    /// see.
    fn enter(&mut self, n: &Node<'_>, object: bool) -> Result<Frame, Stop> {
        let acts = self.acts(n)?;
        let covers_base = self.covers.len();
        for u in acts.iter() {
            match self.plan.units.get(u).map(|u| u.kind) {
                Some(Kind::Value) => {
                    return Err(Stop::Bail(
                        "a mask, replace or hash rule selects an object or array",
                    ));
                }
                Some(Kind::Redact { deep: true }) => self.covers.push(Cover {
                    unit: u,
                    changed: false,
                }),
                _ => {}
            }
        }
        let limit = acts.drop.unwrap_or(n.limit);
        let base = match &self.plan.rules {
            Some(rules) => rules.before(&n.rules, limit),
            None => NONE,
        };
        let scope = if object {
            self.key_scope(&acts, covers_base, limit)?
        } else {
            Acts::NONE
        };
        Ok(Frame {
            acts,
            covers_base,
            limit,
            base,
            scope,
        })
    }

    /// The redact units whose scope an object's keys are in: those that select it, and the
    /// covers of its ancestors (each unit once).
    fn key_scope(&self, acts: &Acts, covers_base: usize, limit: usize) -> Result<Acts, Stop> {
        let mut scope = Acts::NONE;
        let covering = self.covers[..covers_base]
            .iter()
            .map(|c| c.unit)
            .filter(|u| *u < limit);
        let redacting = acts.iter().filter(|u| {
            matches!(
                self.plan.units.get(*u).map(|u| u.kind),
                Some(Kind::Redact { .. })
            )
        });
        for u in redacting.chain(covering) {
            if scope.iter().any(|s| s == u) {
                continue;
            }
            *scope
                .units
                .get_mut(scope.len)
                .ok_or(Stop::Bail("too many redact rules cover one object"))? = u;
            scope.len += 1;
        }
        Ok(scope)
    }

    /// Closes a container: counts the covers it started that changed something, and its
    /// removal. True when a rule removed it.
    fn leave(&mut self, frame: Frame) -> bool {
        for cover in self.covers.drain(frame.covers_base..) {
            if cover.changed
                && let Some(unit) = self.plan.units.get(cover.unit)
                && let Some(count) = self.outcome.counts.get_mut(unit.rule)
            {
                *count += 1;
            }
        }
        match frame.acts.drop {
            Some(d) => {
                self.count(d);
                true
            }
            None => false,
        }
    }

    fn count(&mut self, unit: usize) {
        if let Some(unit) = self.plan.units.get(unit)
            && let Some(count) = self.outcome.counts.get_mut(unit.rule)
        {
            *count += 1;
        }
    }

    /// Walks one member (`key`) or element of the container `n`, writing it unless it is
    /// removed.
    fn member(
        &mut self,
        frame: &Frame,
        n: &Node<'_>,
        key: Option<(&str, Span)>,
        idx: usize,
        depth: usize,
        first: &mut bool,
    ) -> Result<(), Stop> {
        let name = key.map(|(k, _)| k);
        let loc = match name {
            Some(k) => n.loc.key(k),
            None => n.loc.index(idx),
        };
        let refuse = match &self.plan.refuse {
            Some(r) => r.step(&n.refuse, name, idx),
            None => NONE,
        };
        let container = matches!(self.b.get(self.pos), Some(b'{' | b'['));
        let (allow, removed) = self.classify(n.allow.as_ref(), name, idx, container, &loc)?;
        let mark = self.out.len();
        let (rules, limit) = if removed {
            (NONE, 0)
        } else {
            if let Some(k) = name {
                self.scan_key(&frame.scope, k)?;
            }
            let rules = match &self.plan.rules {
                Some(r) => r.step(&frame.base, name, idx),
                None => NONE,
            };
            if !*first {
                self.out.push(b',');
            }
            if let Some((k, span)) = key {
                self.write_str(k, Some(span))?;
                self.out.push(b':');
            }
            (rules, frame.limit)
        };
        let child = Node {
            refuse,
            allow,
            rules,
            limit,
            loc: &loc,
            root: false,
        };
        let dropped = self.value(&child, depth + 1)?;
        if removed || dropped {
            self.out.truncate(mark);
        } else {
            *first = false;
        }
        Ok(())
    }

    /// The allow-list's verdict on a child: its allow states (when the list's walk goes on
    /// below it), and whether it is removed (`SPEC §2.2`, as `AllowList::prune`).
    fn classify(
        &mut self,
        parent: Option<&States>,
        name: Option<&str>,
        idx: usize,
        container: bool,
        loc: &Location<'_>,
    ) -> Result<(Option<States>, bool), Stop> {
        let (Some(parent), Some((list, unknown))) = (parent, &self.plan.allow) else {
            return Ok((None, false));
        };
        let states = list.step(parent, name, idx);
        if container && states.iter().any(|w| *w != 0) {
            return Ok((Some(states), false));
        }
        if list.accepts(&states) {
            return Ok((None, false));
        }
        self.unknowns.note(&mut self.outcome, loc);
        match unknown {
            UnknownFields::Refuse => Err(Stop::Bail("unknown_fields: refuse matched")),
            UnknownFields::Drop => Ok((None, true)),
            UnknownFields::Pass => Ok((None, false)),
        }
    }

    /// Bails when a redact unit in scope finds something in a key: the tree engine renames it.
    fn scan_key(&self, scope: &Acts, key: &str) -> Result<(), Stop> {
        for u in scope.iter() {
            if let Some(Action::Redact { redactor, .. }) = self.action(u)
                && redact_str(redactor, key).is_some()
            {
                return Err(Stop::Bail("a redact rule renames a key"));
            }
        }
        Ok(())
    }

    fn action(&self, unit: usize) -> Option<&'a Action> {
        let unit = self.plan.units.get(unit)?;
        self.policy.rules.get(unit.rule).map(|r| &r.action)
    }

    fn leaf(&mut self, n: &Node<'_>) -> Result<bool, Stop> {
        let tok = self.token()?;
        if self.plan.embedded
            && let Tok::Str(_, s) = &tok
            && embedded::holds_json(s)
        {
            return Err(Stop::Bail("embedded_json: refuse matched"));
        }
        let acts = self.acts(n)?;
        let limit = acts.drop.unwrap_or(n.limit);
        self.apps.clear();
        for u in acts.iter() {
            self.apps.push((u, App::Direct));
        }
        for (i, cover) in self.covers.iter().enumerate().rev() {
            if cover.unit < limit {
                self.apps.push((cover.unit, App::Cover(i)));
            }
        }
        let cur = if self.apps.is_empty() {
            Cur::Raw
        } else {
            // Stable: per unit, its own match first, then its covers from the nearest out.
            self.apps.sort_by_key(|(u, _)| *u);
            self.apply(n, &tok, limit)?
        };
        self.write_leaf(&cur, &tok)?;
        match acts.drop {
            Some(d) => {
                self.count(d);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Applies the leaf's applications (in `self.apps`) in order.
    fn apply(&mut self, n: &Node<'_>, tok: &Tok<'a>, limit: usize) -> Result<Cur, Stop> {
        let mut cur = Cur::Raw;
        for k in 0..self.apps.len() {
            let (u, app) = self.apps[k];
            let Some(action) = self.action(u) else {
                continue;
            };
            match (action, app) {
                (Action::Redact { redactor, deep }, _) => {
                    let deep = matches!(app, App::Cover(_)) || *deep;
                    if self.redact(&mut cur, redactor, deep, tok) {
                        match app {
                            App::Direct => self.count(u),
                            App::Cover(i) => {
                                if let Some(c) = self.covers.get_mut(i) {
                                    c.changed = true;
                                }
                            }
                        }
                    }
                }
                (action, App::Direct) => {
                    let mut value = self.value_of(std::mem::replace(&mut cur, Cur::Raw), tok)?;
                    if action.apply_to(&mut value, self.hash_key) {
                        self.count(u);
                    }
                    let container = matches!(value, Value::Object(_) | Value::Array(_));
                    if container
                        && let Some(rules) = &self.plan.rules
                        && rules.active_after(&n.rules, u, limit)
                    {
                        return Err(Stop::Bail(
                            "a value replaced by a container later rules read",
                        ));
                    }
                    cur = Cur::Val(value);
                }
                (_, App::Cover(_)) => {}
            }
        }
        Ok(cur)
    }

    /// One `redact` on a leaf's current value; true when it changed.
    fn redact(
        &self,
        cur: &mut Cur,
        redactor: &crate::policy::detect::Redactor,
        deep: bool,
        tok: &Tok<'a>,
    ) -> bool {
        let text = match cur {
            Cur::Raw => match tok {
                Tok::Str(_, s) => redact_str(redactor, s),
                Tok::Num(num) => redact_number(redactor, &num.text(self.text)),
                Tok::Lit(..) => None,
            },
            Cur::Text(s) => redact_str(redactor, s),
            Cur::Val(v) => return redact::redact(redactor, v, deep),
        };
        match text {
            Some(text) => {
                *cur = Cur::Text(text);
                true
            }
            None => false,
        }
    }

    /// A leaf's current value as a `Value`, for the actions that take one.
    fn value_of(&self, cur: Cur, tok: &Tok<'a>) -> Result<Value, Stop> {
        Ok(match cur {
            Cur::Text(s) => Value::String(s),
            Cur::Val(v) => v,
            Cur::Raw => match tok {
                Tok::Str(_, s) => Value::String(s.clone().into_owned()),
                Tok::Num(num) => Value::Number(
                    num.text(self.text)
                        .parse()
                        .map_err(|_| Stop::Bail("a number serde_json does not read back"))?,
                ),
                Tok::Lit(start, _) => match self.b.get(*start) {
                    Some(b't') => Value::Bool(true),
                    Some(b'f') => Value::Bool(false),
                    _ => Value::Null,
                },
            },
        })
    }

    /// Reads the leaf token at the current position.
    fn token(&mut self) -> Result<Tok<'a>, Stop> {
        let text: &'a str = self.text;
        let tok = match self.b.get(self.pos) {
            Some(b'"') => {
                let span = scan::string(self.b, self.pos)?;
                self.pos = span.end;
                Tok::Str(span, span.decode(text)?)
            }
            Some(b'-' | b'0'..=b'9') => {
                let num = scan::number(self.b, self.pos)?;
                self.pos = num.end;
                Tok::Num(num)
            }
            _ => {
                let start = self.pos;
                self.pos = scan::literal(self.b, start)?;
                Tok::Lit(start, self.pos)
            }
        };
        Ok(tok)
    }

    fn write_leaf(&mut self, cur: &Cur, tok: &Tok<'a>) -> Result<(), Stop> {
        match (cur, tok) {
            (Cur::Raw, Tok::Str(span, s)) => self.write_str(s, Some(*span)),
            (Cur::Raw, Tok::Num(num)) => {
                self.out.extend_from_slice(num.text(self.text).as_bytes());
                Ok(())
            }
            (Cur::Raw, Tok::Lit(start, end)) => {
                self.out
                    .extend_from_slice(self.b.get(*start..*end).unwrap_or_default());
                Ok(())
            }
            (Cur::Text(s), _) => self.write_str(s, None),
            (Cur::Val(v), _) => serde_json::to_writer(&mut self.out, v)
                .map_err(|_| Stop::Bail("a value serde_json cannot write")),
        }
    }

    /// Writes a string as serde_json does: its token as received when it has no escapes (the
    /// same bytes), else re-escaped.
    fn write_str(&mut self, s: &str, token: Option<Span>) -> Result<(), Stop> {
        match token {
            Some(span) if !span.escaped => {
                self.out.extend_from_slice(span.raw(self.text).as_bytes());
                Ok(())
            }
            _ => serde_json::to_writer(&mut self.out, s)
                .map_err(|_| Stop::Bail("a string serde_json cannot write")),
        }
    }

    /// Whether the object whose keys start at `base` in `self.keys` has a key twice.
    fn duplicate(&self, base: usize) -> Result<bool, Stop> {
        let keys = self.keys.get(base..).unwrap_or_default();
        let same = |a: usize, b: usize| -> Result<bool, Stop> {
            match (keys.get(a), keys.get(b)) {
                (Some((ha, sa)), Some((hb, sb))) if ha == hb => {
                    Ok(sa.decode(self.text)? == sb.decode(self.text)?)
                }
                _ => Ok(false),
            }
        };
        if keys.len() <= PAIRWISE_KEYS {
            for i in 1..keys.len() {
                for j in 0..i {
                    if same(i, j)? {
                        return Ok(true);
                    }
                }
            }
            return Ok(false);
        }
        let mut order: Vec<(u64, usize)> = keys.iter().enumerate().map(|(i, k)| (k.0, i)).collect();
        order.sort_unstable();
        // Keys of one hash are compared with each other (a run of more than two is a
        // collision, or several copies of one key).
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            for (i, a) in run.iter().enumerate() {
                for b in &run[..i] {
                    if same(a.1, b.1)? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

fn key_hash(key: &str) -> u64 {
    let mut h = Fx::default();
    h.write(key.as_bytes());
    h.finish()
}
