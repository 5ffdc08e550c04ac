//! Block geometry: how big each class's blocks are and how many slots they hold, fixed at compile time.
//!
//! A block is a power of two in size and aligned to its size, so a free finds the block header by masking
//! the pointer. The header sits at the start; slots follow at `data_offset`, which is the header size
//! rounded up to the slot alignment (for power-of-two classes from 32 B up: the slot size, as in the seed).
//! A configuration is a [`Geometry`] named by a [`SlabConfig`]; it is checked when the slab type is
//! instantiated, so a block size that is not a power of two, a geometry whose slots do not fit, or a slot
//! count that overflows the class's index type is a compile error (the seed's `ALLOCn_MAX` /
//! `ALLOCn_EXPECTED_SIZE` checks).

use crate::block::{IndexedHeader, TINY_SLOTS_PER_SUBBLOCK, TINY_SUBBLOCKS, TINY_SUBBLOCK_DATA};
use crate::class::{SizeClass, CLASS_COUNT};

/// The block size of class 1 B: one page, as in the seed (not configurable: a page is the smallest unit).
pub const TINY_BLOCK_SHIFT: u32 = 12;
/// The largest block size of class 2 B: 16-bit slot indices cap it at 128 KiB.
pub const MAX_INDEX16_BLOCK_SHIFT: u32 = 17;
/// The largest block size of the other classes (16 MiB keeps slot-index division exact).
pub const MAX_BLOCK_SHIFT: u32 = 24;
/// The smallest block size of classes 2 B and up. Block links are stored as 32-bit block numbers
/// (address >> block shift), which needs blocks of at least 64 KiB for 48-bit addresses. Under loom the
/// links are plain pointers and small blocks make small models.
#[cfg(not(loom))]
pub const MIN_BLOCK_SHIFT: u32 = 16;
/// The smallest block size of classes 2 B and up (loom builds: plain-pointer links).
#[cfg(loom)]
pub const MIN_BLOCK_SHIFT: u32 = 12;

/// A compile-time block geometry: a block size and a slot cap per size class.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    block_shift: [u8; CLASS_COUNT],
    max_slots: [u32; CLASS_COUNT],
}

/// Names a geometry for a [`Slab`](crate::Slab): `Slab<MyConfig>`.
///
/// ```
/// use classalloc_slab::{Geometry, Slab, SlabConfig};
///
/// /// 256 KiB blocks everywhere, and at most 1000 slots of 64 bytes per block.
/// struct Small;
/// impl SlabConfig for Small {
///     const GEOMETRY: Geometry = Geometry::SEED.with_block_shift_all(18).with_max_slots(64, 1000);
/// }
/// let slab = Slab::<Small>::with_config();
/// let layout = core::alloc::Layout::new::<[u64; 8]>();
/// let ptr = slab.alloc(layout).unwrap();
/// // SAFETY: allocated just above with the same layout.
/// unsafe { slab.dealloc(ptr.cast(), layout).unwrap() };
/// ```
///
/// An invalid geometry does not compile:
///
/// ```compile_fail
/// use classalloc_slab::{Geometry, Slab, SlabConfig};
/// struct TooManyTwoByteSlots;
/// impl SlabConfig for TooManyTwoByteSlots {
///     // 256 KiB of 2-byte slots overflows 16-bit slot indices.
///     const GEOMETRY: Geometry = Geometry::SEED.with_block_shift(2, 18);
/// }
/// let slab = Slab::<TooManyTwoByteSlots>::with_config();
/// ```
pub trait SlabConfig: 'static {
    /// The geometry of every class.
    const GEOMETRY: Geometry;
}

/// The seed's geometry: 4 KiB for 1 B, 128 KiB for 2 B, 1 MiB for everything else, slots as many as fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedConfig;

impl SlabConfig for SeedConfig {
    const GEOMETRY: Geometry = Geometry::SEED;
}

impl Geometry {
    /// The seed's geometry.
    pub const SEED: Geometry = {
        let mut block_shift = [20u8; CLASS_COUNT];
        block_shift[0] = TINY_BLOCK_SHIFT as u8;
        block_shift[1] = MAX_INDEX16_BLOCK_SHIFT as u8;
        Geometry {
            block_shift,
            max_slots: [u32::MAX; CLASS_COUNT],
        }
    };

