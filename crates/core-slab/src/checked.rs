//! Checked mode: every free verified against a registry of live blocks before it touches anything.
//!
//! On in builds with the `checked` feature and in every debug build (so the test suites run with it);
//! release builds keep the zero-metadata fast path and compile this away ([`CHECKED`] is a constant).
//!
//! The registry maps each mapped block's base to a bitmap, kept outside the block, with one bit per
//! `slot_size` step from the base: set while the slot there is handed out to a user. Slots held in
//! thread caches count as free. A free is accepted only if its pointer's block (found by masking with the
//! stated class's block size) is registered, belongs to that class and slab, the pointer is a slot start,
//! and the slot's bit is set. One process-wide lock guards the registry, so a block cannot be unmapped
//! while a free is being checked against it.

use crate::addr_table::{AddrTable, Keyed};
use crate::error::FreeError;
use crate::pages::{self, Need, Return, MIN_ORDER};
use core::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

/// Whether this build checks every free (the `checked` feature, or a debug build).
pub const CHECKED: bool = cfg!(any(feature = "checked", debug_assertions));

/// The bitmap mapping's header, before the bits.
#[repr(C)]
struct BitmapHeader {
    /// Log2 of the bytes taken from the page source for the header and the bits.
    order: u32,
    /// Bytes between two bits' addresses (the class's slot size).
    slot_size: usize,
    class: u8,
    owner: u8,
}

/// The process-wide registry; std's lock even under loom (the registry is not part of the models, and
/// checked mode is off in loom's release builds).
struct Registry {
    table: AddrTable<Block>,
}

/// A registered block: its base and the address of its bitmap.
#[derive(Clone, Copy)]
struct Block {
    base: usize,
    bitmap: usize,
}

impl Keyed for Block {
    const EMPTY: Block = Block { base: 0, bitmap: 0 };
    fn addr(&self) -> usize {
        self.base
    }
}

// SAFETY: the table's memory is only reached under the mutex.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    table: AddrTable::EMPTY,
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics under this lock; a poisoned lock still guards consistent data.
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    fn bitmap(&self, base: usize) -> Option<NonNull<BitmapHeader>> {
        let index = self.table.find(base)?;
        // SAFETY: `find` returned an index below the capacity.
        let value = unsafe { (*self.table.entry(index)).bitmap };
        NonNull::new(value as *mut BitmapHeader)
    }
}

/// Bit `index` of a bitmap: the word and the mask.
///
/// # Safety
/// `header` is a registered bitmap and `index` is below its bit count.
unsafe fn bit(header: NonNull<BitmapHeader>, index: usize) -> (*mut u64, u64) {
    // SAFETY: the bits follow the header in the same mapping, sized for every index.
    let words = unsafe { header.as_ptr().add(1).cast::<u64>() };
    // SAFETY: per the contract the word lies in the mapping.
    (unsafe { words.add(index / 64) }, 1u64 << (index % 64))
}

/// Registers a freshly mapped block; `false` when the OS refused memory for its bitmap (the block must
/// then not be used).
pub(crate) fn register_block(
    base: NonNull<u8>,
    block_size: usize,
    slot_size: usize,
    class: u8,
    owner: u8,
) -> bool {
    let bits = block_size / slot_size;
    let bytes = core::mem::size_of::<BitmapHeader>() + bits.div_ceil(64) * 8;
    let order = bytes.next_power_of_two().trailing_zeros().max(MIN_ORDER);
    // From the page source, like the blocks: no system call per block.
    let Some(grant) = pages::source().alloc(order, Need::Zeroed) else {
        return false;
    };
    let header = grant.ptr.cast::<BitmapHeader>();
    // SAFETY: a zeroed block of the source, aligned to its size, large enough for the header and bits.
    unsafe {
        header.as_ptr().write(BitmapHeader {
            order,
            slot_size,
            class,
            owner,
        })
    };
    if registry().table.insert(Block {
        base: base.as_ptr() as usize,
        bitmap: header.as_ptr() as usize,
    }) {
        true
    } else {
        // SAFETY: just handed out, never shared.
        unsafe { pages::source().free(grant.ptr, order, 1 << order, Return::Lazy) };
        false
    }
}

