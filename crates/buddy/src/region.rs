//! The buddy core: a binary buddy allocator over one raw region, `no_std`, with no global allocator.
//!
//! Glossary:
//! - *order* `k`: a block of order `k` is `2^k` bytes and starts at an address that is a multiple of `2^k`
//!   (blocks are naturally aligned in absolute addresses, not only relative to the region).
//! - *arena*: the region's span widened to whole blocks of the maximum order. Parts of the arena outside the
//!   region (the prefix before an unaligned start, the tail after a length that is not a power of two, in-place
//!   metadata) are never put on a free list, so they behave as permanently allocated.
//! - *pair bit*: one bit per buddy pair and order, holding `free(A) XOR free(B)`; it flips on every insertion into
//!   and removal from a free list (Linux 2.4, bitsquid), so the merge check on free is one bit test.
//! - *live bit*: one bit per block and order, set while that block is handed out. It gives the order of a block for
//!   a free without a size, and turns double, foreign and interior frees into errors instead of corruption.
//!
//! Metadata costs about three bits per smallest block and lives either in a caller-provided buffer or at the end of
//! the region itself.

use core::ptr::NonNull;

use crate::asan;
use crate::bits::{align_down, align_up, ceil_log2, words_for_bits, Bitmap};
use crate::list::{FreeList, NODE_SIZE};

mod check;

/// One more than the largest order a block may have (`2^63` bytes on 64-bit targets).
pub const ORDER_LIMIT: u32 = usize::BITS - 1;

/// The smallest order a region may use: a free block has to hold its two list links.
pub const MIN_ORDER_FLOOR: u32 = ceil_log2(NODE_SIZE);

const ORDER_SLOTS: usize = usize::BITS as usize;

/// Why a region could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionInitError {
    /// `min_order` is below [`MIN_ORDER_FLOOR`], above `max_order`, or `max_order` is not below [`ORDER_LIMIT`].
    BadOrders,
    /// The region holds no whole smallest block (after in-place metadata, if any).
    TooSmall,
    /// The region, widened to whole maximum-order blocks, wraps past the end of the address space.
    AddressOverflow,
    /// The metadata buffer is smaller than [`Region::metadata_words`] says it must be.
    MetadataTooSmall,
    /// The metadata buffer overlaps the region.
    MetadataOverlapsRegion,
    /// The metadata buffer is not aligned for `u64`.
    MetadataMisaligned,
}

/// Why a block could not be freed. Nothing is changed when an error is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionFreeError {
    /// The pointer is outside the region.
    OutOfBounds,
    /// The pointer is not aligned to the smallest block, so it cannot start a block.
    Misaligned,
    /// The pointer lies inside a live block of this order, but not at its start.
    InteriorPointer {
        /// Order of the live block that contains the pointer.
        order: u32,
    },
    /// The order is outside the region's `min_order..=max_order`.
    BadOrder,
    /// A live block starts here, but of another order than the one given.
    WrongOrder {
        /// The order the block was allocated with.
        actual: u32,
    },
    /// No live block starts here: the block was already freed, or was never handed out.
    NotAllocated,
}

/// A snapshot of a region's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionStats {
    /// Bytes the region can hand out when everything is free (whole smallest blocks inside the region).
    pub managed_bytes: usize,
    /// Bytes in live blocks.
    pub allocated_bytes: usize,
    /// Bytes on the free lists (`managed_bytes - allocated_bytes`).
    pub free_bytes: usize,
    /// Number of live blocks.
    pub live_blocks: usize,
    /// Order of the largest free block, if any.
    pub largest_free_order: Option<u32>,
}

/// A block as seen by [`Region::for_each_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Start address.
    pub addr: usize,
    /// Order (the block is `2^order` bytes).
    pub order: u32,
    /// Whether the block is handed out (`true`) or on a free list (`false`).
    pub allocated: bool,
}

