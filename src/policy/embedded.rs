//! `body.embedded_json: refuse`: a string value that is itself a JSON object or array
//! (`{"data":"{\"password\":\"x\"}"}`) refuses the crossing, because path rules such as
//! `$..password` do not see into strings. Detectors of `redact` rules scan such a string's text
//! either way.

use super::path::Location;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The wildcarded path of the first string in `doc` that holds a JSON object or array.
pub(super) fn find(doc: &Value) -> Option<String> {
    find_at(doc, &Location::root())
}

fn find_at(node: &Value, loc: &Location<'_>) -> Option<String> {
    match node {
        Value::String(s) if holds_json(s) => Some(loc.wildcarded()),
        Value::Object(map) => map.iter().find_map(|(k, v)| find_at(v, &loc.key(k))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_at(v, &loc.index(i))),
        _ => None,
    }
}

/// Whether `s` (surrounding white space aside) is a JSON object or array.
pub(super) fn holds_json(s: &str) -> bool {
    let t = s.trim();
    let framed =
        (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'));
    framed && serde_json::from_str::<IgnoredAny>(t).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_holding_objects_or_arrays_are_found() {
        let doc = json!({"a": [1, {"b": " {\"password\": \"x\"} "}], "c": "[1,2]"});
        assert_eq!(find(&doc).as_deref(), Some("$['a'][*]['b']"));
        for plain in ["{not json}", "[", "{}x", "\"{}\"", "42", "hello"] {
            assert!(!holds_json(plain), "{plain}");
        }
        assert!(holds_json("[]"));
    }
}
