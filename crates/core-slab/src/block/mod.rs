//! Blocks: a header at the base of a power-of-two, self-aligned region, then the slots.
//!
//! Two layouts share one interface ([`Block`]) so the head's list and lock protocol is written once:
//! - [`IndexedHeader`]: slots addressed by a 16- or 32-bit index; a free slot holds the index of the next
//!   free slot, never-used slots come from a bump index (classes 2 B and up);
//! - [`TinyHeader`]: class 1 B, one page of sub-blocks whose 1-byte slots hold 8-bit indices.
//!
//! Locking: a block's own lock guards its slot state (free list, bump index, live count, pending count);
//! its list links belong to its head and are only touched under the head's lock.

mod indexed;
mod tiny;

pub(crate) use indexed::IndexedHeader;
pub(crate) use tiny::{TinyHeader, TINY_SLOTS_PER_SUBBLOCK, TINY_SUBBLOCKS, TINY_SUBBLOCK_DATA};

use crate::error::FreeError;

/// Evaluates `$body` with `$block` naming the header type of `$kind` (a [`BlockKind`]), so one generic
/// call serves the three block layouts.
///
/// [`BlockKind`]: crate::geometry::BlockKind
macro_rules! with_block_type {
    ($kind:expr, $block:ident => $body:expr) => {
        match $kind {
            $crate::geometry::BlockKind::Tiny => {
                type $block = $crate::block::TinyHeader;
                $body
            }
            $crate::geometry::BlockKind::Index16 => {
                type $block = $crate::block::IndexedHeader<u16>;
                $body
            }
            $crate::geometry::BlockKind::Index32 => {
                type $block = $crate::block::IndexedHeader<u32>;
                $body
            }
        }
    };
}
use crate::geometry::ClassLayout;
use crate::os::PAGE_SIZE;
use crate::sync::Lock;
use core::ptr::NonNull;
pub(crate) use with_block_type;

/// A slot taken from a block.
pub(crate) struct Popped {
    pub(crate) slot: NonNull<u8>,
    /// The slot has never been handed out since the block was mapped, so it is still zero.
    pub(crate) fresh: bool,
    /// Bytes of the block that became resident by handing this slot out (bump allocation into new pages).
    pub(crate) new_resident: usize,
}

/// What a slot's return changed.
pub(crate) struct Pushed {
    /// The block had no free slot before (so it is not on its head's list).
    pub(crate) was_full: bool,
    /// The block holds no live slot any more.
    pub(crate) now_empty: bool,
}

/// Slots taken in one batch for a thread cache, linked through their first words.
pub(crate) struct Batch {
    /// The first slot (null when none was free).
    pub(crate) first: *mut u8,
    /// The last slot; its link is left unwritten for the caller to end or extend the list.
    pub(crate) last: *mut u8,
    pub(crate) count: u32,
    /// Bytes of the block that became resident by handing these slots out.
    pub(crate) new_resident: usize,
}

/// What returning a run of a thread cache's slots to one block changed.
pub(crate) struct Run {
    /// The first listed slot after the run (in another block), or null at the end of the list.
    pub(crate) rest: *mut u8,
    /// The block had no free slot before the run.
    pub(crate) was_full: bool,
    /// The block holds no live slot after the run.
    pub(crate) now_empty: bool,
    /// The first slot of the run that was refused, and why (the others still went back).
    pub(crate) refused: Option<(FreeError, NonNull<u8>)>,
}

/// Which of its head's lists a block is on (guarded by the head lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ListTag {
    /// On no list: being set up, or about to be unmapped.
    None,
    /// On the list of blocks with a free slot.
    Partial,
    /// On the list of full blocks (or pending a move off it).
    Full,
}