/// A buddy allocator over one region of memory.
///
/// The struct holds no pointer into itself, so it may be moved; the free lists live inside the free blocks and the
/// bitmaps in the metadata buffer.
#[derive(Debug)]
pub struct Region {
    /// Start of the arena, aligned to `2^max_order`.
    arena_base: usize,
    /// Length of the arena in smallest blocks.
    arena_blocks: usize,
    /// First byte that may be handed out (aligned to `2^min_order`).
    usable_start: usize,
    /// One past the last byte that may be handed out (aligned to `2^min_order`).
    usable_end: usize,
    min_order: u32,
    max_order: u32,
    lists: [FreeList; ORDER_SLOTS],
    /// Bit `k` is set when `lists[k]` is not empty: the next non-empty order is one `trailing_zeros` away.
    nonempty: u64,
    /// Pair bits of every order below `max_order`, then live bits of every order, in one bitmap.
    bits: Bitmap,
    /// First pair bit of order `k`.
    pair_base: [usize; ORDER_SLOTS],
    /// First live bit of order `k`.
    live_base: [usize; ORDER_SLOTS],
    managed_bytes: usize,
    allocated_bytes: usize,
    live_blocks: usize,
}

// SAFETY: a `Region` exclusively owns its memory and metadata (the contract of its constructors); nothing in it is
// tied to a thread, so handing it to another thread is sound. It is not `Sync`: every operation takes `&mut self`.
unsafe impl Send for Region {}

/// Geometry derived from a region's span and orders.
struct Geometry {
    arena_base: usize,
    arena_blocks: usize,
    usable_start: usize,
    usable_end: usize,
    pair_base: [usize; ORDER_SLOTS],
    live_base: [usize; ORDER_SLOTS],
    total_bits: usize,
}

impl Geometry {
    fn new(
        start: usize,
        len: usize,
        min_order: u32,
        max_order: u32,
    ) -> Result<Self, RegionInitError> {
        if min_order < MIN_ORDER_FLOOR || min_order > max_order || max_order >= ORDER_LIMIT {
            return Err(RegionInitError::BadOrders);
        }
        let end = start
            .checked_add(len)
            .ok_or(RegionInitError::AddressOverflow)?;
        let usable_start = align_up(start, min_order).ok_or(RegionInitError::TooSmall)?;
        let usable_end = align_down(end, min_order);
        if usable_start >= usable_end {
            return Err(RegionInitError::TooSmall);
        }
        let arena_base = align_down(usable_start, max_order);
        let arena_end = align_up(usable_end, max_order).ok_or(RegionInitError::AddressOverflow)?;
        // Arena length in smallest blocks; every per-order count below divides it by a power of two.
        let smallest_blocks = (arena_end.wrapping_sub(arena_base)) >> min_order;
        if smallest_blocks == 0 {
            // arena_end wrapped to 0: the arena ends exactly at the top of the address space.
            return Err(RegionInitError::AddressOverflow);
        }
        let mut pair_base = [0; ORDER_SLOTS];
        let mut live_base = [0; ORDER_SLOTS];
        let mut next_bit = 0usize;
        for order in min_order..max_order {
            pair_base[order as usize] = next_bit;
            next_bit += smallest_blocks >> (order - min_order + 1);
        }
        for order in min_order..=max_order {
            live_base[order as usize] = next_bit;
            next_bit += smallest_blocks >> (order - min_order);
        }
        Ok(Self {
            arena_base,
            arena_blocks: smallest_blocks,
            usable_start,
            usable_end,
            pair_base,
            live_base,
            total_bits: next_bit,
        })
    }
}

impl Region {
    /// How many `u64` metadata words a region over `len` bytes at `start` needs, or why it cannot be built.
    pub fn metadata_words(
        start: usize,
        len: usize,
        min_order: u32,
        max_order: u32,
    ) -> Result<usize, RegionInitError> {
        Geometry::new(start, len, min_order, max_order).map(|g| words_for_bits(g.total_bits))
    }

