//! Generators shared by the property tests: documents with planted personal data, written
//! canonically or with noise (whitespace, escapes, duplicate keys), and policies written as
//! YAML text for the real loader.
#![allow(dead_code)]

pub mod policy;

use proptest::prelude::*;

/// Values the default `redact` detectors must catch wherever they appear.
pub const PLANTED: [&str; 6] = [
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "078-05-1120",
    "alice.smith@example.com",
    "４１１１１１１１１１１１１１１１",
    "bob%40example.org",
];

/// More text of the kinds the detectors know, and near misses they must leave alone.
pub const PII: [&str; 16] = [
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "+1 415 555 2671",
    "(415) 555-2671",
    "192.168.10.254",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "AKIAIOSFODNN7EXAMPLE",
    "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
    "al\u{200b}ice@example.com",
    "4111 1111 1111 1112",
    "000-12-3456",
    "GB82 WEST 1234 5698 7654 33",
    "T-123 and T-9",
    "1.2.3",
    "{\"password\":\"x\",\"ssn\":\"078-05-1120\"}",
    "[1,2]",
];

/// The card 4111111111111111 as a JSON number, in the notations a sender may pick.
pub const CARD_NUMBERS: [&str; 4] = [
    "4111111111111111",
    "4111111111111111.0",
    "4.111111111111111e15",
    "41111111111111110e-1",
];

/// Number texts of every shape the grammar allows (all within an f64's range).
const NUMBERS: [&str; 18] = [
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "1.10",
    "-0.0",
    "1e2",
    "1E2",
    "1e+2",
    "1E-2",
    "0.5e-10",
    "1e-400",
    "1.7976931348623157e308",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
];

/// Numbers that overflow an f64: every engine must refuse a body that holds one.
const OVERFLOWING: [&str; 3] = ["1E400", "-1e400", "1e309"];

/// A planted value, alone or inside some text.
pub fn planted_string() -> impl Strategy<Value = String> {
    (0..PLANTED.len(), "[a-z ]{0,12}", "[a-z ]{0,12}")
        .prop_map(|(i, pre, post)| format!("{pre} {} {post}", PLANTED[i]))
}

/// Any entry of `pool`.
fn one_of(pool: &'static [&'static str]) -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(pool)
}

/// A document tree that keeps what a `serde_json::Value` loses: number text as written and
/// repeated keys.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    /// The number's text, written as is.
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

/// Object keys: the names policies use and their case, compatibility and canonical-equivalence
/// variants, keys that need escaping, and personal data (keys are payload data too).
pub const KEYS: [&str; 36] = [
    "ssn",
    "SSN",
    "Ssn",
    "ſsn",
    "ｓｓｎ",
    "email",
    "EMAIL",
    "card_number",
    "CARD_NUMBER",
    "ｃａｒｄ_ｎｕｍｂｅｒ",
    "password",
    "PassWord",
    "name",
    "id",
    "ID",
    "items",
    "meta",
    "note",
    "data",
    "user",
    "caf\u{e9}",
    "cafe\u{301}",
    "file",
    "ﬁle",
    "K",
    "\u{212a}",
    "a\"b",
    "a\\b",
    "a/b",
    "",
    "😀",
    "$serde_json::private::Number",
    "$serde_json::private::RawValue",
    "alice.smith@example.com",
    "4111 1111 1111 1111",
    "078-05-1120",
];

/// A key with a control character: customs refuses the body.
const CONTROL_KEY: &str = "bad\u{1}key";

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        180 => one_of(&KEYS).prop_map(str::to_string),
        18 => "[a-z]{1,6}",
        1 => Just(CONTROL_KEY.to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,/-]{0,16}",
        3 => planted_string(),
        3 => (one_of(&PII), "[a-z ]{0,6}").prop_map(|(p, pre)| format!("{pre}{p}")),
        2 => "[\\x00-\\x1f\"\\\\/é߿ࠀ\u{fffd}😀\u{200b}a ]{0,8}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => one_of(&NUMBERS).prop_map(str::to_string),
        9 => one_of(&CARD_NUMBERS).prop_map(str::to_string),
        9 => any::<i64>().prop_map(|n| n.to_string()),
        9 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        1 => one_of(&OVERFLOWING).prop_map(str::to_string),
        // 310 digits and no exponent: overflows too.
        1 => Just(format!("1{}", "0".repeat(309))),
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        1 => Just(Node::Null),
        1 => any::<bool>().prop_map(Node::Bool),
        3 => number().prop_map(Node::Num),
        6 => text().prop_map(Node::Str),
    ]
}

/// Objects and arrays nested up to depth 6. Keys of one object are distinct as written (a
/// repeated key is added by the noisy writer, [`Style`]).
pub fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Node::Arr),
            prop::collection::vec((key(), inner), 0..5).prop_map(|mut members| {
                let mut seen = std::collections::HashSet::new();
                members.retain(|(k, _)| seen.insert(k.clone()));
                Node::Obj(members)
            }),
        ]
    })
}

/// A document whose top level is mostly an object, as API payloads are.
pub fn document() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => prop::collection::vec((key(), node()), 0..6).prop_map(|mut members| {
            let mut seen = std::collections::HashSet::new();
            members.retain(|(k, _)| seen.insert(k.clone()));
            Node::Obj(members)
        }),
        1 => node(),
    ]
}

