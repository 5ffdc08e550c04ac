//! Class 1 B: one 4 KiB page holding a 32-byte header and 16 sub-blocks of 254 bytes, each a 3-byte
//! sub-header (free-list head, bump index, live count) and 251 one-byte slots. A 1-byte slot can only hold
//! an 8-bit index, hence the sub-blocks (the seed's design, with one more slot per sub-block: 4016 slots,
//! 1.0199 bytes per byte against the seed's 1.024).

use super::{corrupted_free_list, Block, ListTag, Popped, Pushed};
use crate::error::FreeError;
use crate::geometry::ClassLayout;
use crate::os::PAGE_SIZE;
use crate::sync::{new_lock, read, write, Lock, UnsafeCell};
use core::ptr::NonNull;

/// Bytes per sub-block: its header and its slots.
const SUBBLOCK_STRIDE: usize = 254;
/// Sub-block header: free-list head, bump index, live count.
const SUBBLOCK_HEADER: usize = 3;
/// One-byte slots per sub-block; index 255 ends a free list.
pub(crate) const TINY_SLOTS_PER_SUBBLOCK: usize = SUBBLOCK_STRIDE - SUBBLOCK_HEADER;
const END: u8 = u8::MAX;
/// Where the first sub-block starts: right after the page header.
pub(crate) const TINY_SUBBLOCK_DATA: usize = core::mem::size_of::<TinyHeader>();
/// Sub-blocks per page (16 in normal builds; loom's larger lock leaves room for fewer).
pub(crate) const TINY_SUBBLOCKS: usize = {
    let fit = (PAGE_SIZE - TINY_SUBBLOCK_DATA) / SUBBLOCK_STRIDE;
    if fit > 16 {
        16
    } else {
        fit
    }
};

/// The page header. `mask` has bit i set while sub-block i can hand out a slot.
#[repr(C)]
pub(crate) struct TinyHeader {
    lock: Lock,
    next: UnsafeCell<usize>,
    prev: UnsafeCell<usize>,
    pending: UnsafeCell<u8>,
    mask: UnsafeCell<u16>,
    list: UnsafeCell<ListTag>,
    class: u8,
    owner: u8,
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<TinyHeader>() == 32 && TINY_SUBBLOCKS == 16);

/// A sub-block's 3-byte header, addressed by raw pointer: it shares the page with 1-byte user slots.
#[derive(Clone, Copy)]
struct SubBlock(*mut u8);

impl SubBlock {
    const FREE_HEAD: usize = 0;
    const BUMP: usize = 1;
    const LIVE: usize = 2;

    /// # Safety
    /// The page lock is held and the sub-block lies in a mapped tiny page.
    unsafe fn get(self, field: usize) -> u8 {
        // SAFETY: per the contract the byte is in the page and guarded by the held lock.
        unsafe { self.0.add(field).read() }
    }

    /// # Safety
    /// As for `get`.
    unsafe fn set(self, field: usize, value: u8) {
        // SAFETY: per the contract the byte is in the page and guarded by the held lock.
        unsafe { self.0.add(field).write(value) }
    }

    fn slot(self, index: usize) -> *mut u8 {
        self.0.wrapping_add(SUBBLOCK_HEADER + index)
    }
}

impl TinyHeader {
    fn sub_block(&self, index: usize) -> SubBlock {
        let base = self as *const Self as *mut u8;
        SubBlock(base.wrapping_add(TINY_SUBBLOCK_DATA + index * SUBBLOCK_STRIDE))
    }
}

