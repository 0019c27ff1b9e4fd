//! Strict JSON parsing.
//!
//! The proxy refuses any body it cannot parse unambiguously (SPEC §2.2, last
//! bullet): a document another parser could read differently must never be
//! forwarded. On top of serde_json's RFC 8259 grammar this module rejects
//! duplicate object keys at any depth (serde_json keeps the last value, other
//! parsers the first), control characters in keys (C-backed upstreams may
//! truncate at NUL), nesting deeper than a limit, and numbers that overflow
//! an IEEE double (`1e400`, which `arbitrary_precision` would otherwise keep).
//!
//! The tree is built in one pass by a [`DeserializeSeed`]; keys keep their
//! order and numbers keep their exact text, so values the policy does not
//! touch re-serialise byte-identical (`1.10`, `-0`, `18446744073709551616`).
//! One exception inherited from serde_json: exponents are normalised
//! (`1E2` → `1e+2`).
//!
//! Always parse payloads with [`parse_strict`], never `serde_json::from_*`:
//! with serde_json's `arbitrary_precision` and `raw_value` features, its own
//! `Value` turns a payload object whose only key is
//! `"$serde_json::private::Number"` (or `…RawValue`) into a number (or a
//! re-parsed document). This parser tells the two apart (see `KeySeed`).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// The deepest nesting [`parse_strict`] can accept: serde_json itself refuses
/// the 128th level of arrays/objects, so larger limits are clamped to this.
pub const MAX_DEPTH: usize = 127;

/// Values (scalars and containers) a body may hold unless `limits.max_json_elements` says
/// otherwise: far above real API payloads, far below what makes a parse cost a multiple of
/// the body in memory (a 10 MiB `[1,1,…]` is 5 million values of 32 bytes and more each).
pub const DEFAULT_MAX_ELEMENTS: usize = 1_000_000;

/// How much one body may hold: nesting depth, and values in all (across NDJSON lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Deepest nesting (clamped to [`MAX_DEPTH`]).
    pub depth: usize,
    /// Most values, scalars and containers alike.
    pub elements: usize,
}

impl Bounds {
    /// `depth`, with the default element budget.
    pub fn depth(depth: usize) -> Bounds {
        Bounds {
            depth,
            elements: DEFAULT_MAX_ELEMENTS,
        }
    }
}

/// The key serde_json's parser uses to hand an `arbitrary_precision` number
/// to a visitor (`serde_json::number::TOKEN`, not public).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a body is not acceptable JSON. Messages never quote the input: the
/// text may be payload data, so only positions are reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON: grammar errors, trailing data after the value, invalid UTF-8,
    /// lone surrogate escapes, numbers out of range.
    #[error("{msg} at line {line} column {column}")]
    Syntax {
        line: usize,
        column: usize,
        msg: String,
    },
    /// An object holds the same key twice (position: just after the second
    /// occurrence's value; the key itself is not reported).
    #[error("duplicate object key at line {line} column {column}")]
    DuplicateKey { line: usize, column: usize },
    /// Arrays/objects nest deeper than the limit.
    #[error("nesting deeper than {limit}")]
    TooDeep { limit: usize },
    /// More values than the element budget.
    #[error("more than {limit} values")]
    TooManyElements { limit: usize },
    /// An object key contains U+0000–U+001F (after unescaping).
    #[error("control character in object key at line {line} column {column}")]
    ControlCharInKey { line: usize, column: usize },
    /// Nothing but whitespace.
    #[error("empty document")]
    Empty,
}

/// Parses one JSON document strictly: duplicate object keys at any depth,
/// trailing data after the value, invalid UTF-8, control characters
/// (U+0000–U+001F) in object keys, numbers beyond the range of an f64, and
/// nesting deeper than `max_depth` are errors. Returns the value with key
/// order preserved and numbers kept as their exact text.
///
/// `max_depth` counts nested arrays/objects (`[]` is 1, a scalar 0) and is
/// clamped to [`MAX_DEPTH`].
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    parse_bounded(bytes, Bounds::depth(max_depth))
}

