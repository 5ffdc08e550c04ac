//! Bit helpers: power-of-two arithmetic and a bitmap over caller-provided words.
//!
//! The buddy core keeps all of its metadata in plain `u64` words that live either inside the managed region or in
//! a buffer the caller hands over, so the bitmap here borrows raw words instead of owning a `Vec`.

use core::ptr::NonNull;

/// Number of bits in one metadata word.
pub const WORD_BITS: usize = u64::BITS as usize;

/// The smallest `k` with `2^k >= n` (`0` for `n <= 1`).
///
/// Never overflows: for `n > 2^(usize::BITS - 1)` it returns `usize::BITS`, an order no allocator accepts.
#[inline]
pub const fn ceil_log2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// The largest `k` with `2^k <= n`, or `None` for `n == 0`.
#[inline]
pub const fn floor_log2(n: usize) -> Option<u32> {
    if n == 0 {
        None
    } else {
        Some(usize::BITS - 1 - n.leading_zeros())
    }
}

/// `addr` rounded down to a multiple of `2^order`.
#[inline]
pub const fn align_down(addr: usize, order: u32) -> usize {
    addr & !((1usize << order) - 1)
}

/// `addr` rounded up to a multiple of `2^order`, or `None` if that passes `usize::MAX`.
#[inline]
pub const fn align_up(addr: usize, order: u32) -> Option<usize> {
    let mask = (1usize << order) - 1;
    match addr.checked_add(mask) {
        Some(sum) => Some(sum & !mask),
        None => None,
    }
}

/// Number of `u64` words needed to hold `bits` bits.
#[inline]
pub const fn words_for_bits(bits: usize) -> usize {
    bits.div_ceil(WORD_BITS)
}

/// A fixed-length bitmap over words the caller owns.
///
/// Every access is bounds-checked against `len_bits`: the indices come from address arithmetic in the buddy core,
/// and a bug there must stop the program rather than write outside the metadata buffer.
#[derive(Debug)]
pub struct Bitmap {
    words: NonNull<u64>,
    len_bits: usize,
}

impl Bitmap {
    /// A bitmap of `len_bits` bits stored in the words starting at `words`.
    ///
    /// # Safety
    /// `words` must point to at least `words_for_bits(len_bits)` initialised `u64`s that stay valid, and are accessed
    /// only through this bitmap, for as long as the bitmap is used.
    pub const unsafe fn from_raw(words: NonNull<u64>, len_bits: usize) -> Self {
        Self { words, len_bits }
    }

    /// Number of bits.
    pub const fn len(&self) -> usize {
        self.len_bits
    }

    /// Whether the bitmap holds no bits at all.
    pub const fn is_empty(&self) -> bool {
        self.len_bits == 0
    }

    #[inline]
    fn word(&self, bit: usize) -> *mut u64 {
        assert!(bit < self.len_bits, "bitmap index out of range");
        // SAFETY: `bit < len_bits`, so `bit / 64 < words_for_bits(len_bits)`, which `from_raw`'s contract makes
        // valid words of one allocation.
        unsafe { self.words.as_ptr().add(bit / WORD_BITS) }
    }

    /// Whether bit `bit` is set. Panics if `bit >= len()`.
    #[inline]
    pub fn get(&self, bit: usize) -> bool {
        // SAFETY: `word` returned an in-bounds pointer to an initialised word owned by this bitmap.
        unsafe { *self.word(bit) & (1 << (bit % WORD_BITS)) != 0 }
    }

    /// Flips bit `bit` and returns its new value. Panics if `bit >= len()`.
    #[inline]
    pub fn toggle(&mut self, bit: usize) -> bool {
        let word = self.word(bit);
        let mask = 1u64 << (bit % WORD_BITS);
        // SAFETY: in-bounds word owned exclusively by this bitmap (`&mut self`).
        unsafe {
            *word ^= mask;
            *word & mask != 0
        }
    }

    /// Sets bit `bit`. Panics if `bit >= len()`.
    #[inline]
    pub fn set(&mut self, bit: usize) {
        let word = self.word(bit);
        // SAFETY: in-bounds word owned exclusively by this bitmap (`&mut self`).
        unsafe { *word |= 1 << (bit % WORD_BITS) }
    }

    /// Clears bit `bit` and returns whether it was set. Panics if `bit >= len()`.
    #[inline]
    pub fn test_and_clear(&mut self, bit: usize) -> bool {
        let word = self.word(bit);
        let mask = 1u64 << (bit % WORD_BITS);
        // SAFETY: in-bounds word owned exclusively by this bitmap (`&mut self`).
        unsafe {
            let was_set = *word & mask != 0;
            *word &= !mask;
            was_set
        }
    }

