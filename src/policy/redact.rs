//! What a `redact` rule does to one node (SPEC §2.2): detected spans in strings, in numbers and
//! in object keys become `[LABEL]`.
//!
//! - A number is scanned as its JSON text, and when its value is an integer written another way
//!   (`4111111111111111.0`, `4.111111111111111e15`, `41111111111111110e-1`) as its canonical
//!   integer digits too, so a card is a card in every number form. A number with a hit becomes
//!   the redacted text, a string.
//! - Object keys are payload data: the keys of every object in a rule's scope (a selected object
//!   and every object inside a selected node) are scanned like strings. A key with a hit is
//!   renamed to its redacted text; the member's value stays, governed like any other value. When
//!   the new name is already a key of that object, `#2`, `#3`, … is appended (the first free
//!   one), so members are never merged or lost: `{"a@x.io":1,"b@y.io":2}` becomes
//!   `{"[EMAIL]":1,"[EMAIL]#2":2}`. Member order is kept.

use super::detect::Redactor;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Longest exponent of a number read for its integer form; beyond it the number is far longer
/// than anything a detector finds (cards have at most 19 digits), or not an integer at all.
const MAX_INTEGER_DIGITS: usize = 64;

/// Redacts detected spans in `node` (and, when `deep`, in everything inside it); true when
/// anything changed.
pub(super) fn redact(redactor: &Redactor, node: &mut Value, deep: bool) -> bool {
    match node {
        Value::String(s) => match redact_str(redactor, s) {
            Some(text) => {
                *s = text;
                true
            }
            None => false,
        },
        Value::Number(n) => match redact_number(redactor, n.as_str()) {
            Some(text) => {
                *node = Value::String(text);
                true
            }
            None => false,
        },
        Value::Array(items) if deep => items
            .iter_mut()
            .fold(false, |hit, v| redact(redactor, v, true) | hit),
        Value::Array(_) => false,
        Value::Object(map) => {
            let values = deep
                && map
                    .values_mut()
                    .fold(false, |hit, v| redact(redactor, v, true) | hit);
            redact_keys(redactor, map) | values
        }
        Value::Bool(_) | Value::Null => false,
    }
}

/// The redacted text of a string, `None` when nothing is detected in it.
pub(crate) fn redact_str(redactor: &Redactor, s: &str) -> Option<String> {
    redactor.redact(s).map(|r| r.text)
}

/// The redacted text of a number: of its canonical integer form when it has one that differs
/// from its text, else of its text.
pub(crate) fn redact_number(redactor: &Redactor, text: &str) -> Option<String> {
    // Plain integers (nearly all numbers) are their own canonical form: no allocation.
    let plain = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if !plain
        && let Some(digits) = integer_form(text)
        && digits != text
        && let Some(r) = redactor.redact(&digits)
    {
        return Some(r.text);
    }
    redactor.redact(text).map(|r| r.text)
}

/// The canonical integer text (`-`? digits, no leading zeros) of a JSON number whose value is
/// an integer, computed on its decimal text (never through `f64`); `None` for a fraction or
/// for an integer of more than [`MAX_INTEGER_DIGITS`] digits. `1e999999` costs nothing.
pub(crate) fn integer_form(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], &unsigned[i + 1..]),
        None => (unsigned, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exp_digits = exponent.trim_start_matches(['+', '-']);
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) || !digits_ok(exp_digits) {
        return None;
    }
    let all: String = [int, frac].concat();
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return Some("0".to_owned());
    }
    // The value is `significant` × 10^scale.
    let exp_digits = exp_digits.trim_start_matches('0');
    if exp_digits.len() > 6 {
        // |exponent| ≥ 10^6: far too long an integer, or a fraction.
        return None;
    }
    let magnitude = exp_digits.parse::<i64>().unwrap_or(0);
    let exp = if exponent.starts_with('-') {
        -magnitude
    } else {
        magnitude
    };
    let scale = exp - i64::try_from(frac.len()).ok()?;
    let digits = if scale >= 0 {
        let zeros = usize::try_from(scale).ok()?;
        if significant.len() + zeros > MAX_INTEGER_DIGITS {
            return None;
        }
        format!("{significant}{}", "0".repeat(zeros))
    } else {
        let cut = usize::try_from(-scale).ok()?;
        let keep = significant.len().checked_sub(cut)?;
        let (head, tail) = significant.split_at(keep);
        if keep == 0 || tail.bytes().any(|b| b != b'0') || head.len() > MAX_INTEGER_DIGITS {
            return None;
        }
        head.to_owned()
    };
    Some(if negative {
        format!("-{digits}")
    } else {
        digits
    })
}

