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

use jsonpath_rust::parser::model::{self as ast, JpQuery};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

mod explain;
mod fold;
mod group;
mod keys;
mod stepper;
#[cfg(test)]
mod tests;

pub(crate) use fold::fold_name;
pub use group::RuleGroup;
pub use stepper::{Accepted, States, Stepper, WORDS};

/// A policy path that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The text is not an RFC 9535 JSONPath. `reason` says what is wrong and how to fix it. It
    /// does not repeat the path, because callers already quote it.
    #[error("{reason}")]
    Syntax { path: String, reason: String },
}

// ---------------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------------

/// One step from a container to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSegment<'a> {
    Key(&'a str),
    Index(usize),
}

/// A node's location while walking. It is a chain of stack frames that borrow the keys, so it
/// allocates only when it is formatted.
#[derive(Clone, Copy)]
pub struct Location<'a> {
    parent: Option<&'a Location<'a>>,
    /// `None` only at the root.
    seg: Option<PathSegment<'a>>,
}

impl Location<'static> {
    /// The document root, `$`.
    pub const fn root() -> Self {
        Location {
            parent: None,
            seg: None,
        }
    }
}

impl<'a> Location<'a> {
    /// The location of member `key` of the object at `self`.
    pub fn key(&'a self, key: &'a str) -> Location<'a> {
        Location {
            parent: Some(self),
            seg: Some(PathSegment::Key(key)),
        }
    }

    /// The location of element `index` of the array at `self`.
    pub fn index(&'a self, index: usize) -> Location<'a> {
        Location {
            parent: Some(self),
            seg: Some(PathSegment::Index(index)),
        }
    }

    pub fn is_root(&self) -> bool {
        self.seg.is_none()
    }

    /// The number of segments below the root (0 for `$`).
    pub fn depth(&self) -> usize {
        std::iter::successors(Some(self), |l| l.parent).count() - 1
    }

    /// The last segment: the member name or the index of this node in its parent.
    pub fn last(&self) -> Option<PathSegment<'a>> {
        self.seg
    }

    /// The segments from the root down to this node.
    pub fn segments(&self) -> Vec<PathSegment<'a>> {
        let mut segs: Vec<_> = std::iter::successors(Some(self), |l| l.parent)
            .filter_map(|l| l.seg)
            .collect();
        segs.reverse();
        segs
    }

    /// RFC 9535 §2.7 normalized path, e.g. `$['incidents'][0]['customer']`.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_path(&mut out, false);
        out
    }

    /// The normalized path with every array index replaced by `[*]`, e.g.
    /// `$['incidents'][*]['secret']`, so one report line covers every element.
    pub fn wildcarded(&self) -> String {
        let mut out = String::new();
        let _ = self.write_path(&mut out, true);
        out
    }

    /// A hash of [`Self::wildcarded`] without building the string, to
    /// deduplicate unknown-field reports cheaply.
    pub fn wildcard_hash(&self) -> u64 {
        let mut h = Fx::default();
        self.hash_wild(&mut h);
        std::hash::Hasher::finish(&h)
    }

    fn hash_wild(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        if let Some(parent) = self.parent {
            parent.hash_wild(h);
        }
        match self.seg {
            None => 0u8.hash(h),
            Some(PathSegment::Key(k)) => (1u8, k).hash(h),
            Some(PathSegment::Index(_)) => 2u8.hash(h),
        }
    }

    fn write_path(&self, out: &mut impl fmt::Write, wild: bool) -> fmt::Result {
        // Recursion is bounded by the document depth, like the walk that built the chain.
        match self.parent {
            Some(parent) => parent.write_path(out, wild)?,
            None => out.write_char('$')?,
        }
        match self.seg {
            None => Ok(()),
            Some(PathSegment::Key(k)) => write_name(out, k),
            Some(PathSegment::Index(_)) if wild => out.write_str("[*]"),
            Some(PathSegment::Index(i)) => write!(out, "[{i}]"),
        }
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_path(f, false)
    }
}

impl fmt::Debug for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_path(f, false)
    }
}

