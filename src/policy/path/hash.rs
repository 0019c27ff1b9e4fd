//! [`Fx`]: the seeded word-at-a-time hash of key names and paths.

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
