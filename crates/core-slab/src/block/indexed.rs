//! Blocks whose slots are addressed by a 16- or 32-bit index (classes 2 B and up).

use super::{corrupted_free_list, touched_bytes, Batch, Block, ListTag, Popped, Pushed, Run};
use crate::cache::{read_link, write_link};
use crate::error::FreeError;
use crate::geometry::ClassLayout;
use crate::sync::{new_lock, read, write, Lock, UnsafeCell};
use core::ptr::NonNull;

/// A slot index type: its `MAX` ends the free list, so a block holds at most `MAX - 1` slots.
pub(crate) trait SlotIndex: Copy + Eq {
    const END: Self;
    const ZERO: Self;
    fn to_usize(self) -> usize;
    /// `value` is below `END` (guaranteed by the geometry's capacity check).
    fn from_usize(value: usize) -> Self;
}

impl SlotIndex for u16 {
    const END: Self = u16::MAX;
    const ZERO: Self = 0;
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn from_usize(value: usize) -> Self {
        value as u16
    }
}

impl SlotIndex for u32 {
    const END: Self = u32::MAX;
    const ZERO: Self = 0;
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn from_usize(value: usize) -> Self {
        value as u32
    }
}

/// A list link: a 32-bit block number (address >> block shift) in normal builds, which keeps the header
/// within the seed's sizes (28 B for 16-bit, 36 B for 32-bit indices); a plain address under loom.
#[cfg(not(loom))]
type LinkBits = u32;
#[cfg(loom)]
type LinkBits = usize;

#[cfg(not(loom))]
#[inline(always)]
fn encode(block: *mut u8, layout: &ClassLayout) -> LinkBits {
    // The head refuses blocks whose number does not fit (`Block::can_link`).
    (block as usize >> layout.block_shift) as LinkBits
}
#[cfg(not(loom))]
#[inline(always)]
fn decode(bits: LinkBits, layout: &ClassLayout) -> *mut u8 {
    ((bits as usize) << layout.block_shift) as *mut u8
}
#[cfg(loom)]
fn encode(block: *mut u8, _: &ClassLayout) -> LinkBits {
    block as usize
}
#[cfg(loom)]
fn decode(bits: LinkBits, _: &ClassLayout) -> *mut u8 {
    bits as *mut u8
}

/// The header of an indexed block. Field order keeps it at 28 B (u16) and 36 B (u32).
///
/// Slots are *fresh* (zero, never handed out) from `max(bump, zero_from)` on; the block's resident bytes
/// are the pages of the slots below that index, and the header page.
#[repr(C)]
pub(crate) struct IndexedHeader<I> {
    lock: Lock,
    next: UnsafeCell<LinkBits>,
    prev: UnsafeCell<LinkBits>,
    /// First free slot, or `END`.
    free_head: UnsafeCell<I>,
    /// Slots below it have been handed out at least once.
    bump: UnsafeCell<I>,
    live: UnsafeCell<I>,
    /// Slots from this index on are zero and not resident: the block came from the page source with
    /// a dirty prefix (its last user's pages, kept resident for reuse) that covers the slots below.
    zero_from: I,
    pending: UnsafeCell<u8>,
    list: UnsafeCell<ListTag>,
    class: u8,
    owner: u8,
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<IndexedHeader<u16>>() <= 28);
    assert!(core::mem::size_of::<IndexedHeader<u32>>() <= 36);
};

impl<I: SlotIndex> IndexedHeader<I> {
    /// The index from which slots are fresh, given the bump index.
    #[inline(always)]
    fn fresh_from(&self, bump: usize) -> usize {
        bump.max(self.zero_from.to_usize())
    }

    #[inline(always)]
    fn slot(&self, index: usize, layout: &ClassLayout) -> *mut u8 {
        let base = self as *const Self as *mut u8;
        base.wrapping_add(layout.data_offset as usize + index * layout.slot_size as usize)
    }
}

