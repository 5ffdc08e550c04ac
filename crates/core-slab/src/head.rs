//! A head: one per size class of a slab. It owns the lists of its blocks and the class's counters.
//!
//! Lock protocol (the seed's "a lock per head and a lock per block"):
//! - allocation takes the head lock, then the first partial block's lock, pops a slot, and moves the block
//!   to the full list if it became full;
//! - a free takes only the block's lock, unless the free changes the block's list (it was full, or it is
//!   now empty); then it marks itself *pending* on the block, drops the block lock, takes the head lock and
//!   the block lock again (head before block, always), and *settles* the block;
//! - a block is unmapped only under both locks, with no live slot and no pending thread, so no thread can
//!   still be on its way to its lock.
//!
//! Architecture invariants: every mapped block of the head is on exactly one of its two lists (so a whole
//! class can be released); a block on the partial list has a free slot; a full block is on the full list,
//! and so is a block that a pending free has just made partial, until that free settles it.

use crate::block::{Block, ListTag, Popped};
use crate::cache;
use crate::checked;
use crate::error::{AllocError, FreeError};
use crate::geometry::ClassLayout;
use crate::pages::{self, Need, Return};
use crate::sync::{
    acquire, loom_const_fn, new_lock, read, write, yield_now, AtomicUsize, Lock, LockedCounter,
    MutexGuard, Ordering, UnsafeCell,
};
use core::ptr::{self, NonNull};

/// An intrusive doubly linked list of blocks, through the links in their headers.
#[derive(Clone, Copy)]
struct List {
    first: *mut u8,
    last: *mut u8,
}

impl List {
    const EMPTY: List = List {
        first: ptr::null_mut(),
        last: ptr::null_mut(),
    };

    /// # Safety
    /// Head lock held; `base` is a block of this head on no list.
    unsafe fn push_front<B: Block>(&mut self, base: NonNull<u8>, layout: &ClassLayout) {
        // SAFETY: per the contract every pointer on the list is a live block of this head.
        unsafe {
            let block = B::at(base);
            block.set_prev(ptr::null_mut(), layout);
            block.set_next(self.first, layout);
            match NonNull::new(self.first) {
                Some(first) => B::at(first).set_prev(base.as_ptr(), layout),
                None => self.last = base.as_ptr(),
            }
        }
        self.first = base.as_ptr();
    }

    /// # Safety
    /// Head lock held; `base` is on this list.
    unsafe fn unlink<B: Block>(&mut self, base: NonNull<u8>, layout: &ClassLayout) {
        // SAFETY: per the contract every pointer on the list is a live block of this head.
        unsafe {
            let block = B::at(base);
            let (prev, next) = (block.prev(layout), block.next(layout));
            match NonNull::new(prev) {
                Some(prev) => B::at(prev).set_next(next, layout),
                None => self.first = next,
            }
            match NonNull::new(next) {
                Some(next) => B::at(next).set_prev(prev, layout),
                None => self.last = prev,
            }
            block.set_prev(ptr::null_mut(), layout);
            block.set_next(ptr::null_mut(), layout);
        }
    }
}

/// The head's lists; every mapped block is on exactly one.
#[derive(Clone, Copy)]
struct Lists {
    /// Blocks with a free slot; allocation takes from the front.
    partial: List,
    /// Blocks without one.
    full: List,
}

impl Lists {
    const EMPTY: Lists = Lists {
        partial: List::EMPTY,
        full: List::EMPTY,
    };

    /// Moves `base` onto `to` (front of partial, or full), off whatever list it is on.
    ///
    /// # Safety
    /// Head lock held; `base` is a block of this head.
    unsafe fn move_to<B: Block>(&mut self, base: NonNull<u8>, to: ListTag, layout: &ClassLayout) {
        // SAFETY: per the contract; the tag says which list the block is on.
        unsafe {
            let block = B::at(base);
            match block.list() {
                ListTag::Partial => self.partial.unlink::<B>(base, layout),
                ListTag::Full => self.full.unlink::<B>(base, layout),
                ListTag::None => {}
            }
            match to {
                ListTag::Partial => self.partial.push_front::<B>(base, layout),
                ListTag::Full => self.full.push_front::<B>(base, layout),
                ListTag::None => {}
            }
            block.set_list(to);
        }
    }
}

