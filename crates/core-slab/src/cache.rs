//! The front end: a cache of free slots per size class, owned by one thread, ahead of the head and block
//! locks.
//!
//! Glossary:
//! - *owner*: the one thread that allocates and frees through a [`SlabCache`] (it lives in that thread's
//!   thread-local storage, or in memory only that thread reaches).
//! - *bin*: one size class's cached slots, a singly linked list through each free slot's first word
//!   (written unaligned, so 12-byte slots qualify; classes below 8 bytes are not cached).
//! - *refill* / *flush*: a bin takes a batch of slots from a block under the locks, or gives a batch back.
//!
//! A slot in a bin is free for the user but still counted live by its block, so a block is never released
//! under a cache. The cache counts what its owner allocates and frees (single-writer atomics, so readers see
//! whole values): bytes on every call, objects only when slots enter or leave a bin (a pop or push moves the
//! bin's slot count, which says the rest). The slab adds these counts to its own when it reports
//! statistics, and folds them in when the cache detaches.
//!
//! Architecture invariants:
//! - a cache serves at most one slab at a time, the one whose address `slab` holds; it attaches lazily on
//!   its owner's first cached call and is listed in that slab's registry while attached;
//! - the bins are touched by the owner inside the slab's cached calls, and by anyone else only under the
//!   slab's registry lock when the owner cannot be inside such a call: while the owner itself waits for that
//!   lock to detach, while the slab is dropped (`&mut`), or during `release` (whose contract excludes
//!   concurrent calls);
//! - a slab is dropped only after every cache in its registry is orphaned or has detached: a thread that has
//!   begun detaching is waited for.