    /// Clears every bit.
    pub fn clear_all(&mut self) {
        let words = words_for_bits(self.len_bits);
        // SAFETY: `from_raw`'s contract makes these `words` words valid and exclusively ours.
        unsafe { core::ptr::write_bytes(self.words.as_ptr(), 0, words) }
    }

    /// Calls `visit` with the index of every set bit in `from..to`, skipping zero words. Panics if `to > len()`.
    pub fn for_each_set(&self, from: usize, to: usize, mut visit: impl FnMut(usize)) {
        assert!(
            from <= to && to <= self.len_bits,
            "bitmap range out of bounds"
        );
        let mut bit = from;
        while bit < to {
            // SAFETY: `bit < to <= len_bits`, so the word is in bounds (see `word`).
            let word = unsafe { *self.word(bit) } >> (bit % WORD_BITS);
            if word == 0 {
                bit = (bit / WORD_BITS + 1) * WORD_BITS;
                continue;
            }
            bit += word.trailing_zeros() as usize;
            if bit < to {
                visit(bit);
            }
            bit += 1;
        }
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> usize {
        (0..self.len_bits).filter(|&bit| self.get(bit)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_log2_rounds_up_and_never_overflows() {
        assert_eq!(ceil_log2(0), 0);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(1024), 10);
        assert_eq!(ceil_log2(1025), 11);
        assert_eq!(ceil_log2(1 << (usize::BITS - 1)), usize::BITS - 1);
        assert_eq!(ceil_log2((1 << (usize::BITS - 1)) + 1), usize::BITS);
        assert_eq!(ceil_log2(usize::MAX), usize::BITS);
    }

    #[test]
    fn floor_log2_rounds_down() {
        assert_eq!(floor_log2(0), None);
        assert_eq!(floor_log2(1), Some(0));
        assert_eq!(floor_log2(3), Some(1));
        assert_eq!(floor_log2(4096), Some(12));
        assert_eq!(floor_log2(usize::MAX), Some(usize::BITS - 1));
    }

    #[test]
    fn alignment_helpers_round_and_detect_overflow() {
        assert_eq!(align_down(0x1234, 8), 0x1200);
        assert_eq!(align_up(0x1234, 8), Some(0x1300));
        assert_eq!(align_up(0x1200, 8), Some(0x1200));
        assert_eq!(align_up(usize::MAX - 3, 4), None);
        assert_eq!(words_for_bits(0), 0);
        assert_eq!(words_for_bits(64), 1);
        assert_eq!(words_for_bits(65), 2);
    }

    #[test]
    fn bitmap_set_toggle_clear_across_words() {
        let mut words = [u64::MAX; 3];
        // SAFETY: `words` holds 3 words, enough for 130 bits, and outlives `bitmap`.
        let mut bitmap = unsafe { Bitmap::from_raw(NonNull::from(&mut words).cast(), 130) };
        bitmap.clear_all();
        assert_eq!(bitmap.count_ones(), 0);
        bitmap.set(0);
        bitmap.set(64);
        bitmap.set(129);
        assert!(bitmap.get(0) && bitmap.get(64) && bitmap.get(129));
        assert!(!bitmap.get(1) && !bitmap.get(63) && !bitmap.get(128));
        assert!(!bitmap.toggle(64));
        assert!(bitmap.toggle(65));
        assert!(bitmap.test_and_clear(65));
        assert!(!bitmap.test_and_clear(65));
        assert_eq!(bitmap.count_ones(), 2);
        let mut seen = std::vec::Vec::new();
        bitmap.for_each_set(0, 130, |bit| seen.push(bit));
        assert_eq!(seen, [0, 129]);
        seen.clear();
        bitmap.for_each_set(1, 129, |bit| seen.push(bit));
        assert!(seen.is_empty());
        assert_eq!(bitmap.len(), 130);
        assert!(!bitmap.is_empty());
    }

    #[test]
    #[should_panic(expected = "bitmap index out of range")]
    fn bitmap_rejects_index_past_its_end() {
        let mut words = [0u64; 1];
        // SAFETY: one word for 10 bits, outliving the bitmap.
        let bitmap = unsafe { Bitmap::from_raw(NonNull::from(&mut words).cast(), 10) };
        bitmap.get(10);
    }
}