    /// Sets the block size (`1 << shift`) of the class whose slot size is `slot_size`.
    pub const fn with_block_shift(mut self, slot_size: usize, shift: u32) -> Self {
        let class = class_of_slot(slot_size);
        self.block_shift[class.index()] = shift as u8;
        self
    }

    /// Sets the block size of every class from 4 B up (class 1 B keeps its page, class 2 B its 16-bit
    /// limit: it gets `min(shift, 17)`).
    pub const fn with_block_shift_all(mut self, shift: u32) -> Self {
        let mut index = 1;
        while index < CLASS_COUNT {
            self.block_shift[index] = if index == 1 && shift > MAX_INDEX16_BLOCK_SHIFT {
                MAX_INDEX16_BLOCK_SHIFT as u8
            } else {
                shift as u8
            };
            index += 1;
        }
        self
    }

    /// Caps the number of slots per block of the class whose slot size is `slot_size`.
    pub const fn with_max_slots(mut self, slot_size: usize, max_slots: u32) -> Self {
        let class = class_of_slot(slot_size);
        self.max_slots[class.index()] = max_slots;
        self
    }
}

const fn class_of_slot(slot_size: usize) -> SizeClass {
    match SizeClass::for_size(slot_size) {
        Some(class) if class.slot_size() == slot_size => class,
        _ => panic!("classalloc: no size class has this slot size"),
    }
}

/// How a block lays out its slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// Class 1 B: one page of 8-bit-indexed sub-blocks.
    Tiny,
    /// 16-bit slot indices (class 2 B).
    Index16,
    /// 32-bit slot indices (classes 4 B and up).
    Index32,
}

/// A class's resolved geometry, as the slab uses it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClassLayout {
    pub(crate) kind: BlockKind,
    pub(crate) slot_size: u32,
    pub(crate) block_shift: u32,
    pub(crate) data_offset: u32,
    pub(crate) capacity: u32,
    /// `ceil(2^40 / slot_size)`: slot index = (offset * div_magic) >> 40, exact for offsets below 2^24.
    pub(crate) div_magic: u64,
}

impl ClassLayout {
    #[inline(always)]
    pub(crate) const fn block_size(&self) -> usize {
        1 << self.block_shift
    }

    /// The slot index of byte offset `offset` from the first slot, without a division.
    #[inline(always)]
    pub(crate) const fn slot_index(&self, offset: usize) -> usize {
        ((offset as u64 * self.div_magic) >> 40) as usize
    }
}

/// The public view of one class's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGeometry {
    /// Bytes per slot.
    pub slot_size: usize,
    /// Bytes per block (a power of two; blocks are aligned to it).
    pub block_size: usize,
    /// Offset of the first slot: the header padded to the slot alignment.
    pub data_offset: usize,
    /// Slots per block.
    pub capacity: usize,
}

impl From<&ClassLayout> for BlockGeometry {
    fn from(layout: &ClassLayout) -> Self {
        Self {
            slot_size: layout.slot_size as usize,
            block_size: layout.block_size(),
            data_offset: layout.data_offset as usize,
            capacity: layout.capacity as usize,
        }
    }
}