/// [`parse_strict`] within `bounds`: a document of more values than the budget is
/// refused while it is parsed, before it costs more memory.
pub fn parse_bounded(bytes: &[u8], bounds: Bounds) -> Result<Value, JsonError> {
    parse_counted(bytes, bounds, &Cell::new(bounds.elements))
}

/// Parses one document, taking its values from the budget `left`.
fn parse_counted(bytes: &[u8], bounds: Bounds, left: &Cell<usize>) -> Result<Value, JsonError> {
    if bytes.iter().all(|b| is_json_ws(*b)) {
        return Err(JsonError::Empty);
    }
    let ctx = Ctx {
        max_depth: bounds.depth.min(MAX_DEPTH),
        max_elements: bounds.elements,
        left,
        fault: Cell::new(None),
        sizes: std::array::from_fn(|_| Cell::new(0)),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = ValueSeed {
        ctx: &ctx,
        depth: 0,
    };
    seed.deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|err| ctx.classify(&err))
}

/// NDJSON: parses each non-empty line with [`parse_strict`] and returns the
/// documents. Blank (whitespace-only) lines are skipped, `\r\n` line ends are
/// accepted and the final newline is optional. The element budget covers all
/// lines together. On error, returns the 1-based line number with the error
/// (whose position is within that line).
pub fn parse_ndjson(bytes: &[u8], bounds: Bounds) -> Result<Vec<Value>, (usize, JsonError)> {
    let left = Cell::new(bounds.elements);
    let mut docs = Vec::new();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(|b| is_json_ws(*b)) {
            continue;
        }
        docs.push(parse_counted(line, bounds, &left).map_err(|err| (index + 1, err))?);
    }
    Ok(docs)
}

/// Serialises documents as NDJSON: one compact document per line, each
/// followed by `\n`.
pub fn to_ndjson(docs: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for doc in docs {
        // Infallible: `Value` keys are strings and writing to a Vec cannot fail.
        if let Err(err) = serde_json::to_writer(&mut out, doc) {
            unreachable!("serialising a Value into memory failed: {err}");
        }
        out.push(b'\n');
    }
    out
}

/// JSON's insignificant whitespace (RFC 8259 §2); nothing else, not even a BOM.
pub(crate) fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Which strictness rule failed. serde_json only carries a message through a
/// custom error, so the kind travels on the side, in [`Ctx::fault`].
#[derive(Debug, Clone, Copy)]
enum Fault {
    DuplicateKey,
    ControlCharInKey,
    TooDeep,
    TooManyElements,
}

/// State shared by every level of one parse.
struct Ctx<'b> {
    max_depth: usize,
    max_elements: usize,
    /// Values the budget still allows (shared by the lines of an NDJSON body).
    left: &'b Cell<usize>,
    fault: Cell<Option<Fault>>,
    /// Per depth, the size of the last object read there: objects in an array
    /// usually share a shape, so the next one at that depth is allocated at
    /// that size instead of growing (and rehashing) from empty.
    sizes: [Cell<u8>; MAX_DEPTH + 1],
}

/// Objects are pre-sized to at most this many entries (a bound on what an
/// object of a few bytes can allocate).
const SIZE_HINT_MAX: u8 = 16;