// SAFETY: repr(C), only cells, a lock and an immutable byte; `resolve` places the data after
// size_of::<Self>(), so the header never overlaps a slot.
unsafe impl<I: SlotIndex> Block for IndexedHeader<I> {
    unsafe fn init<'a>(
        base: NonNull<u8>,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
        dirty: usize,
    ) -> &'a Self {
        let header = base.cast::<Self>();
        let data_offset = layout.data_offset as usize;
        let zero_from = dirty
            .saturating_sub(data_offset)
            .div_ceil(layout.slot_size as usize)
            .min(layout.capacity as usize);
        // SAFETY: the caller gives us an aligned, writable block large enough for the header.
        unsafe {
            header.as_ptr().write(Self {
                lock: new_lock(),
                next: UnsafeCell::new(0),
                prev: UnsafeCell::new(0),
                free_head: UnsafeCell::new(I::END),
                bump: UnsafeCell::new(I::ZERO),
                live: UnsafeCell::new(I::ZERO),
                zero_from: I::from_usize(zero_from),
                pending: UnsafeCell::new(0),
                list: UnsafeCell::new(ListTag::None),
                class,
                owner,
            });
            header.as_ref()
        }
    }

    fn is_slot_start(offset: usize, layout: &ClassLayout) -> bool {
        let Some(relative) = offset.checked_sub(layout.data_offset as usize) else {
            return false;
        };
        let index = layout.slot_index(relative);
        index < layout.capacity as usize && index * layout.slot_size as usize == relative
    }

    unsafe fn was_handed_out(&self, offset: usize, layout: &ClassLayout) -> bool {
        let index = layout.slot_index(offset - layout.data_offset as usize);
        // SAFETY: the caller holds the block lock.
        index < unsafe { read(&self.bump) }.to_usize()
    }

    fn can_link(base: NonNull<u8>, layout: &ClassLayout) -> bool {
        (base.as_ptr() as usize >> layout.block_shift) <= LinkBits::MAX as usize
    }

    #[inline(always)]
    fn lock(&self) -> &Lock {
        &self.lock
    }

    #[inline(always)]
    fn class(&self) -> u8 {
        self.class
    }

    #[inline(always)]
    fn owner(&self) -> u8 {
        self.owner
    }

    #[inline]
    unsafe fn pop(&self, layout: &ClassLayout) -> Option<Popped> {
        // SAFETY: the caller holds the block lock, which guards the slot state; a free-list index is
        // below `bump` (checked when pushed, re-checked here), so the slot it names lies in the block,
        // is aligned for I and holds the index that `push` wrote.
        unsafe {
            let free_head = read(&self.free_head);
            let bump = read(&self.bump).to_usize();
            let (index, fresh, new_resident) = if free_head != I::END {
                let index = free_head.to_usize();
                let next = self.slot(index, layout).cast::<I>().read();
                if next != I::END && next.to_usize() >= bump {
                    corrupted_free_list(layout.slot_size, next.to_usize());
                }
                write(&self.free_head, next);
                (index, false, 0)
            } else if bump < layout.capacity as usize {
                write(&self.bump, I::from_usize(bump + 1));
                let (before, after) = (self.fresh_from(bump), self.fresh_from(bump + 1));
                let grown = touched_bytes(layout, after) - touched_bytes(layout, before);
                (bump, bump >= self.zero_from.to_usize(), grown)
            } else {
                return None;
            };
            write(&self.live, I::from_usize(read(&self.live).to_usize() + 1));
            Some(Popped {
                slot: NonNull::new_unchecked(self.slot(index, layout)),
                fresh,
                new_resident,
            })
        }
    }

    #[inline]
    unsafe fn push(&self, ptr: NonNull<u8>, layout: &ClassLayout) -> Result<Pushed, FreeError> {
        let base = self as *const Self as usize;
        let offset = (ptr.as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_sub(layout.data_offset as usize);
        if offset >= layout.block_size() {
            return Err(FreeError::NotASlot);
        }
        let index = layout.slot_index(offset);
        if index * layout.slot_size as usize != offset {
            return Err(FreeError::NotASlot);
        }
        // SAFETY: the caller holds the block lock; index < bump, so the slot lies in the block, was
        // handed out, and the caller gives it back, so writing the link into it is ours to do.
        unsafe {
            let bump = read(&self.bump).to_usize();
            let live = read(&self.live).to_usize();
            if index >= bump {
                return Err(FreeError::NotASlot);
            }
            if live == 0 {
                return Err(FreeError::DoubleFree);
            }
            let free_head = read(&self.free_head);
            let was_full = free_head == I::END && bump == layout.capacity as usize;
            ptr.as_ptr().cast::<I>().write(free_head);
            write(&self.free_head, I::from_usize(index));
            write(&self.live, I::from_usize(live - 1));
            Ok(Pushed {
                was_full,
                now_empty: live == 1,
            })
        }
    }

    unsafe fn pop_batch(&self, layout: &ClassLayout, want: u32) -> Batch {
        let data = self as *const Self as usize + layout.data_offset as usize;
        let slot_size = layout.slot_size as usize;
        let want = want as usize;
        let mut first = core::ptr::null_mut::<u8>();
        let mut last = core::ptr::null_mut::<u8>();
        let mut count = 0;
        // SAFETY: the caller holds the block lock; free-list indices are below `bump` (checked) and bump
        // slots below `capacity`, so every slot lies in the block; popped slots are ours and hold a link
        // (the layout's slots are large enough, per the contract). Each slot's next index is read before
        // its link overwrites it.
        unsafe {
            let mut free_head = read(&self.free_head);
            let bump = read(&self.bump).to_usize();
            let mut append = |slot: *mut u8| {
                if first.is_null() {
                    first = slot;
                } else {
                    write_link(last, slot);
                }
                last = slot;
            };
            while count < want && free_head != I::END {
                let slot = (data + free_head.to_usize() * slot_size) as *mut u8;
                let next = slot.cast::<I>().read();
                if next != I::END && next.to_usize() >= bump {
                    corrupted_free_list(layout.slot_size, next.to_usize());
                }
                append(slot);
                free_head = next;
                count += 1;
            }
            let fresh = (want - count).min(layout.capacity as usize - bump);
            for index in bump..bump + fresh {
                append((data + index * slot_size) as *mut u8);
            }
            count += fresh;
            write(&self.free_head, free_head);
            write(&self.bump, I::from_usize(bump + fresh));
            write(
                &self.live,
                I::from_usize(read(&self.live).to_usize() + count),
            );
            Batch {
                first,
                last,
                count: count as u32,
                new_resident: touched_bytes(layout, self.fresh_from(bump + fresh))
                    - touched_bytes(layout, self.fresh_from(bump)),
            }
        }
    }

    unsafe fn push_run(&self, first: NonNull<u8>, layout: &ClassLayout) -> Run {
        let base = self as *const Self as usize;
        let mask = !(layout.block_size() - 1);
        let data_offset = layout.data_offset as usize;
        let slot_size = layout.slot_size as usize;
        // SAFETY: the caller holds the block lock, so the slot state is ours; each slot is validated as a
        // handed-out slot start of this block before its index is written into it; its link is read
        // before that write.
        unsafe {
            let bump = read(&self.bump).to_usize();
            let mut free_head = read(&self.free_head);
            let mut live = read(&self.live).to_usize();
            let mut run = Run {
                rest: core::ptr::null_mut(),
                was_full: free_head == I::END && bump == layout.capacity as usize,
                now_empty: false,
                refused: None,
            };
            let mut slot = first.as_ptr();
            loop {
                let next = read_link(slot);
                let offset = (slot as usize).wrapping_sub(base + data_offset);
                let index = layout.slot_index(offset);
                let refused = if offset >= layout.block_size()
                    || index * slot_size != offset
                    || index >= bump
                {
                    Some(FreeError::NotASlot)
                } else if live == 0 {
                    Some(FreeError::DoubleFree)
                } else {
                    slot.cast::<I>().write(free_head);
                    free_head = I::from_usize(index);
                    live -= 1;
                    None
                };
                if let Some(error) = refused {
                    if run.refused.is_none() {
                        run.refused = Some((error, NonNull::new_unchecked(slot)));
                    }
                }
                if next.is_null() || next as usize & mask != base {
                    run.rest = next;
                    break;
                }
                slot = next;
            }
            write(&self.free_head, free_head);
            write(&self.live, I::from_usize(live));
            run.now_empty = live == 0;
            run
        }
    }

    #[inline]
    unsafe fn has_free(&self, layout: &ClassLayout) -> bool {
        // SAFETY: the caller holds the block lock.
        unsafe {
            read(&self.free_head) != I::END
                || read(&self.bump).to_usize() < layout.capacity as usize
        }
    }

    #[inline]
    unsafe fn is_empty(&self) -> bool {
        // SAFETY: the caller holds the block lock.
        unsafe { read(&self.live) == I::ZERO }
    }

    unsafe fn live(&self) -> usize {
        // SAFETY: the caller holds the block lock.
        unsafe { read(&self.live).to_usize() }
    }

    unsafe fn resident_bytes(&self, layout: &ClassLayout) -> usize {
        // SAFETY: the caller holds the block lock.
        touched_bytes(
            layout,
            self.fresh_from(unsafe { read(&self.bump) }.to_usize()),
        )
    }

    #[inline]
    unsafe fn pending(&self) -> u8 {
        // SAFETY: the caller holds the block lock.
        unsafe { read(&self.pending) }
    }

    #[inline]
    unsafe fn set_pending(&self, pending: u8) {
        // SAFETY: the caller holds the block lock.
        unsafe { write(&self.pending, pending) }
    }

    unsafe fn list(&self) -> ListTag {
        // SAFETY: the caller holds the head lock, which guards the list tag.
        unsafe { read(&self.list) }
    }

    unsafe fn set_list(&self, list: ListTag) {
        // SAFETY: the caller holds the head lock, which guards the list tag.
        unsafe { write(&self.list, list) }
    }

    #[inline]
    unsafe fn next(&self, layout: &ClassLayout) -> *mut u8 {
        // SAFETY: the caller holds the head lock, which guards the links.
        decode(unsafe { read(&self.next) }, layout)
    }

    #[inline]
    unsafe fn prev(&self, layout: &ClassLayout) -> *mut u8 {
        // SAFETY: the caller holds the head lock, which guards the links.
        decode(unsafe { read(&self.prev) }, layout)
    }

    #[inline]
    unsafe fn set_next(&self, next: *mut u8, layout: &ClassLayout) {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { write(&self.next, encode(next, layout)) }
    }

    #[inline]
    unsafe fn set_prev(&self, prev: *mut u8, layout: &ClassLayout) {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { write(&self.prev, encode(prev, layout)) }
    }
}