/// Resolves and checks a geometry; every failed check is a compile error where the slab is instantiated.
pub(crate) const fn resolve(geometry: &Geometry) -> [ClassLayout; CLASS_COUNT] {
    let mut layouts = [ClassLayout {
        kind: BlockKind::Tiny,
        slot_size: 0,
        block_shift: 0,
        data_offset: 0,
        capacity: 0,
        div_magic: 0,
    }; CLASS_COUNT];
    let mut index = 0;
    while index < CLASS_COUNT {
        let class = match SizeClass::from_index(index) {
            Some(class) => class,
            None => panic!("unreachable: index below CLASS_COUNT"),
        };
        let slot_size = class.slot_size();
        let shift = geometry.block_shift[index] as u32;
        let max_slots = geometry.max_slots[index];
        assert!(
            max_slots >= 1,
            "classalloc: a block must hold at least one slot"
        );
        let (kind, data_offset, capacity) = if index == 0 {
            assert!(
                shift == TINY_BLOCK_SHIFT,
                "classalloc: class 1 B always uses one 4 KiB page"
            );
            let capacity = TINY_SUBBLOCKS * TINY_SLOTS_PER_SUBBLOCK;
            (BlockKind::Tiny, TINY_SUBBLOCK_DATA, capacity)
        } else {
            assert!(
                shift >= MIN_BLOCK_SHIFT && shift <= MAX_BLOCK_SHIFT,
                "classalloc: block size out of range (64 KiB ..= 16 MiB)"
            );
            let (kind, header, index_limit) = if index == 1 {
                assert!(
                    shift <= MAX_INDEX16_BLOCK_SHIFT,
                    "classalloc: 2-byte slots use 16-bit indices: at most 128 KiB blocks"
                );
                (
                    BlockKind::Index16,
                    core::mem::size_of::<IndexedHeader<u16>>(),
                    u16::MAX as usize,
                )
            } else {
                (
                    BlockKind::Index32,
                    core::mem::size_of::<IndexedHeader<u32>>(),
                    u32::MAX as usize,
                )
            };
            let align = class.align();
            let data_offset = (header + align - 1) & !(align - 1);
            let block = 1usize << shift;
            assert!(
                data_offset + slot_size <= block,
                "classalloc: the block is too small for its header and one slot"
            );
            let fit = (block - data_offset) / slot_size;
            let capacity = if fit < max_slots as usize {
                fit
            } else {
                max_slots as usize
            };
            // The index type's MAX marks the end of the free list.
            assert!(
                capacity < index_limit,
                "classalloc: too many slots for the class's slot-index type"
            );
            (kind, data_offset, capacity)
        };
        layouts[index] = ClassLayout {
            kind,
            slot_size: slot_size as u32,
            block_shift: shift,
            data_offset: data_offset as u32,
            capacity: capacity as u32,
            div_magic: (1u64 << 40).div_ceil(slot_size as u64),
        };
        index += 1;
    }
    layouts
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [ClassLayout; CLASS_COUNT] = resolve(&Geometry::SEED);

    fn layout(slot: usize) -> ClassLayout {
        SEED[SizeClass::for_size(slot).unwrap().index()]
    }

    #[cfg(not(loom))]
    #[test]
    fn seed_geometry_matches_the_seed_table() {
        // (slot size, block size, slots): the seed's table, at least as many slots.
        let expected = [
            (2, 128 << 10, 65521),
            (4, 1 << 20, 262135),
            (8, 1 << 20, 131067),
            (16, 1 << 20, 65533),
            (32, 1 << 20, 32766),
            (64, 1 << 20, 16383),
            (4096, 1 << 20, 255),
            (8192, 1 << 20, 127),
        ];
        for (slot, block, slots) in expected {
            let l = layout(slot);
            assert_eq!(l.block_size(), block, "slot {slot}");
            assert!(
                l.capacity as usize >= slots,
                "slot {slot}: {} slots",
                l.capacity
            );
        }
        assert!(SEED[0].capacity >= 4000);
    }

    #[test]
    fn slot_index_division_is_exact_at_every_slot_boundary() {
        for l in SEED.iter().skip(1) {
            let size = l.slot_size as usize;
            for slot in 0..l.capacity as usize {
                assert_eq!(l.slot_index(slot * size), slot);
                assert_eq!(l.slot_index(slot * size + size - 1), slot);
            }
        }
        // The largest blocks allowed: 16 MiB of the worst divisors.
        for size in [12usize, 24, 104, 4352, 7936, 8192] {
            let magic = (1u64 << 40).div_ceil(size as u64);
            let mut offset = (1usize << MAX_BLOCK_SHIFT) - 1;
            for _ in 0..10_000 {
                assert_eq!(((offset as u64 * magic) >> 40) as usize, offset / size);
                offset -= 1;
            }
        }
    }

    #[test]
    fn slots_are_aligned_to_the_class_alignment() {
        for class in SizeClass::all() {
            let l = &SEED[class.index()];
            assert_eq!(l.data_offset as usize % class.align(), 0, "{class:?}");
            assert!(
                l.data_offset as usize + l.capacity as usize * l.slot_size as usize
                    <= l.block_size()
            );
        }
    }
}