/// How many bytes of slots the transfer caches of one slab's heads hold together, at most: one hot class
/// may use it all. Slots there keep their blocks from going back, so the bound is small next to a heap
/// (and it is drained when a thread leaves, on `flush_cache` and on `collect`), but it is large enough that
/// a round of a few thousand frees and allocations of one size never walks the blocks' free lists.
#[cfg(not(loom))]
pub(crate) const TRANSFER_SLAB_BYTES: usize = 4 << 20;
/// Loom models hold one batch (a bin of four 64-byte slots), so a second spill overflows.
#[cfg(loom)]
pub(crate) const TRANSFER_SLAB_BYTES: usize = 256;

/// How many slots one head's transfer cache holds at most, whatever their size: one full bin of the
/// smallest classes (so every class can keep at least one batch), a sixteenth of what the slab's bound
/// would let 16-byte slots fill.
///
/// Why a count of slots: a transfer cache gives batches back in the reverse of the order they were freed
/// in, and a free order is the order a structure was torn down in, with whatever else of the class was
/// freed meanwhile mixed in. Slots that circle between bins and the transfer cache for many rounds keep
/// that order and add each round's mixing to it, so the structures built from them scatter a little more
/// each round. Slots that go back to their blocks let an emptied block go to the page source, and it comes
/// back fresh, handing out slots in address order. A list of 100,000 16-byte nodes rebuilt from its own
/// freed nodes walked 1.25 ns per node in the first round and 1.78 from the seventeenth on while the slab's
/// bound let its class keep them all; with this bound the long free phase drains the caches and every
/// round walks 1.23-1.27 ns, as mimalloc's. Other allocators bound such caches in objects too, and lower:
/// tcmalloc its transfer caches in batches, jemalloc its thread caches at 200 objects per small class.
const TRANSFER_HEAD_SLOTS: usize = 16 * 1024;

const _: () = assert!(
    TRANSFER_HEAD_SLOTS >= cache::MAX_BIN_SLOTS,
    "a head's transfer cache must hold a full bin of any class"
);

/// How many bytes of slots of `slot` bytes one head's transfer cache holds at most.
const fn transfer_head_bytes(slot: usize) -> usize {
    TRANSFER_HEAD_SLOTS * slot
}

/// How many times its limit the bins refused by full transfer caches must add up to, with no refill in
/// between, before the caches are drained: beyond a bounded round's surplus, a free phase this long is
/// one whose slots nobody is coming back for soon. The limit is the lower of the slab's and the refusing
/// head's.
#[cfg(not(loom))]
const LONG_FREE_PHASE: usize = 4;
/// Loom models drain at the first refused bin, so a handful of frees reaches the drain.
#[cfg(loom)]
const LONG_FREE_PHASE: usize = 1;

/// What a slab's transfer caches hold together, and how much they may hold.
///
/// The limit adapts to how the slab's frees and allocations meet. Bins refused for lack of room mean frees
/// are outrunning the allocations that would take batches back. Some are normal: a round of frees larger
/// than the caches walks its surplus back to the blocks. But once the refused bins since the last refill
/// add up to [`LONG_FREE_PHASE`] times the limit (the slab's, or the refusing head's
/// [`transfer_head_bytes`] when lower), this is a free phase at least five times the caches (a lifetime
/// class dying, a program tearing a structure down). What the caches hold then is memory kept
/// from the OS that nobody is coming for, each slot pinning its whole block: it all goes back to the
/// blocks and the limit drops to zero, so the phase ends with the caches empty. Each refill that takes
/// slots from the blocks raises the limit by what it took, up to [`TRANSFER_SLAB_BYTES`]: a slab that
/// allocates again may bounce batches again.
///
/// The figures are hints read and written with relaxed atomics: a race may let the caches pass the limit
/// by a batch per racing thread for a moment, or drain them a bin early or late; no slot is lost or
/// counted twice (the slots themselves move under the head locks).
pub(crate) struct TransferBudget {
    /// Bytes of slots in the transfer caches.
    held: AtomicUsize,
    /// Bytes they may hold.
    limit: AtomicUsize,
    /// Bytes of the bins refused for lack of room since the last refill or drain.
    refused: AtomicUsize,
}

