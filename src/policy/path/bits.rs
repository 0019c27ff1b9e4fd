//! Bitsets of automaton states, as slices of `u64` words.

pub(super) fn set(bits: &mut [u64], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

pub(super) fn any(bits: &[u64]) -> bool {
    bits.iter().any(|w| *w != 0)
}

pub(super) fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

pub(super) fn ones(bits: &[u64]) -> Ones<'_> {
    Ones {
        bits,
        word: 0,
        rest: bits.first().copied().unwrap_or(0),
    }
}

/// The indices of the set bits, in increasing order.
pub(super) struct Ones<'b> {
    bits: &'b [u64],
    word: usize,
    rest: u64,
}

impl Iterator for Ones<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.rest == 0 {
            self.word += 1;
            self.rest = *self.bits.get(self.word)?;
        }
        let bit = self.rest.trailing_zeros() as usize;
        self.rest &= self.rest - 1;
        Some(self.word * 64 + bit)
    }
}