    /// Builds a region over `len` bytes at `start`, keeping its metadata in the caller's buffer.
    ///
    /// Blocks range from `2^min_order` to `2^max_order` bytes. The region need not be aligned nor a power of two
    /// long: the parts that do not form whole blocks are simply never handed out. If `metadata_zeroed` is false the
    /// metadata words are cleared here; pass true only for memory known to read as zero (fresh anonymous mappings),
    /// which is then touched lazily, page by page, as blocks are split.
    ///
    /// # Safety
    /// - `start..start + len` must be valid for reads and writes, and used by no one else, for as long as the region
    ///   (or anything it handed out) is used.
    /// - `metadata` must point to `metadata_len` writable, 8-byte aligned `u64` words with the same exclusivity,
    ///   not overlapping the region; if `metadata_zeroed` is true, they must all be zero.
    pub unsafe fn with_metadata(
        start: NonNull<u8>,
        len: usize,
        min_order: u32,
        max_order: u32,
        metadata: NonNull<u64>,
        metadata_len: usize,
        metadata_zeroed: bool,
    ) -> Result<Self, RegionInitError> {
        let geometry = Geometry::new(start.as_ptr() as usize, len, min_order, max_order)?;
        let words = words_for_bits(geometry.total_bits);
        if metadata_len < words {
            return Err(RegionInitError::MetadataTooSmall);
        }
        if !metadata.as_ptr().is_aligned() {
            return Err(RegionInitError::MetadataMisaligned);
        }
        let meta_start = metadata.as_ptr() as usize;
        let meta_end = meta_start.saturating_add(words * 8);
        if meta_start < geometry.usable_end && geometry.usable_start < meta_end {
            return Err(RegionInitError::MetadataOverlapsRegion);
        }
        // SAFETY: the caller guarantees `metadata_len >= words` exclusive, writable, aligned words.
        let bits = unsafe { Bitmap::from_raw(metadata, geometry.total_bits) };
        let mut region = Self {
            arena_base: geometry.arena_base,
            arena_blocks: geometry.arena_blocks,
            usable_start: geometry.usable_start,
            usable_end: geometry.usable_end,
            min_order,
            max_order,
            lists: core::array::from_fn(|_| FreeList::new()),
            nonempty: 0,
            bits,
            pair_base: geometry.pair_base,
            live_base: geometry.live_base,
            managed_bytes: geometry.usable_end - geometry.usable_start,
            allocated_bytes: 0,
            live_blocks: 0,
        };
        if !metadata_zeroed {
            region.bits.clear_all();
        }
        region.release_usable_span();
        Ok(region)
    }

    /// Builds a region over `len` bytes at `start` whose metadata is carved from the end of the region itself.
    ///
    /// # Safety
    /// `start..start + len` must be valid for reads and writes, and used by no one else, for as long as the region
    /// (or anything it handed out) is used.
    pub unsafe fn in_place(
        start: NonNull<u8>,
        len: usize,
        min_order: u32,
        max_order: u32,
    ) -> Result<Self, RegionInitError> {
        let begin = start.as_ptr() as usize;
        // Metadata sized for the whole span is enough for the smaller span left after carving it out.
        let words = Self::metadata_words(begin, len, min_order, max_order)?;
        let end = begin + len; // cannot overflow: `metadata_words` checked it
        let meta_start = end
            .checked_sub(words * 8)
            .map(|m| m & !7)
            .filter(|&m| m >= begin)
            .ok_or(RegionInitError::TooSmall)?;
        // SAFETY: `meta_start` lies within the caller's region (`begin <= meta_start`, and `meta_start + 8 * words
        // <= end`) and is 8-aligned and non-null (it is at least `begin`, which is non-null).
        let metadata = unsafe { NonNull::new_unchecked(meta_start as *mut u64) };
        // SAFETY: the caller's region is split in two disjoint parts: `begin..meta_start` for blocks and
        // `meta_start..meta_start + 8 * words` for metadata; both inherit the caller's guarantees.
        unsafe {
            Self::with_metadata(
                start,
                meta_start - begin,
                min_order,
                max_order,
                metadata,
                words,
                false,
            )
        }
    }

    /// Puts the whole usable span on the free lists as the largest naturally aligned blocks that fit.
    fn release_usable_span(&mut self) {
        let mut addr = self.usable_start;
        while addr < self.usable_end {
            let remaining = self.usable_end - addr;
            let mut order = self.max_order.min(addr.trailing_zeros());
            while (1usize << order) > remaining {
                order -= 1;
            }
            // `order >= min_order`: `addr` and `usable_end` are both multiples of `2^min_order`.
            self.merge_and_insert(addr, order);
            addr += 1usize << order;
        }
    }