/// `['name']` with the escapes of RFC 9535 §2.7: `'`, `\` and the C0 controls only.
fn write_name(out: &mut impl fmt::Write, name: &str) -> fmt::Result {
    out.write_str("['")?;
    for ch in name.chars() {
        match ch {
            '\'' => out.write_str("\\'")?,
            '\\' => out.write_str("\\\\")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c < ' ' => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_str("']")
}

// ---------------------------------------------------------------------------------------------
// Public selectors
// ---------------------------------------------------------------------------------------------

/// A word-at-a-time multiplicative hash (FxHash's): a few key names per path, where SipHash's
/// setup would dominate. Used to spot repeated paths within one document and to index names.
/// It starts from a per-process random state, so a sender cannot precompute two key names
/// that collide and keep one of them out of `unknown_fields` (or hide a new field from
/// `schema_drift`, which hashes body shapes with it).
pub(crate) struct Fx(u64);

impl Default for Fx {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        Fx(*SEED.get_or_init(|| {
            let mut b = [0u8; 8];
            // Without randomness the hash still works, only predictably.
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        }))
    }
}

impl Fx {
    /// Continues from a hash this process computed (a parent path's).
    pub(crate) fn resume(state: u64) -> Fx {
        Fx(state)
    }

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        // The length keeps "a" apart from "a\0".
        self.add(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One compiled JSONPath.
#[derive(Clone)]
pub struct Selector {
    source: Arc<str>,
    program: Arc<Program>,
    nfa: Arc<Nfa>,
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

    /// True when the path can share a [`RuleGroup`] walk: it has no filter, whose result
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

/// The `body.allow` list: several selectors walked together in one pass.
#[derive(Clone)]
pub struct AllowList {
    selectors: Vec<Selector>,
    nfa: Arc<Nfa>,
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.selectors.iter().map(Selector::source))
            .finish()
    }
}

impl AllowList {
    pub fn new(selectors: Vec<Selector>) -> AllowList {
        let programs: Vec<&Program> = selectors.iter().map(|s| &*s.program).collect();
        let nfa = Arc::new(Nfa::new(&programs));
        AllowList { selectors, nfa }
    }

    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// Walks `doc` once and reports every object member or array element the list does not
    /// admit (SPEC §2.2).
    ///
    /// A node is admitted when a selector matches it. An admitted container keeps only the
    /// members that are admitted too: allowing `$.a` admits `a` itself, not what arrives inside
    /// it (`$.a..*` admits the whole subtree). A container some selector can still match below
    /// is kept as a container and walked, and may end up empty. Any other node is unknown: `f`
    /// is called with its location and the walk does not go into it. A scalar where the list
    /// expects to go deeper is unknown (allow `$.a.b`, doc `{"a":5}`). When `remove` is true,
    /// unknown nodes are removed; when it is false, the document is left untouched. A scalar
    /// root the list does not admit is reported as `$` but never removed. Returns the number of
    /// unknown nodes.
    pub fn prune(&self, doc: &mut Value, remove: bool, f: &mut dyn FnMut(&Location<'_>)) -> usize {
        let nfa = &*self.nfa;
        if !is_container(doc) {
            if nfa.accepts(&nfa.start) {
                return 0;
            }
            f(&Location::root());
            return 1;
        }
        let walk = Walk::new(nfa, doc);
        let mut scratch = walk.scratch();
        let mut on_unknown = Unknown { remove, f };
        walk.prune(
            doc,
            &Location::root(),
            &nfa.start,
            &mut scratch,
            &mut on_unknown,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------------------------

/// A compiled path: one [`Step`] per segment.
#[derive(Debug)]
struct Program {
    steps: Vec<Step>,
    /// The filter selectors, referred to by [`Sel::Filter`] index.
    filters: Vec<FilterInfo>,
    /// The root itself matches as well as whatever the steps reach (only for `everything`).
    match_root: bool,
    exact_names: bool,
}

#[derive(Debug, Clone)]
struct Step {
    /// `..`: apply `sels` to the node and to every descendant.
    descendant: bool,
    /// Several selectors of one bracket. A child matches if any of them selects it.
    sels: Vec<Sel>,
    /// The name selectors of `sels`, tested first without dispatching on the kind: nearly
    /// every step is one name, and this is the walk's innermost loop.
    names: Vec<Name>,
}

impl Step {
    fn new(descendant: bool, sels: Vec<Sel>) -> Step {
        let names = sels
            .iter()
            .filter_map(|sel| match sel {
                Sel::Name(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        Step {
            descendant,
            sels,
            names,
        }
    }

    fn selects(&self, child: &Child<'_>, hits: &Hits<'_>) -> bool {
        match child.key {
            Some(key) if self.names.iter().any(|n| n.matches(key, child)) => return true,
            _ => {}
        }
        self.names.len() < self.sels.len() && self.sels.iter().any(|sel| sel.selects(child, hits))
    }
}

#[derive(Debug, Clone)]
enum Sel {
    Name(Name),
    Wildcard,
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    Filter(usize),
}

/// A name selector with its folded form precomputed.
#[derive(Debug, Clone)]
struct Name {
    raw: String,
    /// [`fold_name`] of `raw`; empty when `exact`.
    folded: String,
    exact: bool,
}

#[derive(Debug, Clone)]
struct FilterInfo {
    /// `$[?…]`: the filter alone, run by jsonpath-rust on one container.
    local: JpQuery,
    /// Set when the filter mentions `$`. It holds the path from the root up to and including
    /// this filter, with names widened to `*`, run on the real root before the walk.
    rooted: Option<JpQuery>,
    /// Names fold: the filter's names are folded and it runs on a folded view.
    folded: bool,
}

impl FilterInfo {
    /// The addresses of the nodes of `on` that `query` (one of ours) selects, sorted.
    fn run(&self, query: &JpQuery, on: &Value) -> Vec<usize> {
        if self.folded {
            fold::run_folded(query, on)
        } else {
            run_filter(query, on)
        }
    }
}

impl Program {
    fn compile(query: &JpQuery, exact_names: bool) -> Result<Program, String> {
        let mut program = Program {
            steps: Vec::new(),
            filters: Vec::new(),
            match_root: false,
            exact_names,
        };
        for (k, segment) in query.segments.iter().enumerate() {
            let (descendant, inner) = match segment {
                ast::Segment::Descendant(inner) => (true, inner.as_ref()),
                other => (false, other),
            };
            let sels = match inner {
                ast::Segment::Selector(sel) => std::slice::from_ref(sel),
                ast::Segment::Selectors(sels) => sels.as_slice(),
                ast::Segment::Descendant(_) => {
                    return Err("'..' must be followed by a name, '*' or a bracket".to_owned());
                }
            };
            let sels = sels
                .iter()
                .map(|sel| program.selector(sel, &query.segments[..k], descendant))
                .collect();
            program.steps.push(Step::new(descendant, sels));
        }
        Ok(program)
    }

    fn selector(&mut self, sel: &ast::Selector, before: &[ast::Segment], desc: bool) -> Sel {
        match sel {
            ast::Selector::Name(name) => Sel::Name(Name::new(name, self.exact_names)),
            ast::Selector::Wildcard => Sel::Wildcard,
            ast::Selector::Index(i) => Sel::Index(*i),
            ast::Selector::Slice(start, end, step) => Sel::Slice {
                start: *start,
                end: *end,
                step: step.unwrap_or(1),
            },
            ast::Selector::Filter(filter) => {
                let info = FilterInfo::new(filter, before, desc, self.exact_names);
                self.filters.push(info);
                Sel::Filter(self.filters.len() - 1)
            }
        }
    }
}

impl Name {
    fn new(raw: &str, exact: bool) -> Name {
        let folded = if exact {
            String::new()
        } else {
            fold_name(raw).into_owned()
        };
        Name {
            raw: raw.to_owned(),
            folded,
            exact,
        }
    }

    /// Does `key`, the key of `child`, match?
    fn matches(&self, key: &str, child: &Child<'_>) -> bool {
        if self.exact {
            key == self.raw
        } else if child.ascii {
            // ASCII only folds to ASCII lower case, so a non-ASCII folded name never equals it.
            key.eq_ignore_ascii_case(&self.folded)
        } else {
            // The slow path, for non-ASCII keys only (rare): fold the key and compare.
            fold_name(key) == self.folded.as_str()
        }
    }
}

impl FilterInfo {
    fn new(filter: &ast::Filter, before: &[ast::Segment], desc: bool, exact: bool) -> FilterInfo {
        let mut filter = filter.clone();
        if !exact {
            fold::fold_filter(&mut filter);
        }
        let own = ast::Segment::Selector(ast::Selector::Filter(filter.clone()));
        let rooted = filter_uses_root(&filter).then(|| {
            let mut segments: Vec<ast::Segment> = before.iter().map(|s| widen(s, exact)).collect();
            segments.push(if desc {
                ast::Segment::Descendant(Box::new(own.clone()))
            } else {
                own.clone()
            });
            JpQuery::new(segments)
        });
        FilterInfo {
            local: JpQuery::new(vec![own]),
            rooted,
            folded: !exact,
        }
    }
}

/// Replaces name selectors with `*` unless names are exact. jsonpath-rust matches names exactly,
/// and the rooted pre-pass must reach every container our case-insensitive walk can reach.
/// Evaluating a filter at extra containers is harmless, because the walk only looks up the
/// children of containers it reaches.
fn widen(segment: &ast::Segment, exact: bool) -> ast::Segment {
    let sel = |s: &ast::Selector| match s {
        ast::Selector::Name(_) if !exact => ast::Selector::Wildcard,
        other => other.clone(),
    };
    match segment {
        ast::Segment::Descendant(inner) => ast::Segment::Descendant(Box::new(widen(inner, exact))),
        ast::Segment::Selector(s) => ast::Segment::Selector(sel(s)),
        ast::Segment::Selectors(v) => ast::Segment::Selectors(v.iter().map(sel).collect()),
    }
}

// Does a filter mention the root `$` anywhere, nested filters and function arguments included?

fn filter_uses_root(filter: &ast::Filter) -> bool {
    match filter {
        ast::Filter::Or(fs) | ast::Filter::And(fs) => fs.iter().any(filter_uses_root),
        ast::Filter::Atom(atom) => match atom {
            ast::FilterAtom::Filter { expr, .. } => filter_uses_root(expr),
            ast::FilterAtom::Test { expr, .. } => test_uses_root(expr),
            ast::FilterAtom::Comparison(cmp) => {
                let (lhs, rhs) = cmp.vals();
                comparable_uses_root(lhs) || comparable_uses_root(rhs)
            }
        },
    }
}

fn test_uses_root(test: &ast::Test) -> bool {
    match test {
        ast::Test::AbsQuery(_) => true,
        ast::Test::RelQuery(segments) => segments.iter().any(segment_uses_root),
        ast::Test::Function(func) => function_uses_root(func),
    }
}

fn comparable_uses_root(c: &ast::Comparable) -> bool {
    match c {
        ast::Comparable::Literal(_) => false,
        ast::Comparable::Function(func) => function_uses_root(func),
        ast::Comparable::SingularQuery(q) => matches!(q, ast::SingularQuery::Root(_)),
    }
}

fn function_uses_root(func: &ast::TestFunction) -> bool {
    match func {
        ast::TestFunction::Custom(_, args) => args.iter().any(arg_uses_root),
        ast::TestFunction::Length(arg) => arg_uses_root(arg),
        ast::TestFunction::Value(arg) | ast::TestFunction::Count(arg) => arg_uses_root(arg),
        ast::TestFunction::Search(a, b) | ast::TestFunction::Match(a, b) => {
            arg_uses_root(a) || arg_uses_root(b)
        }
    }
}

fn arg_uses_root(arg: &ast::FnArg) -> bool {
    match arg {
        ast::FnArg::Literal(_) => false,
        ast::FnArg::Test(test) => test_uses_root(test),
        ast::FnArg::Filter(filter) => filter_uses_root(filter),
    }
}

fn segment_uses_root(segment: &ast::Segment) -> bool {
    let sel = |s: &ast::Selector| matches!(s, ast::Selector::Filter(f) if filter_uses_root(f));
    match segment {
        ast::Segment::Descendant(inner) => segment_uses_root(inner),
        ast::Segment::Selector(s) => sel(s),
        ast::Segment::Selectors(v) => v.iter().any(sel),
    }
}

// ---------------------------------------------------------------------------------------------
// The automaton
// ---------------------------------------------------------------------------------------------

/// Several programs laid out side by side. Program `k` has states `base_k ..= base_k + n_k`.
/// A node in state `s < base_k + n_k` has its children matched against step `s`. A node in
/// state `base_k + n_k` is accepted (matched). The state set of a node is a bitset of
/// `words` u64s.
#[derive(Debug)]
struct Nfa {
    /// The step each state applies to a node's children; `None` for accepting states.
    steps: Vec<Option<Step>>,
    filters: Vec<FilterInfo>,
    start: Vec<u64>,
    accept: Vec<u64>,
    /// The states whose step has a filter without `$`, which is evaluated per container.
    local_filters: Vec<u64>,
    words: usize,
    /// The name-only steps, indexed by name.
    keys: keys::KeyIndex,
}

impl Nfa {
    fn new(programs: &[&Program]) -> Nfa {
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

    fn add(&mut self, program: &Program) {
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
    fn active(&self, states: &[u64]) -> bool {
        states.iter().zip(&self.accept).any(|(s, a)| s & !a != 0)
    }

    fn accepts(&self, states: &[u64]) -> bool {
        intersects(states, &self.accept)
    }

    /// Computes the state set of `child` from the state set of its parent.
    fn advance(&self, parent: &[u64], child: &Child<'_>, hits: &Hits<'_>, into: &mut [u64]) {
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
    fn advance_word(
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
    fn steps_into(&self, s: usize, child: &Child<'_>, hits: &Hits<'_>) -> bool {
        match self.steps.get(s) {
            Some(Some(step)) => step.selects(child, hits),
            _ => false,
        }
    }
}

/// What a selector needs to know about a child.
struct Child<'k> {
    /// The member name, or `None` for an array element.
    key: Option<&'k str>,
    /// The index in the array (or the position in the object).
    pos: usize,
    /// The length of the parent array or object.
    len: usize,
    /// The child's address, to look up filter results.
    addr: usize,
    /// The key is ASCII (checked once here, not once per name compared).
    ascii: bool,
}

impl<'k> Child<'k> {
    fn member(key: &'k str, pos: usize, len: usize, child: &Value) -> Child<'k> {
        Child {
            key: Some(key),
            pos,
            len,
            addr: addr(child),
            ascii: key.is_ascii(),
        }
    }

    fn element(pos: usize, len: usize, child: &Value) -> Child<'k> {
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
    fn selects(&self, child: &Child<'_>, hits: &Hits<'_>) -> bool {
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
struct Hits<'w> {
    /// Per filter slot, for filters that mention `$` (empty for the others).
    rooted: &'w [Vec<usize>],
    /// Per filter slot, for the current container.
    local: Vec<(usize, Vec<usize>)>,
}

impl Hits<'_> {
    fn contains(&self, slot: usize, addr: usize) -> bool {
        let list = match self.local.iter().find(|(s, _)| *s == slot) {
            Some((_, list)) => list.as_slice(),
            None => self.rooted.get(slot).map_or(&[][..], Vec::as_slice),
        };
        list.binary_search(&addr).is_ok()
    }
}

/// Runs a query with jsonpath-rust and returns the addresses of the resulting nodes, sorted.
fn run_filter(query: &JpQuery, on: &Value) -> Vec<usize> {
    let mut addrs: Vec<usize> = match js_path_process(query, on) {
        Ok(refs) => refs.into_iter().map(|r| addr(r.val)).collect(),
        Err(_) => Vec::new(),
    };
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

fn addr(v: &Value) -> usize {
    std::ptr::from_ref(v).addr()
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

// Bitsets of states.

fn set(bits: &mut [u64], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn any(bits: &[u64]) -> bool {
    bits.iter().any(|w| *w != 0)
}

fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn ones(bits: &[u64]) -> Ones<'_> {
    Ones {
        bits,
        word: 0,
        rest: bits.first().copied().unwrap_or(0),
    }
}

/// The indices of the set bits, in increasing order.
struct Ones<'b> {
    bits: &'b [u64],
    word: usize,
    rest: u64,
}

impl Iterator for Ones<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.rest == 0 {
            self.word += 1;
            self.rest = *self.bits.get(self.word)?;
        }
        let bit = self.rest.trailing_zeros() as usize;
        self.rest &= self.rest - 1;
        Some(self.word * 64 + bit)
    }
}

// ---------------------------------------------------------------------------------------------
// Walks
// ---------------------------------------------------------------------------------------------

/// Levels of state bitsets allocated up front; deeper documents allocate more on the way down.
const LEVELS: usize = 130;

/// Called for each child of a container with its location, value and state set, plus the
/// scratch space for the levels below. Returns true to remove the child.
type EachMut<'e> = dyn FnMut(&Location<'_>, &mut Value, &[u64], &mut [u64]) -> bool + 'e;
type Each<'e> = dyn FnMut(&Location<'_>, &Value, &[u64], &mut [u64]) -> ControlFlow<()> + 'e;

/// What `prune` does with an unknown node.
struct Unknown<'f> {
    remove: bool,
    f: &'f mut dyn FnMut(&Location<'_>),
}

/// One walk of one document.
struct Walk<'n> {
    nfa: &'n Nfa,
    /// Results of the filters that mention `$`, computed on the untouched document.
    rooted: Vec<Vec<usize>>,
}

impl<'n> Walk<'n> {
    fn new(nfa: &'n Nfa, doc: &Value) -> Walk<'n> {
        let rooted = nfa
            .filters
            .iter()
            .map(|f| f.rooted.as_ref().map(|q| f.run(q, doc)).unwrap_or_default())
            .collect();
        Walk { nfa, rooted }
    }

    fn scratch(&self) -> Vec<u64> {
        vec![0; self.nfa.words * LEVELS]
    }

    /// Evaluates, on this container, the `$`-free filters of the states it is in.
    fn hits(&self, node: &Value, states: &[u64]) -> Hits<'_> {
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
    fn children_mut(
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
    fn children(
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

    fn visit(
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

    fn find(
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

    fn remove(
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

    fn prune(
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
