//! Size classes: one rounding function for allocation and free.
//!
//! The table holds every power of two from 1 to 8192 (the seed's classes, used by the size-only API, which
//! guarantees alignment to the next power of two of the size) and, between them, finer classes for Rust
//! `Layout`s: multiples of 4 and 8 up to 128 bytes, then 16 classes per doubling, so a layout never pays more
//! than 1/16 for rounding above 128 bytes (24 B costs 24, 100 B costs 104). A class's slots are aligned to
//! the lowest set bit of its slot size, so a layout picks the smallest class that is large enough *and*
//! aligned enough.

/// The largest size served from slabs; larger requests are mapped from the OS.
pub const MAX_SMALL_SIZE: usize = 8192;
/// The largest alignment a slab slot guarantees (the seed's cap); larger alignments are mapped from the OS.
pub const MAX_SMALL_ALIGN: usize = 4096;
/// The number of size classes.
pub const CLASS_COUNT: usize = 116;

/// A size class: an index into the class table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SizeClass(u8);

const SLOT_SIZES: [u32; CLASS_COUNT] = build_slot_sizes();

const fn build_slot_sizes() -> [u32; CLASS_COUNT] {
    let mut sizes = [0u32; CLASS_COUNT];
    let head = [1u32, 2, 4, 8, 12];
    let mut i = 0;
    while i < head.len() {
        sizes[i] = head[i];
        i += 1;
    }
    // 16 ..= 128 in steps of 8.
    let mut size = 16;
    while size <= 128 {
        sizes[i] = size;
        i += 1;
        size += 8;
    }
    // (2^k, 2^(k+1)] in 16 steps, for k = 7 ..= 12.
    let mut k = 7;
    while k <= 12 {
        let step = 1u32 << (k - 4);
        let mut j = 1;
        while j <= 16 {
            sizes[i] = (1u32 << k) + j * step;
            i += 1;
            j += 1;
        }
        k += 1;
    }
    assert!(i == CLASS_COUNT, "CLASS_COUNT does not match the table");
    sizes
}

/// Sizes up to this one find their class in one table lookup, with no branch on the size's range: a
/// program mixing sizes below and above 128 bytes would otherwise mispredict that branch on every call
/// (mimalloc's direct table reaches 1024 bytes too).
const DIRECT_LIMIT: usize = 1024;

/// Class index for every size 0 ..= [`DIRECT_LIMIT`] (0 maps like 1; callers refuse size 0 before).
const DIRECT_INDEX: [u8; DIRECT_LIMIT + 1] = build_direct_index();

const fn build_direct_index() -> [u8; DIRECT_LIMIT + 1] {
    let mut table = [0u8; DIRECT_LIMIT + 1];
    let mut size = 1;
    let mut class = 0;
    while size <= DIRECT_LIMIT {
        while SLOT_SIZES[class] < size as u32 {
            class += 1;
        }
        table[size] = class as u8;
        size += 1;
    }
    table
}

/// The first class above 128 bytes.
const FIRST_GEOMETRIC: usize = 20;

// The geometric formula grows with the size, so its largest result is the last class (see `index`).
const _: () = match SizeClass::for_size(MAX_SMALL_SIZE) {
    Some(class) => assert!(class.0 as usize == CLASS_COUNT - 1),
    None => panic!("MAX_SMALL_SIZE has a class"),
};

impl SizeClass {
    /// The class of index `index`, if it exists.
    pub const fn from_index(index: usize) -> Option<Self> {
        if index < CLASS_COUNT {
            Some(Self(index as u8))
        } else {
            None
        }
    }

    /// Every class, smallest first.
    pub fn all() -> impl Iterator<Item = SizeClass> + Clone {
        (0..CLASS_COUNT as u8).map(SizeClass)
    }

    /// The index of this class in the table.
    #[inline(always)]
    pub const fn index(self) -> usize {
        let index = self.0 as usize;
        // SAFETY: every `SizeClass` holds an index below CLASS_COUNT: `from_index` checks it, the direct
        // table's entries index SLOT_SIZES while it is built (a larger one would fail compilation), and the
        // geometric formula's largest result is checked below. Telling the compiler lets the fast path
        // index the per-class tables without a bounds check.
        unsafe { core::hint::assert_unchecked(index < CLASS_COUNT) };
        index
    }

    /// The size of this class's slots.
    #[inline(always)]
    pub const fn slot_size(self) -> usize {
        SLOT_SIZES[self.0 as usize] as usize
    }

    /// The alignment every slot of this class has: the lowest set bit of the slot size, capped at
    /// [`MAX_SMALL_ALIGN`].
    #[inline(always)]
    pub const fn align(self) -> usize {
        let size = self.slot_size();
        let low_bit = size & size.wrapping_neg();
        if low_bit > MAX_SMALL_ALIGN {
            MAX_SMALL_ALIGN
        } else {
            low_bit
        }
    }

    /// Whether the slot size is a power of two (a class of the size-only API).
    pub const fn is_power_of_two(self) -> bool {
        self.slot_size().is_power_of_two()
    }

    /// The smallest class whose slots hold `size` bytes (`1 ..= MAX_SMALL_SIZE`), with no alignment demand.
    #[inline(always)]
    pub const fn for_size(size: usize) -> Option<Self> {
        if size <= DIRECT_LIMIT {
            if size == 0 {
                return None;
            }
            return Some(Self(DIRECT_INDEX[size]));
        }
        if size > MAX_SMALL_SIZE {
            return None;
        }
        // size lies in (2^k, 2^(k+1)]; 16 classes split that range evenly.
        let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
        let step_shift = k - 4;
        let steps = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift;
        Some(Self((FIRST_GEOMETRIC + (k - 7) * 16 + steps - 1) as u8))
    }

