//! Names as people read them (SPEC §2.2): object keys are compared under Unicode compatibility
//! normalisation with case folding, so `SSN`, `ssn`, `ſsn`, full-width `ｓｓｎ` and the NFD and
//! NFC spellings of `pässword` are one name to a rule.
//!
//! The fold is Unicode's compatibility caseless match (D146: NFKD of case-folded NFKD of
//! case-folded NFD), recomposed to NFKC, with default-ignorable format characters (zero-width
//! spaces and joiners, bidi controls, variation selectors, tags) removed as NFKC_Casefold does.
//! An ASCII key folds to its lower case, which costs no allocation when it already is.
//!
//! Filters (`[?@.kind == 'secret']`) are evaluated by jsonpath-rust, which compares names
//! exactly. Unless names are exact, a filter's own names are folded once at load
//! ([`fold_filter`]) and it runs on a folded view of the container ([`run_folded`]): a copy whose
//! keys are folded, made only when some key is not already in folded form. Two keys of one object
//! that fold to one name (`kind` and `KIND`) collide in the view; the filter then runs twice, once
//! with the first and once with the last of them, and selects what either run selects, so a
//! sender cannot pick which spelling the filter sees.

use super::nfa::{addr, run_filter};
use jsonpath_rust::parser::model::{self as ast, JpQuery};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;
use unicase::UniCase;
use unicode_normalization::UnicodeNormalization;

/// The folded form of a name or key (see the module docs).
pub(crate) fn fold_name(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(s.to_ascii_lowercase());
        }
        return Cow::Borrowed(s);
    }
    let nfd: String = s.nfd().filter(|c| !ignorable(*c)).collect();
    let once: String = UniCase::unicode(nfd.as_str())
        .to_folded_case()
        .nfkd()
        .collect();
    let twice = UniCase::unicode(once.as_str()).to_folded_case();
    let folded: String = twice.nfkc().filter(|c| !ignorable(*c)).collect();
    if folded == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(folded)
    }
}