    /// Smallest order of this region.
    pub const fn min_order(&self) -> u32 {
        self.min_order
    }

    /// Largest order of this region.
    pub const fn max_order(&self) -> u32 {
        self.max_order
    }

    /// First address that may be handed out.
    pub const fn usable_start(&self) -> usize {
        self.usable_start
    }

    /// One past the last address that may be handed out.
    pub const fn usable_end(&self) -> usize {
        self.usable_end
    }

    /// Whether `addr` lies in the span this region hands out.
    #[inline]
    pub const fn contains(&self, addr: usize) -> bool {
        addr >= self.usable_start && addr < self.usable_end
    }

    /// The order of a block that holds `size` bytes aligned to `align`, or `None` if no block of this region can.
    ///
    /// `size == 0` gets the smallest block. `align` must be a power of two (as in a `Layout`); other values get
    /// `None`.
    #[inline]
    pub fn order_for(&self, size: usize, align: usize) -> Option<u32> {
        if !align.is_power_of_two() {
            return None;
        }
        let order = ceil_log2(size.max(align)).max(self.min_order);
        (order <= self.max_order).then_some(order)
    }

    #[inline]
    fn pair_bit(&self, order: u32, addr: usize) -> usize {
        self.pair_base[order as usize] + ((addr - self.arena_base) >> (order + 1))
    }

    #[inline]
    fn live_bit(&self, order: u32, addr: usize) -> usize {
        self.live_base[order as usize] + ((addr - self.arena_base) >> order)
    }

    /// Inserts a free block into list `order`, flipping its pair bit.
    #[inline]
    fn insert_free(&mut self, addr: usize, order: u32) {
        if order < self.max_order {
            self.bits.toggle(self.pair_bit(order, addr));
        }
        asan::unpoison(addr, NODE_SIZE);
        // SAFETY: `addr` is a non-null block of `2^order >= NODE_SIZE` bytes inside the usable span, aligned to
        // `2^order >= align_of::<FreeNode>()`; it is free, so no one else uses it and it is on no list.
        unsafe {
            self.lists[order as usize].push(NonNull::new_unchecked(addr as *mut u8));
        }
        asan::poison(addr + NODE_SIZE, (1usize << order) - NODE_SIZE);
        self.nonempty |= 1 << order;
    }

    /// Removes a free block from list `order`, flipping its pair bit and clearing its links.
    #[inline]
    fn remove_free(&mut self, addr: usize, order: u32) {
        if order < self.max_order {
            self.bits.toggle(self.pair_bit(order, addr));
        }
        let list = &mut self.lists[order as usize];
        // SAFETY: callers only pass a block that is on list `order` (its pair bit said so, or it was just popped);
        // all blocks on the lists are valid free blocks of this region.
        unsafe { list.remove(NonNull::new_unchecked(addr as *mut u8)) };
        if list.is_empty() {
            self.nonempty &= !(1 << order);
        }
        Self::clear_links(addr);
    }

    /// Zeroes the links of a block that has just left its free list, so that the region gives memory back as it
    /// received it: an owner that frees only zeroed blocks into a zeroed region is handed zeroed blocks.
    #[inline(always)]
    fn clear_links(addr: usize) {
        // SAFETY: `addr` starts a block of this region (at least `NODE_SIZE` bytes, aligned for the node) that was
        // on a free list until now, so its link words are ours to write and addressable under ASan.
        unsafe { (addr as *mut u8).write_bytes(0, NODE_SIZE) };
    }