// SAFETY: repr(C), only cells, a lock and an immutable byte; the sub-blocks start at size_of::<Self>().
unsafe impl Block for TinyHeader {
    unsafe fn init<'a>(
        base: NonNull<u8>,
        class: u8,
        owner: u8,
        _: &ClassLayout,
        dirty: usize,
    ) -> &'a Self {
        let header = base.cast::<Self>();
        // SAFETY: the caller gives us a writable, page-aligned page, zero if `dirty` is 0. A reused page is
        // zeroed first (one page: cheaper than a fault), so that every slot is fresh. Zeroed sub-block
        // headers must become "empty free list, bump 0, live 0", so each free-list head is set to END.
        unsafe {
            if dirty > 0 {
                base.as_ptr().write_bytes(0, PAGE_SIZE);
            }
            header.as_ptr().write(Self {
                lock: new_lock(),
                next: UnsafeCell::new(0),
                prev: UnsafeCell::new(0),
                pending: UnsafeCell::new(0),
                mask: UnsafeCell::new(((1u32 << TINY_SUBBLOCKS) - 1) as u16),
                list: UnsafeCell::new(ListTag::None),
                class,
                owner,
            });
            let header = header.as_ref();
            for index in 0..TINY_SUBBLOCKS {
                header.sub_block(index).set(SubBlock::FREE_HEAD, END);
            }
            header
        }
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

    unsafe fn pop(&self, layout: &ClassLayout) -> Option<Popped> {
        // SAFETY: the caller holds the page lock, which guards the mask and every sub-block header; a
        // free-list index is below the sub-block's bump, so its slot lies in the page.
        unsafe {
            let mask = read(&self.mask);
            if mask == 0 {
                return None;
            }
            let which = mask.trailing_zeros() as usize;
            let sub = self.sub_block(which);
            let free_head = sub.get(SubBlock::FREE_HEAD);
            let bump = sub.get(SubBlock::BUMP);
            let (index, fresh) = if free_head != END {
                let next = sub.slot(free_head as usize).read();
                if next != END && next >= bump {
                    corrupted_free_list(layout.slot_size, next as usize);
                }
                sub.set(SubBlock::FREE_HEAD, next);
                (free_head, false)
            } else {
                sub.set(SubBlock::BUMP, bump + 1);
                (bump, true)
            };
            sub.set(SubBlock::LIVE, sub.get(SubBlock::LIVE) + 1);
            let exhausted = sub.get(SubBlock::FREE_HEAD) == END
                && sub.get(SubBlock::BUMP) as usize == TINY_SLOTS_PER_SUBBLOCK;
            if exhausted {
                write(&self.mask, mask & !(1 << which));
            }
            Some(Popped {
                slot: NonNull::new_unchecked(sub.slot(index as usize)),
                fresh,
                new_resident: 0,
            })
        }
    }

    fn is_slot_start(offset: usize, _layout: &ClassLayout) -> bool {
        let Some(data) = offset.checked_sub(TINY_SUBBLOCK_DATA) else {
            return false;
        };
        data / SUBBLOCK_STRIDE < TINY_SUBBLOCKS && data % SUBBLOCK_STRIDE >= SUBBLOCK_HEADER
    }

    unsafe fn was_handed_out(&self, offset: usize, _layout: &ClassLayout) -> bool {
        let data = offset - TINY_SUBBLOCK_DATA;
        let index = (data % SUBBLOCK_STRIDE - SUBBLOCK_HEADER) as u8;
        // SAFETY: the caller holds the page lock, which guards the sub-blocks' bytes.
        index < unsafe { self.sub_block(data / SUBBLOCK_STRIDE).get(SubBlock::BUMP) }
    }

    unsafe fn push(&self, ptr: NonNull<u8>, _layout: &ClassLayout) -> Result<Pushed, FreeError> {
        let base = self as *const Self as usize;
        let offset = (ptr.as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_sub(TINY_SUBBLOCK_DATA);
        let which = offset / SUBBLOCK_STRIDE;
        let within = offset % SUBBLOCK_STRIDE;
        if which >= TINY_SUBBLOCKS || within < SUBBLOCK_HEADER {
            return Err(FreeError::NotASlot);
        }
        let index = (within - SUBBLOCK_HEADER) as u8;
        let sub = self.sub_block(which);
        // SAFETY: the caller holds the page lock; index < bump, so the slot was handed out and the caller
        // gives it back, so writing the link into it is ours to do.
        unsafe {
            let live = sub.get(SubBlock::LIVE);
            if index >= sub.get(SubBlock::BUMP) {
                return Err(FreeError::NotASlot);
            }
            if live == 0 {
                return Err(FreeError::DoubleFree);
            }
            let mask = read(&self.mask);
            ptr.as_ptr().write(sub.get(SubBlock::FREE_HEAD));
            sub.set(SubBlock::FREE_HEAD, index);
            sub.set(SubBlock::LIVE, live - 1);
            write(&self.mask, mask | (1 << which));
            Ok(Pushed {
                was_full: mask == 0,
                now_empty: live == 1 && self.is_empty(),
            })
        }
    }

    unsafe fn has_free(&self, _layout: &ClassLayout) -> bool {
        // SAFETY: the caller holds the page lock.
        unsafe { read(&self.mask) != 0 }
    }

    unsafe fn is_empty(&self) -> bool {
        // SAFETY: the caller holds the page lock.
        unsafe { self.live() == 0 }
    }

    unsafe fn live(&self) -> usize {
        (0..TINY_SUBBLOCKS)
            // SAFETY: the caller holds the page lock; every sub-block lies in the page.
            .map(|index| unsafe { self.sub_block(index).get(SubBlock::LIVE) } as usize)
            .sum()
    }

    unsafe fn resident_bytes(&self, _layout: &ClassLayout) -> usize {
        PAGE_SIZE
    }

    unsafe fn pending(&self) -> u8 {
        // SAFETY: the caller holds the page lock.
        unsafe { read(&self.pending) }
    }

    unsafe fn set_pending(&self, pending: u8) {
        // SAFETY: the caller holds the page lock.
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

    unsafe fn next(&self, _layout: &ClassLayout) -> *mut u8 {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { read(&self.next) as *mut u8 }
    }

    unsafe fn prev(&self, _layout: &ClassLayout) -> *mut u8 {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { read(&self.prev) as *mut u8 }
    }

    unsafe fn set_next(&self, next: *mut u8, _layout: &ClassLayout) {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { write(&self.next, next as usize) }
    }

    unsafe fn set_prev(&self, prev: *mut u8, _layout: &ClassLayout) {
        // SAFETY: the caller holds the head lock, which guards the links.
        unsafe { write(&self.prev, prev as usize) }
    }
}