/// How a document is written. `noise: None` writes it canonically, as `serde_json::to_vec`
/// of the same value would; a seed adds whitespace, escapes and, rarely, a repeated key.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub noise: Option<u64>,
    /// No line feed inside a document (NDJSON).
    pub one_line: bool,
}

impl Node {
    /// The document's bytes in `style`.
    pub fn write(&self, style: Style) -> Vec<u8> {
        let mut w = Writer {
            out: Vec::new(),
            rng: style.noise.map(Rng),
            one_line: style.one_line,
        };
        w.node(self);
        w.out
    }
}

/// splitmix64: the noise decisions, reproducible from the case's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

struct Writer {
    out: Vec<u8>,
    rng: Option<Rng>,
    one_line: bool,
}

impl Writer {
    fn node(&mut self, node: &Node) {
        self.ws();
        match node {
            Node::Null => self.out.extend_from_slice(b"null"),
            Node::Bool(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Node::Num(text) => self.out.extend_from_slice(text.as_bytes()),
            Node::Str(s) => self.string(s),
            Node::Arr(items) => {
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    self.comma(i);
                    self.node(item);
                }
                self.ws();
                self.out.push(b']');
            }
            Node::Obj(members) => {
                self.out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    self.member(i, k, v);
                }
                let repeat = self.rng.as_mut().is_some_and(|r| r.one_in(40));
                if let (true, Some((k, v))) = (repeat, members.first()) {
                    self.member(members.len(), k, v);
                }
                self.ws();
                self.out.push(b'}');
            }
        }
        self.ws();
    }

    fn member(&mut self, i: usize, key: &str, value: &Node) {
        self.comma(i);
        self.ws();
        self.string(key);
        self.ws();
        self.out.push(b':');
        self.node(value);
    }

    fn comma(&mut self, i: usize) {
        if i > 0 {
            self.out.push(b',');
        }
    }

    /// Insignificant whitespace, sometimes, when noisy.
    fn ws(&mut self) {
        let Some(rng) = self.rng.as_mut() else {
            return;
        };
        if !rng.one_in(4) {
            return;
        }
        let pool: &[u8] = if self.one_line { b" \t\r" } else { b" \t\r\n" };
        for _ in 0..=rng.next() % 3 {
            self.out
                .push(pool[(rng.next() % pool.len() as u64) as usize]);
        }
    }

    fn string(&mut self, s: &str) {
        let Some(rng) = self.rng.as_mut() else {
            let quoted = serde_json::to_string(s).expect("a string serialises");
            self.out.extend_from_slice(quoted.as_bytes());
            return;
        };
        self.out.push(b'"');
        for c in s.chars() {
            escape(&mut self.out, c, rng);
        }
        self.out.push(b'"');
    }
}

/// One character of a string, escaped the way some sender might.
fn escape(out: &mut Vec<u8>, c: char, rng: &mut Rng) {
    let short = match c {
        '"' => Some('"'),
        '\\' => Some('\\'),
        '/' if rng.one_in(2) => Some('/'),
        '\u{8}' => Some('b'),
        '\u{c}' => Some('f'),
        '\n' => Some('n'),
        '\r' => Some('r'),
        '\t' => Some('t'),
        _ => None,
    };
    if let Some(e) = short
        && (matches!(c, '"' | '\\' | '/') || rng.one_in(2))
    {
        out.extend_from_slice(format!("\\{e}").as_bytes());
    } else if short.is_some() || c < ' ' || rng.one_in(6) {
        let upper = rng.one_in(2);
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            let hex = if upper {
                format!("\\u{unit:04X}")
            } else {
                format!("\\u{unit:04x}")
            };
            out.extend_from_slice(hex.as_bytes());
        }
    } else {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

/// A change that usually makes a body invalid: both engines must still agree.
#[derive(Debug, Clone, Copy)]
pub enum Mutation {
    /// Cut the body at this fraction (of 65,536) of its length.
    Truncate(u16),
    /// Insert bytes at this fraction of its length.
    Insert(u16, &'static [u8]),
}

impl Mutation {
    pub fn apply(self, bytes: &mut Vec<u8>) {
        let at = |frac: u16, len: usize| len * usize::from(frac) / 65_536;
        match self {
            Mutation::Truncate(frac) => bytes.truncate(at(frac, bytes.len())),
            Mutation::Insert(frac, text) => {
                let at = at(frac, bytes.len());
                bytes.splice(at..at, text.iter().copied());
            }
        }
    }
}

/// Bytes that break JSON in interesting places (or, inside strings, do not): grammar,
/// control characters, invalid UTF-8 (a lone lead byte, an encoded surrogate, an overlong
/// slash), lone surrogate escapes, a byte order mark, a repeated member.
const INSERTED: [&[u8]; 20] = [
    b"\"",
    b",",
    b"}",
    b"]",
    b"\\",
    b":",
    b"0",
    b" ",
    b"\x00",
    b"\x1f",
    b"\xc3",
    b"\xff",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\\ud800",
    b"\\uDC00",
    b"\\u0000",
    b"\xef\xbb\xbf",
    b"\"\":1,\"\":2,",
    b"1e400",
];

pub fn mutation() -> impl Strategy<Value = Option<Mutation>> {
    prop_oneof![
        12 => Just(None),
        1 => any::<u16>().prop_map(|f| Some(Mutation::Truncate(f))),
        2 => (any::<u16>(), prop::sample::select(&INSERTED[..]))
            .prop_map(|(f, b)| Some(Mutation::Insert(f, b))),
    ]
}