impl Ctx<'_> {
    /// Records a rule violation and returns the error that aborts the parse
    /// (serde_json adds the position on its way out).
    fn fail<E: de::Error>(&self, fault: Fault) -> E {
        self.fault.set(Some(fault));
        E::custom("strict JSON rule violated")
    }

    fn classify(&self, err: &serde_json::Error) -> JsonError {
        let (line, column) = (err.line(), err.column());
        match self.fault.get() {
            Some(Fault::DuplicateKey) => JsonError::DuplicateKey { line, column },
            Some(Fault::ControlCharInKey) => JsonError::ControlCharInKey { line, column },
            Some(Fault::TooDeep) => JsonError::TooDeep {
                limit: self.max_depth,
            },
            Some(Fault::TooManyElements) => JsonError::TooManyElements {
                limit: self.max_elements,
            },
            None => {
                let msg = message_of(err);
                // serde_json's own limit fires first at level 128, i.e. only
                // when `max_depth` is MAX_DEPTH.
                if msg == "recursion limit exceeded" {
                    JsonError::TooDeep {
                        limit: self.max_depth,
                    }
                } else {
                    JsonError::Syntax { line, column, msg }
                }
            }
        }
    }
}

/// The error text without serde_json's " at line L column C" suffix.
fn message_of(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(end) if err.line() != 0 => text[..end].to_owned(),
        _ => text,
    }
}

/// Builds one value; `depth` is the number of containers around it.
#[derive(Clone, Copy)]
struct ValueSeed<'c> {
    ctx: &'c Ctx<'c>,
    depth: usize,
}

impl<'c> ValueSeed<'c> {
    /// The seed for the children of a container at this position, or an
    /// error when that container is one level too many.
    fn enter<E: de::Error>(self) -> Result<ValueSeed<'c>, E> {
        if self.depth >= self.ctx.max_depth {
            return Err(self.ctx.fail(Fault::TooDeep));
        }
        Ok(ValueSeed {
            ctx: self.ctx,
            depth: self.depth + 1,
        })
    }

    /// An `arbitrary_precision` number, as serde_json's `Value` visitor builds
    /// it, plus the range check serde_json skips in that mode.
    fn number<E: de::Error>(text: &str) -> Result<Value, E> {
        let number = Number::from_str(text).map_err(|_| E::custom("invalid number"))?;
        if overflows_f64(text) {
            return Err(E::custom("number out of range"));
        }
        Ok(Value::Number(number))
    }
}

/// True when a JSON number's text is beyond ±f64::MAX. Only numbers with an
/// exponent or more than 308 digits can be, so most skip the float parse.
pub(crate) fn overflows_f64(text: &str) -> bool {
    let may_overflow = text.len() > 308 || text.bytes().any(|b| b == b'e' || b == b'E');
    may_overflow && text.parse::<f64>().is_ok_and(f64::is_infinite)
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let left = self.ctx.left.get();
        if left == 0 {
            return Err(self.ctx.fail(Fault::TooManyElements));
        }
        self.ctx.left.set(left - 1);
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Not reached with `arbitrary_precision`; refuse rather than null a NaN.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let keys = KeySeed { ctx: self.ctx };
        let mut key = match map.next_key_seed(keys)? {
            Some(Key::Number) => return Self::number(&map.next_value::<String>()?),
            Some(Key::Payload(key)) => key,
            None => {
                self.enter::<A::Error>()?;
                return Ok(Value::Object(Map::new()));
            }
        };
        let child = self.enter()?;
        let size = self.ctx.sizes.get(self.depth);
        let mut object = Map::with_capacity(size.map_or(0, |n| usize::from(n.get())));
        loop {
            let value = map.next_value_seed(child)?;
            if object.insert(key, value).is_some() {
                return Err(self.ctx.fail(Fault::DuplicateKey));
            }
            key = match map.next_key_seed(keys)? {
                Some(Key::Payload(next)) => next,
                Some(Key::Number) => return Err(de::Error::custom("unexpected number token")),
                None => {
                    if let Some(size) = size {
                        size.set(
                            u8::try_from(object.len())
                                .map_or(SIZE_HINT_MAX, |n| n.min(SIZE_HINT_MAX)),
                        );
                    }
                    return Ok(Value::Object(object));
                }
            };
        }
    }
}

/// A key as delivered to [`ValueSeed::visit_map`].
enum Key {
    /// serde_json's number marker, not a key in the document.
    Number,
    Payload(String),
}