impl TransferBudget {
    loom_const_fn! {
        /// An empty budget with the full limit.
        pub(crate) fn new() -> Self {
            Self {
                held: AtomicUsize::new(0),
                limit: AtomicUsize::new(TRANSFER_SLAB_BYTES),
                refused: AtomicUsize::new(0),
            }
        }
    }

    /// Bytes the transfer caches hold now.
    #[inline]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Reserves room for a batch of `bytes`; false (nothing reserved) if it would pass the limit.
    fn try_reserve(&self, bytes: usize) -> bool {
        if self.held.fetch_add(bytes, Ordering::Relaxed) + bytes > self.limit() {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Records that `bytes` left the transfer caches.
    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Records a bin of `bytes` refused for lack of room by a head that holds at most `head_bytes`; true
    /// when the caller must drain every transfer cache of the slab (the limit is now zero).
    fn refused(&self, bytes: usize, head_bytes: usize) -> bool {
        let refused = self.refused.load(Ordering::Relaxed) + bytes;
        if refused < LONG_FREE_PHASE * self.limit().min(head_bytes) {
            self.refused.store(refused, Ordering::Relaxed);
            return false;
        }
        self.refused.store(0, Ordering::Relaxed);
        self.limit.store(0, Ordering::Relaxed);
        true
    }

    /// Records a refill that took `from_blocks` bytes of slots from the blocks (0: a batch of the
    /// transfer cache): allocations are taking slots again. Writes only what changes, so refills of
    /// many threads do not share a written line while the limit is whole.
    fn refilled(&self, from_blocks: usize) {
        if self.refused.load(Ordering::Relaxed) != 0 {
            self.refused.store(0, Ordering::Relaxed);
        }
        let limit = self.limit();
        if from_blocks > 0 && limit < TRANSFER_SLAB_BYTES {
            let raised = (limit + from_blocks).min(TRANSFER_SLAB_BYTES);
            self.limit.store(raised, Ordering::Relaxed);
        }
    }
}

/// What became of a bin offered to the transfer cache ([`Head::give_batch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The transfer cache took it.
    Kept,
    /// Not a batch the transfer cache can hold: not a full bin, or slots too small to chain batches.
    NotABatch,
    /// The slab's transfer caches are at their limit, or this head's at [`transfer_head_bytes`]. The
    /// refusal is recorded in the slab's [`TransferBudget`]; `drain_all` says the refused bins now make a
    /// long free phase, so the caller must drain every transfer cache of the slab.
    NoRoom { drain_all: bool },
}

/// The smallest slot that can head a transfer batch: its first word links the batch's slots, its second
/// the next batch.
const MIN_TRANSFER_SLOT: usize = 2 * cache::MIN_CACHED_SLOT;

/// The head's transfer cache (tcmalloc's): a thread cache whose bin is full leaves the whole bin here in
/// one step, and a cache whose bin is empty takes one back the same way. Neither walks its slots, so a
/// round of frees larger than a bin, or a thread that frees what another allocates, costs no trip through
/// the blocks' free lists.
///
/// A batch is always a whole bin (`cache::capacity` slots, linked through their first words and
/// null-terminated); the batches are chained through their first slots' second words, so the head holds
/// only the top one and the cache costs no memory of its own. Slots here stay counted live by their blocks
/// (as slots in bins do), so it is bounded (by the slab's [`TransferBudget`], for all its heads) and drained
/// into the blocks when a thread cache detaches, when a cache is flushed on request, and when the slab is
/// dropped.
#[derive(Clone, Copy)]
struct Transfer {
    /// The first slot of the top batch, null when empty.
    top: *mut u8,
    bytes: usize,
}

impl Transfer {
    const EMPTY: Transfer = Transfer {
        top: ptr::null_mut(),
        bytes: 0,
    };
}

/// Reads the link to the next batch from a batch's first slot, and poisons it again.
///
/// # Safety
/// `first` heads a batch written by [`write_batch_link`].
unsafe fn read_batch_link(first: *mut u8) -> *mut u8 {
    let word = first.wrapping_add(cache::MIN_CACHED_SLOT);
    // SAFETY: per the contract the slot is at least MIN_TRANSFER_SLOT bytes and its second word holds the
    // link (unaligned: 12-byte-aligned classes exist above 16 bytes too).
    let next = unsafe { word.cast::<*mut u8>().read_unaligned() };
    classalloc_buddy::asan::poison(word as usize, cache::MIN_CACHED_SLOT);
    next
}

/// Stores the link to the next batch in a batch's first slot (its second word; the first links the slots).
///
/// # Safety
/// `first` is a free slot of at least [`MIN_TRANSFER_SLOT`] bytes that the caller may write.
unsafe fn write_batch_link(first: *mut u8, next: *mut u8) {
    let word = first.wrapping_add(cache::MIN_CACHED_SLOT);
    classalloc_buddy::asan::unpoison(word as usize, cache::MIN_CACHED_SLOT);
    // SAFETY: per the contract.
    unsafe { word.cast::<*mut u8>().write_unaligned(next) }
}

/// Counters of one head, readable without its lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeadCounts {
    pub(crate) live_objects: usize,
    pub(crate) live_bytes: usize,
    pub(crate) blocks: usize,
    pub(crate) resident_bytes: usize,
}