use crate::class::{SizeClass, CLASS_COUNT};
use crate::sync::{loom_const_fn, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use core::marker::PhantomPinned;
use core::ptr::{self, NonNull};

/// The smallest slot a bin can link (a pointer, stored unaligned).
pub(crate) const MIN_CACHED_SLOT: usize = core::mem::size_of::<*mut u8>();

/// Bytes of free slots a bin holds before it gives them away.
#[cfg(not(loom))]
const BIN_BYTES: usize = 256 * 1024;
/// Loom models fill a bin of 64-byte slots with four frees, so they reach the transfer cache.
#[cfg(loom)]
const BIN_BYTES: usize = 256;
/// Bounds on a bin's capacity in slots, whatever the slot size.
#[cfg(not(loom))]
const MIN_BIN_SLOTS: usize = 8;
#[cfg(loom)]
const MIN_BIN_SLOTS: usize = 2;
pub(crate) const MAX_BIN_SLOTS: usize = 16 * 1024;

/// Each class's bin capacity in slots; 0 for classes too small to link.
const CAPACITY: [u32; CLASS_COUNT] = build_capacity();

const fn build_capacity() -> [u32; CLASS_COUNT] {
    let mut capacity = [0u32; CLASS_COUNT];
    let mut index = 0;
    while index < CLASS_COUNT {
        capacity[index] = match SizeClass::from_index(index) {
            Some(class) => capacity_for_slot(class.slot_size()),
            None => unreachable!(),
        };
        index += 1;
    }
    capacity
}

/// The bin capacity in slots for slots of `slot` bytes (0: too small to link).
pub(crate) const fn capacity_for_slot(slot: usize) -> u32 {
    if slot < MIN_CACHED_SLOT {
        return 0;
    }
    let slots = BIN_BYTES / slot;
    if slots < MIN_BIN_SLOTS {
        MIN_BIN_SLOTS as u32
    } else if slots > MAX_BIN_SLOTS {
        MAX_BIN_SLOTS as u32
    } else {
        slots as u32
    }
}

/// The capacity of `class`'s bin (0: not cached).
#[inline(always)]
pub(crate) const fn capacity(class: SizeClass) -> u32 {
    CAPACITY[class.index()]
}

/// Bytes of slots a refill from the blocks takes at most: a refill links every slot it takes, so a large
/// batch of a class that is used now and then brings memory into the cache long before it is handed out.
const REFILL_BYTES: usize = REFILL_KIB * 1024;
const REFILL_KIB: usize = 4;

/// How many slots a refill from the blocks takes: up to half a bin (so a free right after does not spill
/// at once), within [`REFILL_BYTES`].
#[inline(always)]
pub(crate) const fn refill_batch(class: SizeClass) -> u32 {
    let half = capacity(class) / 2;
    let by_bytes = (REFILL_BYTES / class.slot_size()) as u32;
    let batch = if by_bytes < half { by_bytes } else { half };
    if batch == 0 {
        1
    } else {
        batch
    }
}

/// Reads the link stored in a cached slot.
///
/// # Safety
/// `slot` is a cached slot (at least [`MIN_CACHED_SLOT`] bytes, written by [`write_link`]).
#[inline(always)]
pub(crate) unsafe fn read_link(slot: *mut u8) -> *mut u8 {
    // SAFETY: per the contract the slot holds a link; unaligned because 12-byte slots are 4-aligned.
    unsafe { slot.cast::<*mut u8>().read_unaligned() }
}

/// Stores a link in a free slot.
///
/// # Safety
/// `slot` is a free slot of at least [`MIN_CACHED_SLOT`] bytes that the caller may write.
#[inline(always)]
pub(crate) unsafe fn write_link(slot: *mut u8, next: *mut u8) {
    // SAFETY: per the contract the slot is ours and large enough.
    unsafe { slot.cast::<*mut u8>().write_unaligned(next) }
}

/// Under AddressSanitizer (`cargo xtask asan`), marks a freed slot's bytes after its first word as not
/// addressable, so a use after free is reported; the first word holds the free-list link (or index) that
/// the allocator itself reads. Compiles to nothing otherwise.
#[inline(always)]
pub(crate) fn poison_slot(slot: NonNull<u8>, class: SizeClass) {
    if let Some(rest) = class.slot_size().checked_sub(MIN_CACHED_SLOT) {
        classalloc_buddy::asan::poison(slot.as_ptr() as usize + MIN_CACHED_SLOT, rest);
    }
}

/// Makes a slot handed out to a user addressable again (see [`poison_slot`]).
#[inline(always)]
pub(crate) fn unpoison_slot(slot: NonNull<u8>, class: SizeClass) {
    classalloc_buddy::asan::unpoison(slot.as_ptr() as usize, class.slot_size());
}

/// One size class's cached slots, and what the owner allocated and freed in the class.
///
/// The owner's net allocations are not counted on the fast path: each pop takes a slot from the count and
/// each push gives one back, so they are `net_in - count`, where `net_in` changes only when slots enter the
/// bin (a refill) or leave it (a spill or flush). The count and the owner's live bytes share one word (see
/// [`Tally`]), so a pop or a push updates both with one load and one store. The counters are single-writer
/// atomics (the owner writes them with a load and a store, no locked instruction), so that statistics can
/// read them from any thread.
struct Bin {
    /// The first cached slot (null: none); each links the next through its first word.
    first: UnsafeCell<*mut u8>,
    /// The number of cached slots and the owner's live bytes (see [`Tally`]).
    tally: AtomicU64,
    /// Slots the bin received minus slots it gave away, wrapping.
    net_in: AtomicUsize,
}

/// A bin's slot count (the low [`Tally::COUNT_BITS`] bits) and the bytes the owner allocated minus those it
/// freed in the class (the high bits, two's complement, wrapping). A pop adds `size << COUNT_BITS` and
/// subtracts 1, a push the reverse; the count stays within `0 ..= MAX_BIN_SLOTS`, so neither borrows from
/// nor carries into the bytes. 48 bits of bytes hold any live total a 47-bit address space allows, positive
/// or negative (a thread that frees what others allocated goes negative).
struct Tally;

impl Tally {
    const COUNT_BITS: u32 = 16;
    const COUNT_MASK: u64 = (1 << Self::COUNT_BITS) - 1;

    /// One slot handed out for a request of `size` bytes.
    #[inline(always)]
    const fn pop(size: usize) -> u64 {
        ((size as u64) << Self::COUNT_BITS).wrapping_sub(1)
    }

    /// One slot given back with its stated `size`.
    #[inline(always)]
    const fn push(size: usize) -> u64 {
        Self::pop(size).wrapping_neg()
    }

    /// A change of `delta` live bytes (wrapping).
    #[inline(always)]
    const fn bytes(delta: usize) -> u64 {
        (delta as u64) << Self::COUNT_BITS
    }

    #[inline(always)]
    const fn count(tally: u64) -> usize {
        (tally & Self::COUNT_MASK) as usize
    }

    /// The live bytes, sign-extended to a wrapping `usize`.
    const fn live_bytes(tally: u64) -> usize {
        ((tally as i64) >> Self::COUNT_BITS) as usize
    }
}

const _: () = assert!(
    MAX_BIN_SLOTS as u64 <= Tally::COUNT_MASK,
    "a bin's count must fit its tally"
);

impl Bin {
    loom_const_fn! {
        fn new() -> Self {
            Self {
                first: UnsafeCell::new(ptr::null_mut()),
                tally: AtomicU64::new(0),
                net_in: AtomicUsize::new(0),
            }
        }
    }

    /// The number of cached slots.
    #[inline(always)]
    fn count(&self) -> usize {
        Tally::count(self.tally.load(Ordering::Relaxed))
    }

    /// Adds `delta` (wrapping) to the tally, which only the owner writes: a load and a store suffice.
    #[inline(always)]
    fn bump_tally(&self, delta: u64) {
        let value = self.tally.load(Ordering::Relaxed);
        self.tally
            .store(value.wrapping_add(delta), Ordering::Relaxed);
    }

    /// The owner's net allocations in this class: (objects, bytes), wrapping.
    fn live(&self) -> (usize, usize) {
        let tally = self.tally.load(Ordering::Relaxed);
        let net_in = self.net_in.load(Ordering::Relaxed);
        (
            net_in.wrapping_sub(Tally::count(tally)),
            Tally::live_bytes(tally),
        )
    }
}

/// Every class's bin, empty (loom's primitives are not `const`, so its build fills the array at run time).
#[cfg(not(loom))]
const fn empty_bins() -> [Bin; CLASS_COUNT] {
    [const { Bin::new() }; CLASS_COUNT]
}

#[cfg(loom)]
fn empty_bins() -> [Bin; CLASS_COUNT] {
    core::array::from_fn(|_| Bin::new())
}

/// Adds `delta` (wrapping) to a counter that only the calling owner writes: a load and a store suffice.
#[inline(always)]
fn bump(counter: &AtomicUsize, delta: usize) {
    let value = counter.load(Ordering::Relaxed);
    counter.store(value.wrapping_add(delta), Ordering::Relaxed);
}

/// The cache's lifecycle (see the module's invariants).
pub(crate) mod state {
    /// Serves no slab.
    pub(crate) const DETACHED: usize = 0;
    /// Listed in the registry of the slab in `slab`.
    pub(crate) const ATTACHED: usize = 1;
    /// Its owner is giving its slots back (waiting for, or holding, the registry lock).
    pub(crate) const DETACHING: usize = 2;
    /// Its slab is being dropped and is taking its slots back (under the registry lock).
    pub(crate) const ORPHANING: usize = 3;
    /// Retired by its owner: serves no slab and never attaches again.
    pub(crate) const RETIRED: usize = 4;
}

/// A thread's cache of free slots for one slab: the lock-free fast path of
/// [`Slab::alloc_cached`](crate::Slab::alloc_cached) and its siblings.
///
/// Keep one per thread and slab, pinned where it lives (a `thread_local!`, or memory that is dropped in
/// place), and pass it to the slab's cached calls; it attaches to the slab on first use and gives its slots
/// back when dropped. If the slab is dropped first, it takes the slots back itself and the cache becomes
/// unattached.
///
/// ```
/// use classalloc_slab::{Slab, SlabCache};
/// use core::alloc::Layout;
/// use core::pin::pin;
///
/// static SLAB: Slab = Slab::new();
///
/// let cache = pin!(SlabCache::new());
/// let layout = Layout::new::<[u64; 4]>();
/// let block = SLAB.alloc_cached(cache.as_ref(), layout).unwrap();
/// assert_eq!(SLAB.totals().live_objects, 1);
/// // SAFETY: allocated above with this layout from SLAB, freed once.
/// unsafe { SLAB.dealloc_cached(cache.as_ref(), block.cast(), layout).unwrap() };
/// assert_eq!(SLAB.totals().live_objects, 0);
/// ```
///
/// A cache is not `Sync`: two threads cannot share one, so its bins need no synchronisation.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<classalloc_slab::SlabCache>();
/// ```
pub struct SlabCache {
    bins: [Bin; CLASS_COUNT],
    /// One bit per class whose bin or live count this cache has touched since it attached (set when a
    /// bin is filled or pushed to while empty), so detaching visits only those.
    touched: UnsafeCell<u128>,
    /// Address of the slab it is attached to, 0 when none. Written by the owner (attach, detach) and by a
    /// dropping slab (orphaning), never while the owner is inside a cached call of that slab.
    slab: AtomicUsize,
    state: AtomicUsize,
    /// Gives the slots back to the slab and leaves its registry; set at attach (the slab's type is erased).
    detach: UnsafeCell<Option<DetachFn>>,
    /// Asked before each attach; `false` refuses it (see [`SlabCache::with_attach_check`]).
    attach_check: Option<fn() -> bool>,
    /// Registry links, guarded by the registry lock of the slab the cache is attached to.
    next: UnsafeCell<*const SlabCache>,
    prev: UnsafeCell<*const SlabCache>,
    _pinned: PhantomPinned,
}

/// The attached slab's detach routine: `(slab address, cache)`.
pub(crate) type DetachFn = unsafe fn(usize, &SlabCache);

// Not `Sync`, on purpose: the bins are plain memory, so two threads sharing a `&SlabCache` could race in its
// cached calls. The slab reaches caches through raw pointers in its registry, only under that registry's
// lock and at points where the owner cannot be inside a cached call (module invariants), and reads their
// atomics.
// SAFETY: the raw pointers are slots of the attached slab, not thread-bound data.
unsafe impl Send for SlabCache {}

impl Default for SlabCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SlabCache {
    loom_const_fn! {
        /// An empty, unattached cache.
        pub fn new() -> Self {
            Self::with_attach_check_option(None)
        }
    }

    loom_const_fn! {
        /// An empty, unattached cache that calls `may_attach` before it attaches to a slab; when that
        /// returns `false` the cached call takes the locked path, as if there were no cache.
        ///
        /// This is for a cache kept in a `thread_local!` without a destructor (as
        /// `ManuallyDrop<SlabCache>`), whose accesses then need no lazy-initialisation check. `may_attach`
        /// touches a second thread-local whose destructor calls [`retire`](Self::retire): that registers
        /// the destructor on the first attach, and refuses attaching once it has run.
        pub fn with_attach_check(may_attach: fn() -> bool) -> Self {
            Self::with_attach_check_option(Some(may_attach))
        }
    }

    loom_const_fn! {
        fn with_attach_check_option(attach_check: Option<fn() -> bool>) -> Self {
            Self {
                bins: empty_bins(),
                touched: UnsafeCell::new(0),
                slab: AtomicUsize::new(0),
                state: AtomicUsize::new(state::DETACHED),
                detach: UnsafeCell::new(None),
                attach_check,
                next: UnsafeCell::new(ptr::null()),
                prev: UnsafeCell::new(ptr::null()),
                _pinned: PhantomPinned,
            }
        }
    }

    /// Whether the cache's attach check (if any) lets it attach now.
    pub(crate) fn may_attach(&self) -> bool {
        self.attach_check.is_none_or(|check| check())
    }

    /// Gives every cached slot back to the slab (as dropping the cache would) and makes the cache refuse to
    /// attach again: calls through it take the locked path from now on. For a cache whose destructor does
    /// not run (see [`with_attach_check`](Self::with_attach_check)); the owner calls it, typically from
    /// another thread-local's destructor at thread exit.
    pub fn retire(self: core::pin::Pin<&Self>) {
        self.detach();
        // Only the owner (us) attaches a DETACHED cache, so nothing races this store.
        self.state.store(state::RETIRED, Ordering::Release);
    }

    /// Whether the cache is attached to the slab at `slab`.
    #[inline(always)]
    pub(crate) fn serves(&self, slab: usize) -> bool {
        self.slab.load(Ordering::Relaxed) == slab
    }

    /// Number of slots cached for `class` (for tests and statistics).
    pub fn cached_slots(&self, class: SizeClass) -> usize {
        self.bins[class.index()].count()
    }

    /// Takes a cached slot of `class` for a request of `size` bytes.
    ///
    /// # Safety
    /// Called by the owner, inside a cached call of the slab it serves.
    #[inline(always)]
    pub(crate) unsafe fn pop(&self, class: SizeClass, size: usize) -> Option<NonNull<u8>> {
        let bin = &self.bins[class.index()];
        // SAFETY: the owner alone touches its bins during a cached call (module invariants); a listed
        // slot is a free slot of this class holding the next link.
        let slot = bin.first.with_mut(|first| unsafe {
            let slot = NonNull::new(*first)?;
            *first = read_link(slot.as_ptr());
            Some(slot)
        })?;
        bin.bump_tally(Tally::pop(size));
        unpoison_slot(slot, class);
        Some(slot)
    }

    /// Caches a freed slot of `class` (stated size `size`); `false` when the bin is full (nothing changed).
    ///
    /// # Safety
    /// As for [`pop`](Self::pop); `slot` is a slot of `class` of the slab the cache serves, freed by the
    /// caller, and the class is cached (`capacity(class) > 0`).
    #[inline(always)]
    pub(crate) unsafe fn push(&self, class: SizeClass, slot: NonNull<u8>, size: usize) -> bool {
        let index = class.index();
        let bin = &self.bins[index];
        let tally = bin.tally.load(Ordering::Relaxed);
        let count = Tally::count(tally);
        if count >= CAPACITY[index] as usize {
            return false;
        }
        if count == 0 {
            self.touch(index);
        }
        // SAFETY: as for `pop`; the slot is ours to write its link into.
        bin.first.with_mut(|first| unsafe {
            write_link(slot.as_ptr(), *first);
            *first = slot.as_ptr();
        });
        bin.tally
            .store(tally.wrapping_add(Tally::push(size)), Ordering::Relaxed);
        poison_slot(slot, class);
        true
    }

    /// Records an in-place resize of a live object of `class` from `old` to `new` bytes (owner only, inside
    /// a cached call). Marks the class touched: a detach folds, and a release clears, the counts of touched
    /// classes only, and the object may have been allocated elsewhere (under the locks, in a class that is
    /// not cached, or by another thread).
    #[inline]
    pub(crate) fn count_resize(&self, class: SizeClass, old: usize, new: usize) {
        self.touch(class.index());
        self.bins[class.index()].bump_tally(Tally::bytes(new.wrapping_sub(old)));
    }

    /// Puts a refilled list of `count` slots (linked through their first words) into `class`'s bin, which
    /// is empty.
    ///
    /// # Safety
    /// As for [`pop`](Self::pop); the list holds `count` free slots of `class` taken for this cache.
    #[inline]
    pub(crate) unsafe fn fill(&self, class: SizeClass, first: *mut u8, count: u32) {
        self.touch(class.index());
        let bin = &self.bins[class.index()];
        debug_assert_eq!(bin.count(), 0);
        // SAFETY: per the contract.
        bin.first.with_mut(|cell| unsafe { *cell = first });
        bin.bump_tally(u64::from(count));
        bump(&bin.net_in, count as usize);
    }

    /// Marks class `index` as touched (owner only).
    #[inline]
    fn touch(&self, index: usize) {
        // SAFETY: only the owner, inside a cached call, writes the marks.
        self.touched
            .with_mut(|touched| unsafe { *touched |= 1u128 << index });
    }

    /// The classes touched since the cache attached, smallest first.
    ///
    /// # Safety
    /// As for [`take_all`](Self::take_all).
    pub(crate) unsafe fn touched_classes(&self) -> impl Iterator<Item = SizeClass> {
        // SAFETY: per the contract.
        let touched = self.touched.with(|touched| unsafe { *touched });
        SizeClass::all().filter(move |class| touched & (1u128 << class.index()) != 0)
    }

    /// Detaches `class`'s whole bin and returns it as a list (null-terminated) with its number of slots:
    /// no walk, the list is already terminated.
    ///
    /// # Safety
    /// The caller may touch the bins (the owner inside a cached call, or a holder of the registry lock at a
    /// point where the owner cannot be using the cache).
    pub(crate) unsafe fn take_all(&self, class: SizeClass) -> (*mut u8, u32) {
        let bin = &self.bins[class.index()];
        // SAFETY: per the contract.
        let first = bin
            .first
            .with_mut(|cell| unsafe { core::mem::replace(&mut *cell, ptr::null_mut()) });
        let count = bin.count();
        bin.bump_tally((count as u64).wrapping_neg());
        bump(&bin.net_in, count.wrapping_neg());
        // A bin never holds more than MAX_BIN_SLOTS.
        (first, count as u32)
    }

    /// Forgets every cached slot (their memory is being released with their blocks); the live counts are
    /// cleared after, by [`clear_live`](Self::clear_live).
    ///
    /// # Safety
    /// As for [`take_all`](Self::take_all).
    pub(crate) unsafe fn forget_all(&self) {
        // SAFETY: per the contract.
        for class in unsafe { self.touched_classes() } {
            // SAFETY: per the contract.
            unsafe { self.take_all(class) };
        }
    }

    /// The owner's net allocations in `class`: (objects, bytes), wrapping.
    pub(crate) fn live(&self, class: SizeClass) -> (usize, usize) {
        self.bins[class.index()].live()
    }

    /// Zeroes the live counts (after they were folded into the slab's, or forgotten with every slot) and
    /// the touched marks.
    ///
    /// # Safety
    /// As for [`take_all`](Self::take_all).
    pub(crate) unsafe fn clear_live(&self) {
        // SAFETY: per the contract.
        for class in unsafe { self.touched_classes() } {
            let bin = &self.bins[class.index()];
            // Counts are zero once both the bin's slots and what the owner allocated are accounted for.
            let count = bin.count();
            bin.net_in.store(count, Ordering::Relaxed);
            bin.tally.store(count as u64, Ordering::Relaxed);
        }
        // SAFETY: per the contract.
        self.touched.with_mut(|touched| unsafe { *touched = 0 });
    }

    pub(crate) fn state(&self) -> &AtomicUsize {
        &self.state
    }

    pub(crate) fn slab_address(&self) -> &AtomicUsize {
        &self.slab
    }

    /// # Safety
    /// The caller holds the registry lock of the slab the cache is (being) attached to, or is the owner
    /// attaching it.
    pub(crate) unsafe fn set_detach(&self, detach: Option<DetachFn>) {
        // SAFETY: per the contract.
        self.detach.with_mut(|cell| unsafe { *cell = detach })
    }

    /// # Safety
    /// As for [`set_detach`](Self::set_detach).
    pub(crate) unsafe fn next(&self) -> *const SlabCache {
        // SAFETY: per the contract.
        self.next.with(|cell| unsafe { *cell })
    }

    /// # Safety
    /// As for [`set_detach`](Self::set_detach).
    pub(crate) unsafe fn set_links(&self, prev: *const SlabCache, next: *const SlabCache) {
        // SAFETY: per the contract.
        unsafe {
            self.prev.with_mut(|cell| *cell = prev);
            self.next.with_mut(|cell| *cell = next);
        }
    }

    /// # Safety
    /// As for [`set_detach`](Self::set_detach).
    pub(crate) unsafe fn prev(&self) -> *const SlabCache {
        // SAFETY: per the contract.
        self.prev.with(|cell| unsafe { *cell })
    }

    /// # Safety
    /// As for [`set_detach`](Self::set_detach).
    pub(crate) unsafe fn set_next(&self, next: *const SlabCache) {
        // SAFETY: per the contract.
        self.next.with_mut(|cell| unsafe { *cell = next })
    }

    /// # Safety
    /// As for [`set_detach`](Self::set_detach).
    pub(crate) unsafe fn set_prev(&self, prev: *const SlabCache) {
        // SAFETY: per the contract.
        self.prev.with_mut(|cell| unsafe { *cell = prev })
    }

    /// Gives every cached slot back to the slab and leaves its registry; nothing happens if the cache is
    /// unattached (never used, or its slab was dropped and took the slots back).
    fn detach(&self) {
        loop {
            match self.state.compare_exchange(
                state::ATTACHED,
                state::DETACHING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                // The slab is being dropped and is emptying this cache: its memory must stay until then.
                Err(state::ORPHANING) => crate::sync::yield_now(),
                Err(_) => return,
            }
        }
        // The slab cannot finish dropping while we are DETACHING and listed, so its address stays valid
        // until the detach routine has unlisted us.
        let slab = self.slab.load(Ordering::Relaxed);
        // SAFETY: only the owner writes `detach` outside the registry lock, at attach.
        let routine = self.detach.with(|cell| unsafe { *cell });
        if let Some(routine) = routine {
            // SAFETY: `routine` was set by the slab at `slab` when it attached us, and that slab is alive.
            unsafe { routine(slab, self) };
        }
    }
}

impl Drop for SlabCache {
    fn drop(&mut self) {
        self.detach();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::class::MAX_SMALL_SIZE;

    /// Replays pops, pushes and resizes on a bin's tally and on separate counters, and checks they agree.
    #[test]
    fn tally_keeps_count_and_live_bytes_apart() {
        let bin = Bin::new();
        let mut count = 0usize;
        let mut live = 0isize;
        let check = |bin: &Bin, count: usize, live: isize| {
            assert_eq!(bin.count(), count);
            assert_eq!(bin.live().1, live as usize);
        };
        // A thread that frees what others allocated: its live bytes go negative while the count rises to
        // the largest a bin holds.
        for step in 0..MAX_BIN_SLOTS {
            let size = 1 + step % MAX_SMALL_SIZE;
            bin.bump_tally(Tally::push(size));
            count += 1;
            live -= size as isize;
        }
        check(&bin, count, live);
        bin.bump_tally(Tally::bytes(100usize.wrapping_sub(4000)));
        live += 100 - 4000;
        check(&bin, count, live);
        // Then it allocates far more than it freed: the bytes cross zero with no effect on the count.
        for step in 0..MAX_BIN_SLOTS {
            let size = 8192 - step % 7;
            bin.bump_tally(Tally::pop(size));
            count -= 1;
            live += size as isize;
        }
        check(&bin, count, live);
        assert_eq!(count, 0);
        assert!(live > 0);
        // Slots that enter (a refill) or leave (a flush) change the count only.
        bin.bump_tally(17);
        check(&bin, 17, live);
        bin.bump_tally(17u64.wrapping_neg());
        check(&bin, 0, live);
    }
}