    /// Hands out a block of `2^order` bytes, aligned to `2^order`, or `None` if none is free.
    ///
    /// Orders below the region's smallest are served with the smallest block.
    #[inline]
    pub fn alloc(&mut self, order: u32) -> Option<NonNull<u8>> {
        let order = order.max(self.min_order);
        if order > self.max_order {
            return None;
        }
        let candidates = self.nonempty & (u64::MAX << order);
        if candidates == 0 {
            return None;
        }
        let mut current = candidates.trailing_zeros();
        let lists = &mut self.lists[current as usize];
        // SAFETY: the list's blocks are valid free blocks of this region; `candidates` says it is not empty.
        let block = unsafe { lists.pop() }?;
        if lists.is_empty() {
            self.nonempty &= !(1 << current);
        }
        let addr = block.as_ptr() as usize;
        if current < self.max_order {
            self.bits.toggle(self.pair_bit(current, addr));
        }
        Self::clear_links(addr);
        // Split down, keeping the lower half and freeing the upper one at each step.
        while current > order {
            current -= 1;
            self.insert_free(addr + (1usize << current), current);
        }
        let live = self.live_bit(order, addr);
        self.bits.set(live);
        asan::unpoison(addr, 1usize << order);
        self.allocated_bytes += 1usize << order;
        self.live_blocks += 1;
        Some(block)
    }

    /// Hands out a block that fits `size` bytes aligned to `align`, or `None`.
    #[inline]
    pub fn alloc_bytes(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        self.alloc(self.order_for(size, align)?)
    }

    /// Frees a block handed out with `order` (the fast path: no search for the order).
    ///
    /// Every misuse is reported and leaves the region unchanged: a pointer outside the region, a pointer that does
    /// not start a live block, the wrong order, a block freed twice.
    #[inline]
    pub fn free(&mut self, ptr: NonNull<u8>, order: u32) -> Result<(), RegionFreeError> {
        self.free_merged(ptr, order).map(|_| ())
    }

    /// As [`Region::free`], and returns the free block the freed one ended up in after merging with its free
    /// buddies: its start and order (the freed block itself when no buddy was free). An owner that returns free
    /// memory to the OS gives back that whole block.
    #[inline]
    pub fn free_merged(
        &mut self,
        ptr: NonNull<u8>,
        order: u32,
    ) -> Result<(NonNull<u8>, u32), RegionFreeError> {
        let addr = ptr.as_ptr() as usize;
        if !self.contains(addr) {
            return Err(RegionFreeError::OutOfBounds);
        }
        if order < self.min_order || order > self.max_order {
            return Err(RegionFreeError::BadOrder);
        }
        if addr & ((1usize << order) - 1) != 0 {
            return Err(self.diagnose_bad_free(addr));
        }
        let live = self.live_bit(order, addr);
        if !self.bits.test_and_clear(live) {
            return Err(self.diagnose_bad_free(addr));
        }
        self.allocated_bytes -= 1usize << order;
        self.live_blocks -= 1;
        let (merged, merged_order) = self.merge_and_insert(addr, order);
        // SAFETY: the merged block starts inside the region, so it is not null.
        Ok((
            unsafe { NonNull::new_unchecked(merged as *mut u8) },
            merged_order,
        ))
    }

    /// Frees a block that fits `size` bytes aligned to `align` (the inverse of [`Region::alloc_bytes`]).
    #[inline]
    pub fn free_bytes(
        &mut self,
        ptr: NonNull<u8>,
        size: usize,
        align: usize,
    ) -> Result<(), RegionFreeError> {
        let order = self
            .order_for(size, align)
            .ok_or(RegionFreeError::BadOrder)?;
        self.free(ptr, order)
    }

    /// Frees a block without being told its size: its order is read from the live bits.
    pub fn free_unsized(&mut self, ptr: NonNull<u8>) -> Result<(), RegionFreeError> {
        let order = self.live_order(ptr)?;
        self.free(ptr, order)
    }

    /// The order of the live block starting at `ptr`, or why there is none.
    pub fn live_order(&self, ptr: NonNull<u8>) -> Result<u32, RegionFreeError> {
        let addr = ptr.as_ptr() as usize;
        if !self.contains(addr) {
            return Err(RegionFreeError::OutOfBounds);
        }
        // A live block of order k can start here only if `addr` is a multiple of 2^k.
        let highest = self.max_order.min(addr.trailing_zeros());
        (self.min_order..=highest)
            .find(|&order| self.bits.get(self.live_bit(order, addr)))
            .ok_or_else(|| self.diagnose_bad_free(addr))
    }

