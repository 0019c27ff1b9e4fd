//! The compiled form of one path: a [`Program`] of one [`Step`] per segment, its selectors, and
//! the filters jsonpath-rust evaluates (with the check for filters that mention `$`).

use super::fold::{self, fold_name};
use super::nfa::{Child, Hits, run_filter};
use jsonpath_rust::parser::model::{self as ast, JpQuery};
use serde_json::Value;

/// A compiled path: one [`Step`] per segment.
#[derive(Debug)]
pub(super) struct Program {
    pub(super) steps: Vec<Step>,
    /// The filter selectors, referred to by [`Sel::Filter`] index.
    pub(super) filters: Vec<FilterInfo>,
    /// The root itself matches as well as whatever the steps reach (only for `everything`).
    pub(super) match_root: bool,
    pub(super) exact_names: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Step {
    /// `..`: apply `sels` to the node and to every descendant.
    pub(super) descendant: bool,
    /// Several selectors of one bracket. A child matches if any of them selects it.
    pub(super) sels: Vec<Sel>,
    /// The name selectors of `sels`, tested first without dispatching on the kind: nearly
    /// every step is one name, and this is the walk's innermost loop.
    pub(super) names: Vec<Name>,
}

impl Step {
    pub(super) fn new(descendant: bool, sels: Vec<Sel>) -> Step {
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

    pub(super) fn selects(&self, child: &Child<'_>, hits: &Hits<'_>) -> bool {
        match child.key {
            Some(key) if self.names.iter().any(|n| n.matches(key, child)) => return true,
            _ => {}
        }
        self.names.len() < self.sels.len() && self.sels.iter().any(|sel| sel.selects(child, hits))
    }
}

#[derive(Debug, Clone)]
pub(super) enum Sel {
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
pub(super) struct Name {
    pub(super) raw: String,
    /// [`fold_name`] of `raw`; empty when `exact`.
    pub(super) folded: String,
    pub(super) exact: bool,
}

#[derive(Debug, Clone)]
pub(super) struct FilterInfo {
    /// `$[?…]`: the filter alone, run by jsonpath-rust on one container.
    pub(super) local: JpQuery,
    /// Set when the filter mentions `$`. It holds the path from the root up to and including
    /// this filter, with names widened to `*`, run on the real root before the walk.
    pub(super) rooted: Option<JpQuery>,
    /// Names fold: the filter's names are folded and it runs on a folded view.
    pub(super) folded: bool,
}

impl FilterInfo {
    /// The addresses of the nodes of `on` that `query` (one of ours) selects, sorted.
    pub(super) fn run(&self, query: &JpQuery, on: &Value) -> Vec<usize> {
        if self.folded {
            fold::run_folded(query, on)
        } else {
            run_filter(query, on)
        }
    }
}

impl Program {
    pub(super) fn compile(query: &JpQuery, exact_names: bool) -> Result<Program, String> {
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

    pub(super) fn selector(
        &mut self,
        sel: &ast::Selector,
        before: &[ast::Segment],
        desc: bool,
    ) -> Sel {
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
    pub(super) fn new(raw: &str, exact: bool) -> Name {
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
    pub(super) fn matches(&self, key: &str, child: &Child<'_>) -> bool {
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
    pub(super) fn new(
        filter: &ast::Filter,
        before: &[ast::Segment],
        desc: bool,
        exact: bool,
    ) -> FilterInfo {
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