/// Default-ignorable code points that NFKC_Casefold removes: format controls and fillers that
/// render as nothing.
fn ignorable(c: char) -> bool {
    matches!(u32::from(c),
        0xAD | 0x34F | 0x61C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

// ---------------------------------------------------------------------------------------------
// Filter expressions
// ---------------------------------------------------------------------------------------------

/// Folds every name a filter expression mentions (`@.Kind` → `@.kind`); literals are kept.
pub(super) fn fold_filter(filter: &mut ast::Filter) {
    match filter {
        ast::Filter::Or(fs) | ast::Filter::And(fs) => fs.iter_mut().for_each(fold_filter),
        ast::Filter::Atom(atom) => match atom {
            ast::FilterAtom::Filter { expr, .. } => fold_filter(expr),
            ast::FilterAtom::Test { expr, .. } => fold_test(expr),
            ast::FilterAtom::Comparison(cmp) => match cmp.as_mut() {
                ast::Comparison::Eq(a, b)
                | ast::Comparison::Ne(a, b)
                | ast::Comparison::Gt(a, b)
                | ast::Comparison::Gte(a, b)
                | ast::Comparison::Lt(a, b)
                | ast::Comparison::Lte(a, b) => {
                    fold_comparable(a);
                    fold_comparable(b);
                }
            },
        },
    }
}

fn fold_test(test: &mut ast::Test) {
    match test {
        ast::Test::RelQuery(segments) => segments.iter_mut().for_each(fold_segment),
        ast::Test::AbsQuery(query) => fold_query(query),
        ast::Test::Function(func) => fold_function(func),
    }
}

fn fold_query(query: &mut JpQuery) {
    query.segments.iter_mut().for_each(fold_segment);
}

fn fold_comparable(c: &mut ast::Comparable) {
    match c {
        ast::Comparable::Literal(_) => {}
        ast::Comparable::Function(func) => fold_function(func),
        ast::Comparable::SingularQuery(
            ast::SingularQuery::Current(segs) | ast::SingularQuery::Root(segs),
        ) => {
            for seg in segs {
                if let ast::SingularQuerySegment::Name(n) = seg {
                    *n = fold_name(n).into_owned();
                }
            }
        }
    }
}

fn fold_function(func: &mut ast::TestFunction) {
    match func {
        ast::TestFunction::Custom(_, args) => args.iter_mut().for_each(fold_arg),
        ast::TestFunction::Length(arg) => fold_arg(arg),
        ast::TestFunction::Value(arg) | ast::TestFunction::Count(arg) => fold_arg(arg),
        ast::TestFunction::Search(a, b) | ast::TestFunction::Match(a, b) => {
            fold_arg(a);
            fold_arg(b);
        }
    }
}

fn fold_arg(arg: &mut ast::FnArg) {
    match arg {
        ast::FnArg::Literal(_) => {}
        ast::FnArg::Test(test) => fold_test(test),
        ast::FnArg::Filter(filter) => fold_filter(filter),
    }
}

fn fold_segment(segment: &mut ast::Segment) {
    let sel = |s: &mut ast::Selector| match s {
        ast::Selector::Name(n) => *n = fold_name(n).into_owned(),
        ast::Selector::Filter(f) => fold_filter(f),
        _ => {}
    };
    match segment {
        ast::Segment::Descendant(inner) => fold_segment(inner),
        ast::Segment::Selector(s) => sel(s),
        ast::Segment::Selectors(v) => v.iter_mut().for_each(sel),
    }
}

// ---------------------------------------------------------------------------------------------
// Folded views
// ---------------------------------------------------------------------------------------------

/// Runs `query` (its names folded by [`fold_filter`]) on a folded view of `on` and returns the
/// addresses of the nodes of `on` it selects, sorted.
pub(super) fn run_folded(query: &JpQuery, on: &Value) -> Vec<usize> {
    if all_folded(on) {
        return run_filter(query, on);
    }
    let mut out = Vec::new();
    for last_wins in [false, true] {
        let (view, collided) = view_of(on, last_wins);
        let hits = run_filter(query, &view);
        if !hits.is_empty() {
            map_back(on, &view, last_wins, &hits, &mut out);
        }
        if !collided {
            break;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether every key below `v` is already in folded form (the view would be `v` itself).
fn all_folded(v: &Value) -> bool {
    match v {
        Value::Object(map) => map
            .iter()
            .all(|(k, child)| matches!(fold_name(k), Cow::Borrowed(_)) && all_folded(child)),
        Value::Array(items) => items.iter().all(all_folded),
        _ => true,
    }
}

/// A copy of `v` with folded keys; of keys that fold alike, the first (or last) one's member is
/// kept. The flag says whether any keys collided.
fn view_of(v: &Value, last_wins: bool) -> (Value, bool) {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let mut collided = false;
            for (k, child) in map {
                let (child, c) = view_of(child, last_wins);
                collided |= c;
                let key = fold_name(k).into_owned();
                if out.contains_key(&key) {
                    collided = true;
                    if !last_wins {
                        continue;
                    }
                }
                out.insert(key, child);
            }
            (Value::Object(out), collided)
        }
        Value::Array(items) => {
            let mut collided = false;
            let out = items
                .iter()
                .map(|item| {
                    let (item, c) = view_of(item, last_wins);
                    collided |= c;
                    item
                })
                .collect();
            (Value::Array(out), collided)
        }
        other => (other.clone(), false),
    }
}

/// Pushes the address of each node of `orig` whose counterpart in `view` is in `hits`.
fn map_back(orig: &Value, view: &Value, last_wins: bool, hits: &[usize], out: &mut Vec<usize>) {
    if hits.binary_search(&addr(view)).is_ok() {
        out.push(addr(orig));
    }
    match (orig, view) {
        (Value::Object(map), Value::Object(vmap)) => {
            let mut seen: HashSet<String> = HashSet::new();
            let mut pair = |k: &String, child: &Value| {
                let key = fold_name(k);
                if seen.insert(key.clone().into_owned())
                    && let Some(vchild) = vmap.get(key.as_ref())
                {
                    map_back(child, vchild, last_wins, hits, out);
                }
            };
            if last_wins {
                map.iter().rev().for_each(|(k, c)| pair(k, c));
            } else {
                map.iter().for_each(|(k, c)| pair(k, c));
            }
        }
        (Value::Array(items), Value::Array(vitems)) => {
            for (item, vitem) in items.iter().zip(vitems) {
                map_back(item, vitem, last_wins, hits, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_people_read_alike_fold_alike() {
        let ssn = ["SSN", "ssn", "ſsn", "ｓｓｎ", "ＳＳＮ", "s\u{200b}sn"];
        for s in ssn {
            assert_eq!(fold_name(s), "ssn", "{s:?}");
        }
        let nfc = "p\u{e4}ssword";
        let nfd = "pa\u{308}ssword";
        assert_eq!(fold_name(nfc), fold_name(nfd));
        assert_eq!(fold_name("ＰＡＳＳＷＯＲＤ"), "password");
        assert_eq!(fold_name("straße"), "strasse");
        assert_eq!(fold_name("\u{212a}ey"), "key");
        assert_ne!(fold_name("ssn"), fold_name("sn"));
    }

    #[test]
    fn ascii_keys_in_lower_case_are_not_copied() {
        assert!(matches!(fold_name("customer_id"), Cow::Borrowed(_)));
        assert!(matches!(fold_name("customerId"), Cow::Owned(_)));
    }
}