/// Tells a real object key from serde_json's number marker without looking at
/// the text: serde_json's key deserializer answers `deserialize_option` with
/// `visit_some`, while the number's synthetic key deserializer answers every
/// request with the marker string. A payload key spelled like the marker
/// therefore stays a key.
#[derive(Clone, Copy)]
struct KeySeed<'c> {
    ctx: &'c Ctx<'c>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        let key = PayloadKey { ctx: self.ctx };
        deserializer.deserialize_str(key).map(Key::Payload)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        if v == NUMBER_TOKEN {
            Ok(Key::Number)
        } else {
            Err(E::custom("unexpected key source"))
        }
    }
}

/// Reads the text of a real object key and refuses control characters in it.
struct PayloadKey<'c> {
    ctx: &'c Ctx<'c>,
}

impl<'de> Visitor<'de> for PayloadKey<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    /// Text borrowed from the input had no escapes, and the JSON grammar
    /// (enforced by serde_json) already forbids raw control characters, so
    /// only unescaped copies need the scan (it costs ~4% if done on every key).
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.bytes().any(|b| b < 0x20) {
            return Err(self.ctx.fail(Fault::ControlCharInKey));
        }
        Ok(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: usize = 64;

    fn parse(text: &str) -> Result<Value, JsonError> {
        parse_strict(text.as_bytes(), DEPTH)
    }

    fn is_syntax(result: Result<Value, JsonError>) -> bool {
        matches!(result, Err(JsonError::Syntax { .. }))
    }

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn round_trips_numbers_and_key_order_byte_identical() {
        let text = r#"{"id":18446744073709551616,"amount":1.10,"n":-0,"big":9007199254740993,"z":1,"a":2}"#;
        let value = parse(text).expect("parses");
        assert_eq!(serde_json::to_string(&value).expect("serialises"), text);
    }

    #[test]
    fn round_trips_nested_documents() {
        let text = r#"[{"b":[true,false,null,"x\u0000y",{"c":{}}],"a":-12.5e-3},[],0,"é"]"#;
        let value = parse(text).expect("parses");
        assert_eq!(value, serde_json::from_str::<Value>(text).expect("parses"));
        assert_eq!(
            serde_json::to_string(&value).expect("serialises"),
            r#"[{"b":[true,false,null,"x\u0000y",{"c":{}}],"a":-12.5e-3},[],0,"é"]"#
        );
    }

    #[test]
    fn objects_of_varying_sizes_round_trip_after_size_hints() {
        let wide: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
        let text = format!(
            r#"[{{"a":1,"b":2}},{{}},{{{}"z":0}},{{"a":{{"x":[{{"y":1}},{{"y":2,"w":3}}]}}}},{{"a":1,"a2":2,"a3":3}}]"#,
            wide
        );
        let value = parse(&text).expect("parses");
        assert_eq!(serde_json::to_string(&value).expect("serialises"), text);
        let dup = r#"[{"a":1,"b":2,"c":3},{"a":1,"a":2}]"#;
        assert!(matches!(parse(dup), Err(JsonError::DuplicateKey { .. })));
    }

    #[test]
    fn accepts_scalar_documents_and_surrounding_whitespace() {
        assert_eq!(
            parse(" \"4111111111111111\"\r\n").expect("parses"),
            Value::from("4111111111111111")
        );
        assert_eq!(parse("null").expect("parses"), Value::Null);
        assert_eq!(parse("12").expect("parses"), Value::from(12));
    }

    #[test]
    fn rejects_duplicate_keys_top_level_and_nested() {
        let err = parse(r#"{"ssn":"X","ssn":null}"#).expect_err("refused");
        assert!(matches!(err, JsonError::DuplicateKey { line: 1, .. }));
        assert!(matches!(
            parse(r#"{"customer":{"a":[{"ssn":1,"x":2,"ssn":3}]}}"#),
            Err(JsonError::DuplicateKey { .. })
        ));
        // Escapes are decoded before comparing.
        assert!(matches!(
            parse(r#"{"ssn":1,"s\u0073n":2}"#),
            Err(JsonError::DuplicateKey { .. })
        ));
    }

    #[test]
    fn duplicate_key_error_does_not_quote_the_key() {
        let err = parse(r#"{"078-05-1120":1,"078-05-1120":2}"#).expect_err("refused");
        assert!(!err.to_string().contains("078"));
    }

    #[test]
    fn rejects_trailing_data() {
        assert!(is_syntax(parse(r#"{"a":1}{"b":2}"#)));
        assert!(is_syntax(parse(r#"{"a":1} x"#)));
        assert!(is_syntax(parse("1 2")));
    }

    #[test]
    fn rejects_invalid_utf8_and_lone_surrogates() {
        assert!(is_syntax(parse_strict(b"\"\xff\"", DEPTH)));
        assert!(is_syntax(parse_strict(b"{\"a\xc0\xaf\":1}", DEPTH)));
        assert!(is_syntax(parse(r#""\ud800""#)));
        assert!(is_syntax(parse(r#"{"\udc00":1}"#)));
    }

    #[test]
    fn rejects_non_json_extensions() {
        for text in [
            "\u{feff}{}",
            r#"{"a":NaN}"#,
            r#"{"a":Infinity}"#,
            r#"{"a":1 /*c*/}"#,
            "{\"a\":1} // c",
            r#"{"a":1,}"#,
            "[1,]",
            "{'a':1}",
            "[01]",
            "[+1]",
            "[.5]",
            "\"tab\there\"",
        ] {
            assert!(is_syntax(parse(text)), "{text:?} must be refused");
        }
    }

    #[test]
    fn rejects_numbers_out_of_range() {
        assert!(is_syntax(parse("1e400")));
        assert!(is_syntax(parse("[-1E+400]")));
        assert!(is_syntax(parse(&format!("1{}", "0".repeat(400)))));
        // Underflow is representable (as 0) and kept as written.
        assert_eq!(
            serde_json::to_string(&parse("1e-400").expect("serialises")).expect("parses"),
            "1e-400"
        );
    }

    #[test]
    fn the_element_budget_counts_every_value_across_ndjson_lines() {
        let bounds = Bounds {
            depth: 8,
            elements: 4,
        };
        // `[1,2,3]` is four values: the array and three numbers.
        assert!(parse_bounded(b"[1,2,3]", bounds).is_ok());
        assert_eq!(
            parse_bounded(b"[1,2,3,4]", bounds),
            Err(JsonError::TooManyElements { limit: 4 })
        );
        assert_eq!(
            parse_bounded(br#"{"a":{"b":[0]},"c":1}"#, bounds),
            Err(JsonError::TooManyElements { limit: 4 })
        );
        assert!(parse_ndjson(b"[1]\n[2]\n", bounds).is_ok());
        assert_eq!(
            parse_ndjson(b"[1]\n[2]\n[3]\n", bounds),
            Err((3, JsonError::TooManyElements { limit: 4 }))
        );
    }

    #[test]
    fn rejects_control_characters_in_keys() {
        assert!(matches!(
            parse(r#"{"ss\u0000n":1}"#),
            Err(JsonError::ControlCharInKey { .. })
        ));
        assert!(matches!(
            parse(r#"{"a":{"b\u001f":1}}"#),
            Err(JsonError::ControlCharInKey { .. })
        ));
        assert!(matches!(
            parse(r#"{"a\nb":1}"#),
            Err(JsonError::ControlCharInKey { .. })
        ));
        // Raw control characters are already outside the JSON grammar.
        assert!(is_syntax(parse("{\"a\u{1}b\":1}")));
        // In values they are data.
        assert!(parse(r#"{"a":"b\u0000"}"#).is_ok());
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(parse(""), Err(JsonError::Empty));
        assert_eq!(parse(" \r\n\t"), Err(JsonError::Empty));
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(parse_strict(nested(3).as_bytes(), 3).is_ok());
        assert_eq!(
            parse_strict(nested(4).as_bytes(), 3),
            Err(JsonError::TooDeep { limit: 3 })
        );
        assert!(parse_strict(br#"{"a":{"b":[1]}}"#, 3).is_ok());
        assert_eq!(
            parse_strict(br#"{"a":{"b":{}}}"#, 2),
            Err(JsonError::TooDeep { limit: 2 })
        );
        assert_eq!(parse_strict(b"[]", 0), Err(JsonError::TooDeep { limit: 0 }));
        assert!(parse_strict(b"1", 0).is_ok());
    }

    #[test]
    fn depth_limit_is_clamped_to_serde_json_limit() {
        assert!(parse_strict(nested(MAX_DEPTH).as_bytes(), 1000).is_ok());
        let limit = MAX_DEPTH;
        assert_eq!(
            parse_strict(nested(MAX_DEPTH + 1).as_bytes(), 1000),
            Err(JsonError::TooDeep { limit })
        );
        assert_eq!(
            parse_strict(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH),
            Err(JsonError::TooDeep { limit })
        );
        let objects = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            parse_strict(objects.as_bytes(), 1000),
            Err(JsonError::TooDeep { limit })
        );
        assert!(matches!(
            parse_strict(nested(100_000).as_bytes(), 1000),
            Err(JsonError::TooDeep { .. })
        ));
    }

    #[test]
    fn serde_json_magic_keys_stay_payload_keys() {
        for text in [
            r#"{"$serde_json::private::Number":"5"}"#,
            r#"{"$serde_json::private::Number":5}"#,
            r#"{"$serde_json::private::RawValue":"{\"ssn\":1}"}"#,
            r#"{"a":{"$serde_json::private::Number":"1","b":2}}"#,
        ] {
            let value = parse(text).expect("parses");
            assert_eq!(serde_json::to_string(&value).expect("serialises"), text);
        }
        assert!(
            parse(r#"{"$serde_json::private::Number":1,"$serde_json::private::Number":2}"#)
                .is_err()
        );
    }

    #[test]
    fn syntax_errors_carry_position_and_no_input() {
        let err = parse("{\n  \"secret-value\": tru }").expect_err("refused");
        match &err {
            JsonError::Syntax { line, msg, .. } => {
                assert_eq!(*line, 2);
                assert!(!msg.contains(" at line "));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn ndjson_parses_lines_and_reports_the_failing_line() {
        let docs =
            parse_ndjson(b"{\"a\":1}\n\n  \r\n[2]\r\n3", Bounds::depth(DEPTH)).expect("parses");
        assert_eq!(
            docs,
            vec![
                serde_json::json!({"a":1}),
                serde_json::json!([2]),
                serde_json::json!(3)
            ]
        );
        assert_eq!(
            parse_ndjson(b"", Bounds::depth(DEPTH)).expect("parses"),
            Vec::<Value>::new()
        );
        let (line, err) = parse_ndjson(b"{\"a\":1}\n\n{\"a\":1,\"a\":2}\n", Bounds::depth(DEPTH))
            .expect_err("refused");
        assert_eq!(line, 3);
        assert!(matches!(err, JsonError::DuplicateKey { line: 1, .. }));
        assert!(parse_ndjson(b"{\"a\":\n1}\n", Bounds::depth(DEPTH)).is_err());
    }

    #[test]
    fn ndjson_round_trips() {
        let input = b"{\"b\":1.10,\"a\":-0}\n[18446744073709551616]\n\"x\"\n";
        let docs = parse_ndjson(input, Bounds::depth(DEPTH)).expect("parses");
        assert_eq!(to_ndjson(&docs), input);
        assert_eq!(to_ndjson(&[]), b"");
    }
}