/// Renames the keys of `map` in which the redactor finds something; true when any was.
fn redact_keys(redactor: &Redactor, map: &mut Map<String, Value>) -> bool {
    let renamed: Vec<(usize, String)> = map
        .keys()
        .enumerate()
        .filter_map(|(i, k)| redactor.redact(k).map(|r| (i, r.text)))
        .collect();
    if renamed.is_empty() {
        return false;
    }
    let mut taken: HashSet<String> = map
        .keys()
        .enumerate()
        .filter(|(i, _)| renamed.binary_search_by_key(i, |(j, _)| *j).is_err())
        .map(|(_, k)| k.clone())
        .collect();
    let mut renamed = renamed.into_iter().peekable();
    let old = std::mem::take(map);
    for (i, (key, value)) in old.into_iter().enumerate() {
        let key = match renamed.next_if(|(j, _)| *j == i) {
            Some((_, text)) => unique(text, &mut taken),
            None => key,
        };
        map.insert(key, value);
    }
    true
}

/// `name`, or `name#2`, `name#3`, … : the first that is not taken yet, now taken.
fn unique(name: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2u64;
    while taken.contains(&candidate) {
        candidate = format!("{name}#{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::detect::Detector;
    use serde_json::json;

    fn all() -> Redactor {
        Redactor::new(&Detector::ALL, &[]).expect("detectors")
    }

    #[test]
    fn integers_written_other_ways_have_one_canonical_form() {
        for text in [
            "4111111111111111",
            "4111111111111111.0",
            "4111111111111111.000",
            "4.111111111111111e15",
            "4.111111111111111E+15",
            "41111111111111110e-1",
            "0.4111111111111111e16",
            "00041111111111111110E-0001",
        ] {
            assert_eq!(
                integer_form(text).as_deref(),
                Some("4111111111111111"),
                "{text}"
            );
        }
        assert_eq!(integer_form("-12.0").as_deref(), Some("-12"));
        assert_eq!(integer_form("0.000").as_deref(), Some("0"));
        assert_eq!(integer_form("0e999999999").as_deref(), Some("0"));
        for not_integer in ["1.5", "4111111111111111.5", "1e-1", "0.4111111111111111"] {
            assert_eq!(integer_form(not_integer), None, "{not_integer}");
        }
        // Huge exponents cost nothing and give nothing.
        assert_eq!(integer_form("1e999999"), None);
        assert_eq!(integer_form("1e99999999999999999999"), None);
        assert_eq!(integer_form("1e-99999999999999999999"), None);
    }

    #[test]
    fn a_card_is_a_card_in_every_number_form() {
        let r = all();
        for text in [
            "4111111111111111",
            "4111111111111111.0",
            "4.111111111111111e15",
            "41111111111111110e-1",
        ] {
            let mut v: Value = serde_json::from_str(text).expect("number");
            assert!(redact(&r, &mut v, false), "{text}");
            assert_eq!(v, json!("[CREDIT_CARD]"), "{text}");
        }
        // Ordinary numbers survive.
        for text in ["12.5", "1e3", "20260901", "1700000000.0"] {
            let mut v: Value = serde_json::from_str(text).expect("number");
            assert!(!redact(&r, &mut v, false), "{text}");
        }
    }

    #[test]
    fn keys_that_hold_data_become_unique_placeholders() {
        let r = all();
        let mut v = json!({
            "users": {
                "jane.doe@example.com": {"role": "admin"},
                "[EMAIL]": "an attacker's own key",
                "bob@example.org": {"role": "user"},
                "4111 1111 1111 1111": 1,
                "plain": 2
            }
        });
        assert!(redact(&r, &mut v, true));
        let keys: Vec<&String> = v["users"].as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "[EMAIL]#2",
                "[EMAIL]",
                "[EMAIL]#3",
                "[CREDIT_CARD]",
                "plain"
            ]
        );
        assert_eq!(v["users"]["[EMAIL]#2"], json!({"role": "admin"}));
    }

    #[test]
    fn keys_of_a_selected_object_are_scanned_even_when_values_are_not() {
        let r = all();
        let mut v = json!({"jane@example.com": {"x@y.io": "kept"}});
        assert!(redact(&r, &mut v, false));
        assert_eq!(v, json!({"[EMAIL]": {"x@y.io": "kept"}}));
    }
}