    /// Explains why `addr` (inside the region) does not start a live block of the expected order. Cold path.
    #[cold]
    fn diagnose_bad_free(&self, addr: usize) -> RegionFreeError {
        for order in self.min_order..=self.max_order {
            let start = align_down(addr, order);
            if start >= self.usable_start && self.bits.get(self.live_bit(order, start)) {
                return if start == addr {
                    RegionFreeError::WrongOrder { actual: order }
                } else {
                    RegionFreeError::InteriorPointer { order }
                };
            }
        }
        if addr & ((1usize << self.min_order) - 1) != 0 {
            RegionFreeError::Misaligned
        } else {
            RegionFreeError::NotAllocated
        }
    }

    /// Merges a block that has just become free with its free buddies, then puts the result on a free list.
    ///
    /// The block goes on a list only once merging is over, so an address is never on two lists at once. Returns the
    /// block inserted.
    #[inline]
    fn merge_and_insert(&mut self, mut addr: usize, mut order: u32) -> (usize, u32) {
        while order < self.max_order {
            // The block itself is on no list, so its pair bit is set exactly when its buddy is free at this order.
            if !self.bits.get(self.pair_bit(order, addr)) {
                break;
            }
            let buddy = addr ^ (1usize << order);
            self.remove_free(buddy, order);
            addr &= !(1usize << order);
            order += 1;
        }
        self.insert_free(addr, order);
        (addr, order)
    }

    /// Frees every live block at once, restoring the region to its state just after construction.
    pub fn reset(&mut self) {
        asan::unpoison(self.usable_start, self.usable_end - self.usable_start);
        self.bits.clear_all();
        self.lists = core::array::from_fn(|_| FreeList::new());
        self.nonempty = 0;
        self.allocated_bytes = 0;
        self.live_blocks = 0;
        self.release_usable_span();
    }

    /// Makes the whole usable span addressable for AddressSanitizer again (under `--cfg classalloc_asan`; a no-op
    /// otherwise). Owners call it before giving the memory back, so that poisoned free blocks do not outlive the
    /// region in the sanitizer's shadow.
    pub fn unpoison_all(&self) {
        asan::unpoison(self.usable_start, self.usable_end - self.usable_start);
    }

    /// Current accounting.
    pub fn stats(&self) -> RegionStats {
        RegionStats {
            managed_bytes: self.managed_bytes,
            allocated_bytes: self.allocated_bytes,
            free_bytes: self.managed_bytes - self.allocated_bytes,
            live_blocks: self.live_blocks,
            largest_free_order: (self.nonempty != 0)
                .then(|| u64::BITS - 1 - self.nonempty.leading_zeros()),
        }
    }

    /// Bytes on the free lists.
    pub const fn available_bytes(&self) -> usize {
        self.managed_bytes - self.allocated_bytes
    }

    /// Bytes in live blocks.
    pub const fn allocated_bytes(&self) -> usize {
        self.allocated_bytes
    }

    /// Bytes the region hands out when everything is free.
    pub const fn managed_bytes(&self) -> usize {
        self.managed_bytes
    }

    /// Number of free blocks of `order`.
    pub fn free_block_count(&self, order: u32) -> usize {
        if order >= ORDER_LIMIT {
            return 0;
        }
        // SAFETY: the list's blocks are valid free blocks, and `&self` keeps the list unchanged.
        unsafe { self.lists[order as usize].iter(usize::MAX).count() }
    }

    /// Calls `visit` for every free block and every live block, in no particular order.
    pub fn for_each_block(&self, mut visit: impl FnMut(BlockInfo)) {
        for order in self.min_order..=self.max_order {
            // SAFETY: the list's blocks are valid free blocks, and `&self` keeps the list unchanged.
            for block in unsafe { self.lists[order as usize].iter(usize::MAX) } {
                visit(BlockInfo {
                    addr: block.as_ptr() as usize,
                    order,
                    allocated: false,
                });
            }
            // Live blocks of this order: the set bits of its live segment, skipping empty words.
            let base = self.live_base[order as usize];
            let count = self.arena_blocks >> (order - self.min_order);
            self.bits.for_each_set(base, base + count, |bit| {
                visit(BlockInfo {
                    addr: self.arena_base + ((bit - base) << order),
                    order,
                    allocated: true,
                });
            });
        }
    }
}
