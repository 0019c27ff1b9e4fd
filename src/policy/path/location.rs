//! Where a node is while walking: [`Location`], a chain of borrowed segments that formats as an
//! RFC 9535 normalized path only when asked.

use super::hash::Fx;
use std::fmt;

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