/// Forgets a block about to be unmapped.
pub(crate) fn unregister_block(base: NonNull<u8>) {
    let mut registry = registry();
    let Some(index) = registry.table.find(base.as_ptr() as usize) else {
        return;
    };
    // SAFETY: `find` returned an index below the capacity.
    let value = unsafe { (*registry.table.entry(index)).bitmap };
    registry.table.remove_at(index);
    drop(registry);
    if let Some(header) = NonNull::new(value as *mut BitmapHeader) {
        // SAFETY: the bitmap came from the source in `register_block` and is unlisted, so nothing
        // reaches it.
        unsafe {
            let order = header.as_ref().order;
            pages::source().free(header.cast(), order, 1 << order, Return::Lazy);
        }
    }
}

/// Records that `slot` (in the block at `base`) was handed out to a user; a slot handed out twice is an
/// allocator bug, and aborts.
pub(crate) fn on_alloc(base: usize, slot: NonNull<u8>) {
    let registry = registry();
    let Some(header) = registry.bitmap(base) else {
        crate::fatal::abort_with(format_args!(
            "allocator bug: slot {slot:p} handed out from an unregistered block"
        ));
    };
    // SAFETY: the block is registered (its bitmap is live under the lock) and the slot lies in it.
    unsafe {
        let index = (slot.as_ptr() as usize - base) / header.as_ref().slot_size;
        let (word, mask) = bit(header, index);
        if *word & mask != 0 {
            crate::fatal::abort_with(format_args!(
                "allocator bug: slot {slot:p} handed out while live"
            ));
        }
        *word |= mask;
    }
}

/// What a free claims: the class (and its block size), the slab's owner tag, and how to tell a slot start.
pub(crate) struct Claim<'a> {
    pub(crate) class: u8,
    pub(crate) owner: u8,
    pub(crate) block_size: usize,
    /// Every block size of the slab's geometry, to tell a wrong size from a foreign pointer.
    pub(crate) block_sizes: &'a [usize],
    /// Whether `offset` from the block base starts a slot of the class.
    pub(crate) is_slot_start: &'a dyn Fn(usize) -> bool,
    /// Whether the slot at `offset` was ever handed out (called with the block registered).
    pub(crate) was_handed_out: &'a dyn Fn(usize) -> bool,
}

/// Checks a free against the registry and, if it is valid, marks the slot free; on an error nothing
/// changes.
pub(crate) fn on_free(ptr: NonNull<u8>, claim: &Claim<'_>) -> Result<(), FreeError> {
    let addr = ptr.as_ptr() as usize;
    let base = addr & !(claim.block_size - 1);
    let registry = registry();
    let Some(header) = registry.bitmap(base) else {
        let in_other_block = claim
            .block_sizes
            .iter()
            .any(|&size| registry.bitmap(addr & !(size - 1)).is_some());
        return Err(if in_other_block {
            FreeError::ClassMismatch
        } else {
            FreeError::Foreign
        });
    };
    // SAFETY: registered under the lock, so the bitmap is mapped; the index is below the bit count
    // because the offset is below the block size.
    unsafe {
        let tags = header.as_ref();
        if tags.class != claim.class {
            return Err(FreeError::ClassMismatch);
        }
        if tags.owner != claim.owner {
            return Err(FreeError::OwnerMismatch);
        }
        let offset = addr - base;
        if !(claim.is_slot_start)(offset) {
            return Err(FreeError::NotASlot);
        }
        let (word, mask) = bit(header, offset / tags.slot_size);
        if *word & mask == 0 {
            return Err(if (claim.was_handed_out)(offset) {
                FreeError::DoubleFree
            } else {
                FreeError::NotASlot
            });
        }
        *word &= !mask;
    }
    Ok(())
}

/// The owner tag of the registered block at `base`, if there is one (checked mode reads tags from the
/// registry, so a pointer into a released block is never dereferenced).
pub(crate) fn owner_of(base: usize) -> Option<u8> {
    let registry = registry();
    // SAFETY: registered under the lock, so the bitmap header is mapped.
    registry
        .bitmap(base)
        .map(|header| unsafe { header.as_ref().owner })
}