/// The interface the head needs from a block header.
///
/// # Safety
/// Implementors are `#[repr(C)]` headers that fit before `ClassLayout::data_offset` and hold only
/// interior-mutable state, so shared references to them never overlap slot memory.
pub(crate) unsafe trait Block: Sized {
    /// Writes the header of a block from the page source and returns it.
    ///
    /// # Safety
    /// `base` is the start of a writable block of `layout.block_size()` bytes aligned to its size, not yet
    /// shared with anyone, whose bytes from `dirty` on are zero and not resident (the page source's
    /// grant); the reference is used only while the block stays mapped.
    unsafe fn init<'a>(
        base: NonNull<u8>,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
        dirty: usize,
    ) -> &'a Self;

    /// The header of the block at `base`.
    ///
    /// # Safety
    /// `base` holds an initialised header of this type, and stays mapped while the reference is used.
    #[inline(always)]
    unsafe fn at<'a>(base: NonNull<u8>) -> &'a Self {
        // SAFETY: per the contract, `base` points at a live header of type Self.
        unsafe { base.cast::<Self>().as_ref() }
    }

    /// Drops the header in place before the block is unmapped (loom's primitives must be dropped).
    ///
    /// # Safety
    /// No reference to the header is used afterwards and its lock is not held.
    unsafe fn destroy(base: NonNull<u8>) {
        if crate::checked::CHECKED {
            crate::checked::unregister_block(base);
        }
        // SAFETY: per the contract the header is initialised and no longer used.
        unsafe { core::ptr::drop_in_place(base.cast::<Self>().as_ptr()) }
    }

    /// Whether `offset` from a block's base starts one of its slots (arithmetic only, no state read).
    fn is_slot_start(offset: usize, layout: &ClassLayout) -> bool;

    /// Whether the slot starting at `offset` has ever been handed out (it lies below the bump index).
    ///
    /// # Safety
    /// The caller holds the block's lock; `offset` starts a slot (`is_slot_start`).
    unsafe fn was_handed_out(&self, offset: usize, layout: &ClassLayout) -> bool;

    /// Whether a block mapped at `base` can be put on a list (compressed links need small addresses).
    fn can_link(_base: NonNull<u8>, _layout: &ClassLayout) -> bool {
        true
    }

    /// The block's lock.
    fn lock(&self) -> &Lock;

    /// The size class index written at initialisation.
    fn class(&self) -> u8;

    /// The owner tag of the slab that mapped the block, written at initialisation.
    fn owner(&self) -> u8;

    /// Takes a free slot, if any.
    ///
    /// # Safety
    /// The caller holds the block's lock; `layout` is the block's class layout.
    unsafe fn pop(&self, layout: &ClassLayout) -> Option<Popped>;

    /// Returns the slot at `ptr`, validating that it is a slot start that was handed out.
    ///
    /// # Safety
    /// The caller holds the block's lock; `ptr` lies in this block; `layout` is the block's class layout.
    unsafe fn push(&self, ptr: NonNull<u8>, layout: &ClassLayout) -> Result<Pushed, FreeError>;

    /// Takes up to `want` slots (at least [`MIN_CACHED_SLOT`](crate::cache::MIN_CACHED_SLOT) bytes each)
    /// for a thread cache, linking each to the next through its first word.
    ///
    /// # Safety
    /// The caller holds the block's lock; `layout` is the block's class layout, whose slots can hold a
    /// link.
    unsafe fn pop_batch(&self, layout: &ClassLayout, want: u32) -> Batch {
        let mut batch = Batch {
            first: core::ptr::null_mut(),
            last: core::ptr::null_mut(),
            count: 0,
            new_resident: 0,
        };
        while batch.count < want {
            // SAFETY: forwarded contract.
            let Some(popped) = (unsafe { self.pop(layout) }) else {
                break;
            };
            let slot = popped.slot.as_ptr();
            if batch.first.is_null() {
                batch.first = slot;
            } else {
                // SAFETY: the previous slot is ours and large enough for a link.
                unsafe { crate::cache::write_link(batch.last, slot) };
            }
            batch.last = slot;
            batch.count += 1;
            batch.new_resident += popped.new_resident;
        }
        batch
    }

    /// Returns the run of listed slots that starts at `first` and lies in this block (the list goes on
    /// through the slots' first words until null or a slot of another block).
    ///
    /// # Safety
    /// The caller holds the block's lock; `first` lies in this block; every listed slot lies in a mapped
    /// block of the same class size; `layout` is the block's class layout.
    unsafe fn push_run(&self, first: NonNull<u8>, layout: &ClassLayout) -> Run {
        let base = self as *const Self as usize;
        let mask = !(layout.block_size() - 1);
        let mut run = Run {
            rest: core::ptr::null_mut(),
            was_full: false,
            now_empty: false,
            refused: None,
        };
        let mut slot = first;
        let mut first_push = true;
        loop {
            // SAFETY: listed slots hold their link until pushed.
            let next = unsafe { crate::cache::read_link(slot.as_ptr()) };
            // SAFETY: forwarded contract.
            match unsafe { self.push(slot, layout) } {
                Ok(pushed) => {
                    run.was_full |= first_push && pushed.was_full;
                    run.now_empty = pushed.now_empty;
                    first_push = false;
                }
                Err(error) => {
                    run.refused = run.refused.or(Some((error, slot)));
                }
            }
            match NonNull::new(next) {
                Some(next) if next.as_ptr() as usize & mask == base => slot = next,
                _ => {
                    run.rest = next;
                    return run;
                }
            }
        }
    }

    /// Whether a `pop` would succeed.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn has_free(&self, layout: &ClassLayout) -> bool;

    /// Whether no slot is live.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn is_empty(&self) -> bool;

    /// Number of live slots.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn live(&self) -> usize;

    /// Bytes of the block that may be resident or non-zero: the header page, the slots handed out, and
    /// the dirty prefix the block came with.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn resident_bytes(&self, layout: &ClassLayout) -> usize;

    /// Threads that released this block's lock to take its head's lock and settle its list membership;
    /// a block with pending threads is never unmapped.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn pending(&self) -> u8;

    /// Sets the pending count.
    ///
    /// # Safety
    /// The caller holds the block's lock.
    unsafe fn set_pending(&self, pending: u8);

    /// Which list the block is on.
    ///
    /// # Safety
    /// The caller holds the head's lock.
    unsafe fn list(&self) -> ListTag;

    /// Records which list the block is on.
    ///
    /// # Safety
    /// The caller holds the head's lock.
    unsafe fn set_list(&self, list: ListTag);

    /// The next block on the head's list (null at the end).
    ///
    /// # Safety
    /// The caller holds the head's lock.
    unsafe fn next(&self, layout: &ClassLayout) -> *mut u8;

    /// The previous block on the head's list (null at the front or when not listed).
    ///
    /// # Safety
    /// The caller holds the head's lock.
    unsafe fn prev(&self, layout: &ClassLayout) -> *mut u8;

    /// Sets the next link.
    ///
    /// # Safety
    /// The caller holds the head's lock; `next` is null or a block of the same class.
    unsafe fn set_next(&self, next: *mut u8, layout: &ClassLayout);

    /// Sets the previous link.
    ///
    /// # Safety
    /// The caller holds the head's lock; `prev` is null or a block of the same class.
    unsafe fn set_prev(&self, prev: *mut u8, layout: &ClassLayout);
}

/// Bytes the allocator has made resident in an indexed block whose first `bump` slots were handed out:
/// the header page, plus every page the handed-out slots touch.
pub(crate) const fn touched_bytes(layout: &ClassLayout, bump: usize) -> usize {
    let data_offset = layout.data_offset as usize;
    if bump == 0 {
        return PAGE_SIZE;
    }
    let end = data_offset + bump * layout.slot_size as usize;
    let end_page = (end + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let first_data_page = data_offset & !(PAGE_SIZE - 1);
    let data = end_page - first_data_page;
    if first_data_page == 0 {
        data
    } else {
        PAGE_SIZE + data
    }
}

/// Aborts on a free list that points outside the handed-out slots: a write into a freed slot (use after
/// free) corrupted it, and going on would hand out memory outside the block.
#[cold]
#[inline(never)]
pub(crate) fn corrupted_free_list(class_slot_size: u32, next: usize) -> ! {
    crate::fatal::abort_with(format_args!(
        "free list of the {class_slot_size} B class is corrupted (next index {next}): a freed slot was \
         written to (use after free?)"
    ))
}