/// One size class's head.
pub(crate) struct Head {
    lock: Lock,
    lists: UnsafeCell<Lists>,
    transfer: UnsafeCell<Transfer>,
    // Allocation counts under the head lock it already holds; frees count with atomics, since most frees
    // take only a block lock. Live figures are the differences (wrapping).
    allocated_objects: LockedCounter,
    allocated_bytes: LockedCounter,
    freed_objects: AtomicUsize,
    freed_bytes: AtomicUsize,
    blocks: LockedCounter,
    resident_bytes: LockedCounter,
}

// SAFETY: the raw block and slot pointers in `lists` and `transfer` are only used under `lock`; everything
// else is atomic.
unsafe impl Send for Head {}
// SAFETY: as above: all shared access goes through the lock or atomics.
unsafe impl Sync for Head {}

impl Head {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self {
                lock: new_lock(),
                lists: UnsafeCell::new(Lists::EMPTY),
                transfer: UnsafeCell::new(Transfer::EMPTY),
                allocated_objects: LockedCounter::new(),
                allocated_bytes: LockedCounter::new(),
                freed_objects: AtomicUsize::new(0),
                freed_bytes: AtomicUsize::new(0),
                blocks: LockedCounter::new(),
                resident_bytes: LockedCounter::new(),
            }
        }
    }

    pub(crate) fn counts(&self) -> HeadCounts {
        // Frees first: a free never precedes its allocation, so this order never shows a negative count.
        let freed_objects = self.freed_objects.load(Ordering::Relaxed);
        let freed_bytes = self.freed_bytes.load(Ordering::Relaxed);
        HeadCounts {
            live_objects: self.allocated_objects.get().wrapping_sub(freed_objects),
            live_bytes: self.allocated_bytes.get().wrapping_sub(freed_bytes),
            blocks: self.blocks.get(),
            resident_bytes: self.resident_bytes.get(),
        }
    }

    /// Records a free of `bytes` requested bytes.
    #[inline]
    pub(crate) fn count_free(&self, bytes: usize) {
        self.freed_objects.fetch_add(1, Ordering::Relaxed);
        self.freed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records an in-place resize of a live object from `old` to `new` requested bytes.
    #[inline]
    pub(crate) fn count_resize(&self, old: usize, new: usize) {
        // Growth is a negative free; the live figure is a wrapping difference.
        self.freed_bytes
            .fetch_add(old.wrapping_sub(new), Ordering::Relaxed);
    }

    /// Takes a slot of this head's class for a request of `requested` bytes, mapping a new block (tagged
    /// with `owner`) when no partial block has one.
    pub(crate) fn alloc<B: Block>(
        &self,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
        requested: usize,
    ) -> Result<Popped, AllocError> {
        let _head = acquire(&self.lock);
        // SAFETY: the head lock is held, so the lists and every block's links are ours; each listed block
        // is mapped (blocks leave the lists before they are unmapped), and its slot state is touched only
        // under its own lock, taken here after the head's (the lock order).
        unsafe {
            let mut lists = read(&self.lists);
            let outcome = loop {
                let base = match self.first_partial::<B>(&mut lists, class, owner, layout) {
                    Ok(base) => base,
                    Err(error) => break Err(error),
                };
                let block = B::at(base);
                let guard = acquire(block.lock());
                let popped = block.pop(layout);
                if popped.is_none() || !block.has_free(layout) {
                    lists.move_to::<B>(base, ListTag::Full, layout);
                }
                drop(guard);
                if let Some(popped) = popped {
                    self.resident_bytes.add_locked(popped.new_resident);
                    self.allocated_objects.add_locked(1);
                    self.allocated_bytes.add_locked(requested);
                    break Ok(popped);
                }
            };
            write(&self.lists, lists);
            outcome
        }
    }

    /// Returns the slot at `ptr` to the block at `base`.
    ///
    /// # Safety
    /// `base` is the start of a mapped block of this head (the caller found it by masking a pointer it
    /// owns, so the block holds at least that live slot); `layout` is the class's layout.
    pub(crate) unsafe fn free<B: Block>(
        &self,
        base: NonNull<u8>,
        ptr: NonNull<u8>,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
    ) -> Result<(), FreeError> {
        // SAFETY: per the contract the block is mapped: the caller's live slot keeps it from being
        // released until the push below. The pending count keeps it mapped while we re-take the locks in
        // order (head, then block); it is unmapped only below, under both locks, when empty and unpending.
        unsafe {
            let block = B::at(base);
            if block.class() != class {
                return Err(FreeError::ClassMismatch);
            }
            // A block of another slab must never reach this head's lists.
            if block.owner() != owner {
                return Err(FreeError::OwnerMismatch);
            }
            let mut guard = acquire(block.lock());
            // Room to count ourselves pending must exist before our slot goes back: once it has, only the
            // pending count keeps the block mapped. (255 threads in that window: rare; they wait.)
            while block.pending() == u8::MAX {
                drop(guard);
                yield_now();
                guard = acquire(block.lock());
            }
            let pushed = block.push(ptr, layout)?;
            if pushed.was_full || pushed.now_empty {
                self.resettle::<B>(base, block, guard, layout);
            }
            Ok(())
        }
    }

    /// After pushes that changed a block's list membership (it was full, or it is now empty): marks the
    /// block pending, re-takes the locks in order (head, then block) and settles it, giving it back to the
    /// page source if it is empty. The source keeps it resident for a while (its hysteresis), so a class
    /// hovering at a block boundary takes the same block back without a system call or a page fault.
    ///
    /// # Safety
    /// `guard` holds the lock of `block`, a mapped block of this head at `base`; the head lock is not held.
    unsafe fn resettle<B: Block>(
        &self,
        base: NonNull<u8>,
        block: &B,
        guard: MutexGuard<'_, ()>,
        layout: &ClassLayout,
    ) {
        // SAFETY: the block lock is held (guard) and the block is mapped; the pending count keeps it
        // mapped while we re-take the locks in order; it is unmapped only below, under both locks, when
        // empty and unpending.
        unsafe {
            block.set_pending(block.pending() + 1);
            drop(guard);

            let head_guard = acquire(&self.lock);
            let guard = acquire(block.lock());
            block.set_pending(block.pending() - 1);
            let mut lists = read(&self.lists);
            let release = self.settle::<B>(&mut lists, base, block, layout);
            write(&self.lists, lists);
            // What the block's slots dirtied: the page source keeps it for reuse, or purges it.
            let dirty = if release {
                block.resident_bytes(layout)
            } else {
                0
            };
            drop(guard);
            if release {
                B::destroy(base);
            }
            drop(head_guard);
            if release {
                pages::source().free(base, layout.block_shift, dirty, Return::Lazy);
            }
        }
    }

    /// Takes slots for a thread cache, linked through their first words (null-terminated): a batch of the
    /// transfer cache if it holds one (a whole bin), or else up to `want` slots (in address order for
    /// fresh slots) from the first block with a free slot, mapping a block when none has one. The slots
    /// stay counted live by their block; the cache counts its own allocations, so the head's allocation
    /// counters do not change.
    pub(crate) fn refill<B: Block>(
        &self,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
        want: u32,
        budget: &TransferBudget,
    ) -> Result<(NonNull<u8>, u32), AllocError> {
        debug_assert!(layout.slot_size as usize >= cache::MIN_CACHED_SLOT);
        let _head = acquire(&self.lock);
        let bin_slots = cache::capacity_for_slot(layout.slot_size as usize);
        // SAFETY: the head lock guards the transfer cache; its batches are full bins of free slots of
        // this class that caches left there whole, each with the next batch in its first slot.
        let top = unsafe {
            self.transfer.with_mut(|transfer| {
                let transfer = &mut *transfer;
                let top = NonNull::new(transfer.top)?;
                transfer.top = read_batch_link(top.as_ptr());
                let bytes = bin_slots as usize * layout.slot_size as usize;
                transfer.bytes -= bytes;
                budget.release(bytes);
                budget.refilled(0);
                Some(top)
            })
        };
        if let Some(top) = top {
            return Ok((top, bin_slots));
        }
        // SAFETY: as in `alloc`: the head lock guards the lists, listed blocks are mapped, and each
        // block's slot state is touched under its own lock, taken after the head's. Popped slots are
        // ours, at least MIN_CACHED_SLOT bytes, so writing links into them is sound.
        unsafe {
            let mut lists = read(&self.lists);
            let outcome = loop {
                let base = match self.first_partial::<B>(&mut lists, class, owner, layout) {
                    Ok(base) => base,
                    Err(error) => break Err(error),
                };
                let block = B::at(base);
                let guard = acquire(block.lock());
                let batch = block.pop_batch(layout, want);
                if !block.has_free(layout) {
                    lists.move_to::<B>(base, ListTag::Full, layout);
                }
                drop(guard);
                if let Some(first) = NonNull::new(batch.first) {
                    cache::write_link(batch.last, ptr::null_mut());
                    self.resident_bytes.add_locked(batch.new_resident);
                    budget.refilled(batch.count as usize * layout.slot_size as usize);
                    break Ok((first, batch.count));
                }
            };
            write(&self.lists, lists);
            outcome
        }
    }

    /// Returns a thread cache's list of slots (linked through their first words, null-terminated) to
    /// their blocks, taking each block's lock once per run of consecutive slots in it. A slot that is not
    /// a valid free of this head is skipped and reported (the first such error); the others still go back.
    ///
    /// # Safety
    /// Every slot on the list lies in a mapped block of this head's class size (it was handed out by this
    /// head and freed by its user); `layout` is the class's layout.
    pub(crate) unsafe fn flush<B: Block>(
        &self,
        first: *mut u8,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
    ) -> Result<(), (FreeError, NonNull<u8>)> {
        let mask = !(layout.block_size() - 1);
        let mut outcome = Ok(());
        let mut cursor = first;
        // SAFETY: per the contract each listed slot is in a mapped block; a run's slots are pushed under
        // its block's lock, and `resettle` keeps the lock protocol of `free`.
        unsafe {
            while let Some(slot) = NonNull::new(cursor) {
                let base = NonNull::new_unchecked((slot.as_ptr() as usize & mask) as *mut u8);
                let block = B::at(base);
                if block.class() != class || block.owner() != owner {
                    let error = if block.class() != class {
                        FreeError::ClassMismatch
                    } else {
                        FreeError::OwnerMismatch
                    };
                    cursor = cache::read_link(slot.as_ptr());
                    outcome = outcome.and(Err((error, slot)));
                    continue;
                }
                let mut guard = acquire(block.lock());
                while block.pending() == u8::MAX {
                    drop(guard);
                    yield_now();
                    guard = acquire(block.lock());
                }
                let run = block.push_run(slot, layout);
                cursor = run.rest;
                if let Some(refused) = run.refused {
                    outcome = outcome.and(Err(refused));
                }
                if run.was_full || run.now_empty {
                    self.resettle::<B>(base, block, guard, layout);
                }
            }
        }
        outcome
    }

    /// Offers a thread cache's full bin, `count` free slots linked from `first` (null-terminated), to the
    /// transfer cache. Unless it is [`Offer::Kept`], the slots are still the caller's; a refusal for lack
    /// of room is recorded in `budget`.
    ///
    /// # Safety
    /// The list holds `count` free slots of this head's class, handed out by this head and freed by their
    /// users, that the caller gives up.
    pub(crate) unsafe fn give_batch(
        &self,
        first: NonNull<u8>,
        count: u32,
        layout: &ClassLayout,
        budget: &TransferBudget,
    ) -> Offer {
        let slot_size = layout.slot_size as usize;
        if slot_size < MIN_TRANSFER_SLOT || count != cache::capacity_for_slot(slot_size) {
            return Offer::NotABatch;
        }
        let bytes = count as usize * slot_size;
        let head_bytes = transfer_head_bytes(slot_size);
        // Reserved before taking the lock, so heads racing for the last bytes never exceed it together.
        let kept = budget.try_reserve(bytes) && {
            let _head = acquire(&self.lock);
            // SAFETY: the head lock guards the transfer cache; `first` is a free slot we own, large
            // enough to hold the batch link.
            unsafe {
                self.transfer.with_mut(|transfer| {
                    let transfer = &mut *transfer;
                    if transfer.bytes + bytes > head_bytes {
                        budget.release(bytes);
                        return false;
                    }
                    write_batch_link(first.as_ptr(), transfer.top);
                    transfer.top = first.as_ptr();
                    transfer.bytes += bytes;
                    true
                })
            }
        };
        if kept {
            Offer::Kept
        } else {
            Offer::NoRoom {
                drain_all: budget.refused(bytes, head_bytes),
            }
        }
    }

    /// Gives every slot of the transfer cache back to its block (see [`flush`](Self::flush)).
    ///
    /// # Safety
    /// `layout` is the class's layout.
    pub(crate) unsafe fn drain_transfer<B: Block>(
        &self,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
        budget: &TransferBudget,
    ) -> Result<(), (FreeError, NonNull<u8>)> {
        let head = acquire(&self.lock);
        // SAFETY: the head lock guards the transfer cache; the batches are ours once it is emptied.
        let transfer = unsafe {
            self.transfer
                .with_mut(|transfer| core::mem::replace(&mut *transfer, Transfer::EMPTY))
        };
        budget.release(transfer.bytes);
        drop(head);
        let mut outcome = Ok(());
        let mut batch = transfer.top;
        while !batch.is_null() {
            // SAFETY: each batch heads a list of free slots of this head's class, in its mapped blocks,
            // with the next batch in its second word (read before the slots go back).
            let flushed = unsafe {
                let next = read_batch_link(batch);
                let flushed = self.flush::<B>(batch, class, owner, layout);
                batch = next;
                flushed
            };
            outcome = outcome.and(flushed);
        }
        outcome
    }

    /// Folds a thread cache's net allocations (wrapping deltas) into the head's counters.
    pub(crate) fn absorb(&self, objects: usize, bytes: usize) {
        let _head = acquire(&self.lock);
        self.allocated_objects.add_locked(objects);
        self.allocated_bytes.add_locked(bytes);
    }

    /// Puts a block whose state changed where it belongs; returns whether it must be unmapped (it is
    /// empty and no thread is on its way to it).
    ///
    /// # Safety
    /// Both the head lock and the block's lock are held.
    unsafe fn settle<B: Block>(
        &self,
        lists: &mut Lists,
        base: NonNull<u8>,
        block: &B,
        layout: &ClassLayout,
    ) -> bool {
        // SAFETY: per the contract both locks are held.
        unsafe {
            if block.is_empty() && block.pending() == 0 {
                lists.move_to::<B>(base, ListTag::None, layout);
                self.blocks.sub_locked(1);
                self.resident_bytes.sub_locked(block.resident_bytes(layout));
                return true;
            }
            if block.list() == ListTag::Full && block.has_free(layout) {
                lists.move_to::<B>(base, ListTag::Partial, layout);
            }
            false
        }
    }

    /// The first block on the partial list, or a block mapped (and put on that list) when there is none.
    ///
    /// # Safety
    /// The head lock is held and `lists` are the head's lists, read under it.
    unsafe fn first_partial<B: Block>(
        &self,
        lists: &mut Lists,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
    ) -> Result<NonNull<u8>, AllocError> {
        if let Some(base) = NonNull::new(lists.partial.first) {
            return Ok(base);
        }
        // SAFETY: per the contract the head lock is held; the new block is on no list yet.
        unsafe {
            let base = self.map_block::<B>(class, owner, layout)?;
            lists.move_to::<B>(base, ListTag::Partial, layout);
            Ok(base)
        }
    }

    /// Takes a new block from the page source and initialises it.
    ///
    /// # Safety
    /// The head lock is held.
    unsafe fn map_block<B: Block>(
        &self,
        class: u8,
        owner: u8,
        layout: &ClassLayout,
    ) -> Result<NonNull<u8>, AllocError> {
        // Fresh memory, or a block the source kept resident after its last use: its dirty prefix says
        // which slots are not zero, and which pages are resident already.
        let grant = pages::source()
            .alloc(layout.block_shift, Need::Any)
            .ok_or(AllocError::OutOfMemory)?;
        let base = grant.ptr;
        if !B::can_link(base, layout) {
            // SAFETY: just handed out, never shared.
            unsafe { pages::source().free(base, layout.block_shift, grant.dirty, Return::Lazy) };
            return Err(AllocError::OutOfMemory);
        }
        // SAFETY: a self-aligned block that nobody else knows yet, zero and not resident from
        // `grant.dirty` on.
        let block = unsafe { B::init(base, class, owner, layout, grant.dirty) };
        if checked::CHECKED
            && !checked::register_block(
                base,
                layout.block_size(),
                layout.slot_size as usize,
                class,
                owner,
            )
        {
            // SAFETY: initialised just above, never shared; unregistered, so destroy only drops it, and
            // the block goes back to the source untouched.
            unsafe {
                B::destroy(base);
                pages::source().free(base, layout.block_shift, grant.dirty, Return::Lazy);
            }
            return Err(AllocError::OutOfMemory);
        }
        self.blocks.add_locked(1);
        let guard = acquire(block.lock());
        // SAFETY: the block's lock is held.
        self.resident_bytes
            .add_locked(unsafe { block.resident_bytes(layout) });
        drop(guard);
        Ok(base)
    }

    /// Unmaps every block of the head, live slots or not, and zeroes its live counts.
    ///
    /// # Safety
    /// No other thread uses this head or any of its memory during the call, and nothing allocated from it
    /// is used afterwards.
    pub(crate) unsafe fn release_all<B: Block>(
        &self,
        layout: &ClassLayout,
        budget: &TransferBudget,
    ) {
        let _head = acquire(&self.lock);
        // SAFETY: exclusive use per the contract; the lists hold every mapped block of this head.
        unsafe {
            let lists = read(&self.lists);
            for list in [lists.partial, lists.full] {
                let mut cursor = list.first;
                while let Some(base) = NonNull::new(cursor) {
                    let block = B::at(base);
                    cursor = block.next(layout);
                    let guard = acquire(block.lock());
                    let dirty = block.resident_bytes(layout);
                    drop(guard);
                    B::destroy(base);
                    // Now, not with hysteresis: a release gives the class's memory back at once.
                    pages::source().free(base, layout.block_shift, dirty, Return::Now);
                }
            }
            write(&self.lists, Lists::EMPTY);
            // Its slots lie in the blocks just unmapped.
            budget.release(read(&self.transfer).bytes);
            write(&self.transfer, Transfer::EMPTY);
        }
        self.blocks.sub_locked(self.blocks.get());
        self.resident_bytes.sub_locked(self.resident_bytes.get());
        self.freed_objects
            .store(self.allocated_objects.get(), Ordering::Relaxed);
        self.freed_bytes
            .store(self.allocated_bytes.get(), Ordering::Relaxed);
    }

    /// Unmaps every block that holds no live slot; blocks with live slots stay mapped, since their
    /// slots are still in use.
    ///
    /// # Safety
    /// No other thread uses this head (the caller has it exclusively, e.g. in `Drop`).
    pub(crate) unsafe fn release_empty<B: Block>(&self, layout: &ClassLayout) {
        let _head = acquire(&self.lock);
        // SAFETY: exclusive use per the contract; the lists hold only mapped blocks of this head.
        unsafe {
            let mut lists = read(&self.lists);
            let mut cursor = lists.partial.first;
            while let Some(base) = NonNull::new(cursor) {
                let block = B::at(base);
                cursor = block.next(layout);
                let guard = acquire(block.lock());
                let empty = block.is_empty();
                let resident = block.resident_bytes(layout);
                drop(guard);
                if empty {
                    lists.move_to::<B>(base, ListTag::None, layout);
                    self.blocks.sub_locked(1);
                    self.resident_bytes.sub_locked(resident);
                    B::destroy(base);
                    pages::source().free(base, layout.block_shift, resident, Return::Lazy);
                }
            }
            write(&self.lists, lists);
        }
    }
}
