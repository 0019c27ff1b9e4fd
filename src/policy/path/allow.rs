//! [`AllowList`]: the `body.allow` selectors walked together, reporting what they do not admit.

use super::location::Location;
use super::nfa::{Nfa, is_container};
use super::program::Program;
use super::selector::Selector;
use super::walk::{Unknown, Walk};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// The `body.allow` list: several selectors walked together in one pass.
#[derive(Clone)]
pub struct AllowList {
    pub(super) selectors: Vec<Selector>,
    pub(super) nfa: Arc<Nfa>,
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
