//! Value transforms of the `mask` and `hash` rules.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::fmt;

/// The HMAC key of `hash` rules (`secrets.hash_key`), keyed once.
#[derive(Clone)]
pub struct HashKey(Hmac<Sha256>);

impl HashKey {
    /// Keys the HMAC; any length works, 32 random bytes or more is recommended.
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => HashKey(mac),
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// Lowercase hex HMAC-SHA256 of `bytes`.
    pub fn hash(&self, bytes: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// Mask options of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Mask {
    /// Letters and digits kept at the start.
    pub keep_first: usize,
    /// Letters and digits kept at the end.
    pub keep_last: usize,
    /// The replacement character.
    pub ch: char,
}

impl Mask {
    /// Masks letters and digits, keeping punctuation and spaces so the format
    /// stays recognisable. A value too short to keep anything hidden is masked
    /// whole: `keep_last: 4` on a 4-digit PIN must not reveal the PIN.
    pub fn apply(&self, text: &str) -> String {
        let total = text.chars().filter(|c| c.is_alphanumeric()).count();
        let keep_all_but = self.keep_first + self.keep_last < total;
        let mut seen = 0;
        text.chars()
            .map(|c| {
                if !c.is_alphanumeric() {
                    return c;
                }
                let i = seen;
                seen += 1;
                let kept = keep_all_but && (i < self.keep_first || i >= total - self.keep_last);
                if kept { c } else { self.ch }
            })
            .collect()
    }
}

/// The text a rule works on: strings as they are, anything else as its JSON text.
pub fn text_of(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mask(first: usize, last: usize, s: &str) -> String {
        Mask {
            keep_first: first,
            keep_last: last,
            ch: '*',
        }
        .apply(s)
    }

    #[test]
    fn mask_keeps_format_and_counts_alphanumerics() {
        assert_eq!(mask(0, 4, "4111 1111 1111 1111"), "**** **** **** 1111");
        assert_eq!(mask(2, 0, "ab-cd"), "ab-**");
        assert_eq!(mask(1, 1, "jane.doe@x.io"), "j***.***@*.*o");
        assert_eq!(mask(0, 0, "Ünïcode 9"), "******* *");
    }

    #[test]
    fn short_values_are_masked_whole() {
        assert_eq!(mask(0, 4, "1234"), "****");
        assert_eq!(mask(2, 2, "abc"), "***");
    }

    #[test]
    fn non_strings_use_their_json_text() {
        assert_eq!(text_of(&json!(4111111111111111u64)), "4111111111111111");
        assert_eq!(text_of(&json!({"a": true})), r#"{"a":true}"#);
    }

    #[test]
    fn hash_is_keyed_stable_lowercase_hex() {
        let a = HashKey::new(b"k1");
        let b = HashKey::new(b"k2");
        let h = a.hash(b"alice@example.com");
        assert_eq!(h, a.hash(b"alice@example.com"));
        assert_ne!(h, b.hash(b"alice@example.com"));
        assert_eq!(h.len(), 64);
        assert!(
            h.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        // RFC 4231 test case 2.
        let rfc = HashKey::new(b"Jefe").hash(b"what do ya want for nothing?");
        assert_eq!(
            rfc,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