    /// The class of the size-only API: the next power of two of `size` (`1 ..= MAX_SMALL_SIZE`). Its slots
    /// are aligned to that power of two (up to [`MAX_SMALL_ALIGN`]).
    #[inline(always)]
    pub const fn for_size_pow2(size: usize) -> Option<Self> {
        if size == 0 || size > MAX_SMALL_SIZE {
            return None;
        }
        Self::for_size(size.next_power_of_two())
    }

    /// The class of a `Layout`: the smallest class at least `size` bytes large whose slots are aligned to
    /// `align`. `None` for size 0, for sizes above [`MAX_SMALL_SIZE`] and alignments above
    /// [`MAX_SMALL_ALIGN`] (those are mapped from the OS). `align` must be a power of two.
    ///
    /// Architecture invariant: a free with any size between the requested size and the class's slot size
    /// (the "fits" rule of `Allocator::deallocate`) and the same alignment lands in the same class.
    #[inline(always)]
    pub const fn for_layout(size: usize, align: usize) -> Option<Self> {
        debug_assert!(align.is_power_of_two());
        if align > MAX_SMALL_ALIGN || size > MAX_SMALL_SIZE {
            return None;
        }
        // A slot that is a multiple of `align` can be aligned to it, so round up first. The class of the
        // rounded size is then always aligned enough: in (2^k, 2^(k+1)] the classes are the multiples of
        // 2^(k-4) (of 8 from 16 to 128), so either `align` divides that step and the rounded size is
        // itself a class, or the step is a larger power of two than `align`; below 16, 12-byte slots
        // are 4-aligned and rounding to 8 or 16 skips them. The exhaustive test below checks it.
        let rounded = (size + align - 1) & !(align - 1);
        let class = match Self::for_size(rounded) {
            Some(class) => class,
            None => return None,
        };
        debug_assert!(class.align() >= align);
        Some(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_strictly_increasing_and_holds_every_power_of_two() {
        for pair in SLOT_SIZES.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for shift in 0..=13 {
            assert!(SLOT_SIZES.contains(&(1 << shift)), "missing 2^{shift}");
        }
        assert_eq!(SLOT_SIZES[CLASS_COUNT - 1] as usize, MAX_SMALL_SIZE);
    }

    #[test]
    fn for_size_is_the_smallest_fitting_class() {
        for size in 1..=MAX_SMALL_SIZE {
            let class = SizeClass::for_size(size).unwrap();
            assert!(class.slot_size() >= size, "size {size}");
            if class.index() > 0 {
                let below = SizeClass(class.0 - 1);
                assert!(below.slot_size() < size, "size {size} not minimal");
            }
        }
        assert_eq!(SizeClass::for_size(0), None);
        assert_eq!(SizeClass::for_size(MAX_SMALL_SIZE + 1), None);
    }

    #[test]
    fn pow2_classes_keep_the_seed_guarantee() {
        for size in 1..=MAX_SMALL_SIZE {
            let class = SizeClass::for_size_pow2(size).unwrap();
            assert_eq!(class.slot_size(), size.next_power_of_two());
            assert!(class.align() >= size.next_power_of_two().min(MAX_SMALL_ALIGN));
        }
        assert_eq!(SizeClass::for_size_pow2(0), None);
        assert_eq!(SizeClass::for_size_pow2(8193), None);
        assert_eq!(SizeClass::for_size_pow2(1 << 31), None);
        assert_eq!(SizeClass::for_size_pow2(usize::MAX), None);
    }

    #[test]
    fn named_layouts_avoid_power_of_two_rounding() {
        assert_eq!(SizeClass::for_layout(24, 8).unwrap().slot_size(), 24);
        assert_eq!(SizeClass::for_layout(48, 8).unwrap().slot_size(), 48);
        assert_eq!(SizeClass::for_layout(100, 4).unwrap().slot_size(), 104);
        assert_eq!(SizeClass::for_layout(12, 4).unwrap().slot_size(), 12);
    }

    #[test]
    fn every_layout_gets_an_aligned_fitting_class_and_fits_rule_holds() {
        let mut align = 1;
        while align <= MAX_SMALL_ALIGN {
            for size in 1..=MAX_SMALL_SIZE {
                let class = SizeClass::for_layout(size, align).unwrap();
                assert!(class.slot_size() >= size);
                assert!(class.align() >= align, "size {size} align {align}");
                // Any size up to the usable length frees into the same class.
                for fit in [size, (size + class.slot_size()) / 2, class.slot_size()] {
                    assert_eq!(SizeClass::for_layout(fit, align), Some(class), "fit {fit}");
                }
            }
            align *= 2;
        }
        assert_eq!(SizeClass::for_layout(8193, 1), None);
        assert_eq!(SizeClass::for_layout(16, 8192), None);
    }

    #[test]
    fn rounding_costs_at_most_one_sixteenth_above_128() {
        for size in 129..=MAX_SMALL_SIZE {
            let class = SizeClass::for_size(size).unwrap();
            assert!(class.slot_size() * 16 <= size * 17, "size {size}");
        }
    }
}
