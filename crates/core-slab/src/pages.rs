//! The page source: where slab blocks and medium allocations get their memory, and where they give it back.
//!
//! One process-wide source (every slab shares it) reserves address space in *arenas* of 1 GiB, readable and
//! writable but `MAP_NORESERVE` and untouched, so a reservation costs one `mmap` and no memory. A buddy
//! [`Region`] per arena (pages to 16 MiB, metadata at the arena's end, touched lazily) hands out naturally
//! aligned power-of-two blocks: a 1 MiB slab block needs no over-mapping and trimming, and a medium
//! allocation gets any alignment up to its block size for free. When the arenas are full another one is
//! reserved; when the OS refuses 1 GiB (an address-space limit, strict overcommit), 64 MiB is tried, and
//! then the block is mapped on its own (`os::map_aligned`), as before the source existed.
//!
//! **Zero.** Fresh anonymous memory is zero. Every free block in a region is zero except the buddy's links
//! at its start, which the buddy clears when the block leaves its list; so a block goes back to the buddy
//! only after it was made zero again: its first page by `memset` (it will hold the links anyway), the rest
//! by `madvise(MADV_DONTNEED)`, which also gives the pages back. After a merge, the pages of the merged
//! block but its first are purged too: the links the merged buddies held made their first pages resident.
//! A block handed out says how much of it is not known to be zero (its *dirty prefix*, [`Grant::dirty`]):
//! beyond it the block is zero and not resident.
//!
//! **Hysteresis.** A freed block of at most 1 MiB is not purged at once but kept, resident, in a cache: a
//! stack per order for reuse (the most recent block first) and one list in the order the blocks came, from
//! which the oldest are purged first. A request of the same order takes a cached block back as it is, with
//! its dirty prefix: a slab block's head knows which slots that prefix covers (they are not zero, their
//! pages are resident), and a medium allocation is zeroed with `memset` only if it must be zero. Cached
//! bytes (each block's dirty prefix) are bounded twice:
//! - by size: at most 1/64 of the bytes in use, clamped to 1 .. 4 MiB; the oldest go first;
//! - by time: beyond the first [`CACHE_IDLE_BYTES`] (512 KiB), a block cached for [`DECAY_MS`] is purged
//!   by the next call into the source (an allocation or free of a block). So a program that frees
//!   everything gets its memory back, all but 512 KiB, [`DECAY_MS`] later or at its next block-level call,
//!   whichever comes last; [`trim`] gives it back at once. A workload that frees and reallocates its heap
//!   in quick rounds (a request queue, a frame loop) reuses the same resident pages without a system call
//!   or a page fault.
//!
//! Larger blocks, and the blocks of a slab being released, are purged at once, and the buddy coalesces
//! them with their free neighbours; coalesced free memory is never kept resident. Before reserving another
//! arena the cache is flushed into the buddy. An arena that becomes wholly free is unmapped, unless it is
//! the only one.
//!
//! Lock order: a head's lock or a slab's large-registry lock may be held when the source's lock is taken,
//! never the reverse. Under loom the source maps every block on its own (a reservation is process-wide
//! state, which loom models cannot hold), so the models check the heads and blocks as before.

use crate::error::FreeError;
use crate::os::{self, PAGE_SIZE};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
use crate::sync::{acquire, new_lock, Lock, UnsafeCell};
#[cfg(not(loom))]
use classalloc_buddy::{Region, RegionFreeError};

/// The smallest block: one page.
pub(crate) const MIN_ORDER: u32 = 12;
/// The largest block: the largest slab block a `SlabConfig` may ask for (16 MiB).
pub(crate) const MAX_ORDER: u32 = crate::geometry::MAX_BLOCK_SHIFT;

/// An arena: 1 GiB of address space. Large enough that most programs reserve one (a single `mmap` for
/// every block they will map), small enough that a 47-bit address space never runs short.
#[cfg(all(not(loom), not(classalloc_asan)))]
const ARENA_SHIFT: u32 = 30;
/// Under AddressSanitizer the buddy poisons every free block in the shadow memory (an eighth of its size,
/// written), so arenas stay small.
#[cfg(all(not(loom), classalloc_asan))]
const ARENA_SHIFT: u32 = SMALL_ARENA_SHIFT;
/// Tried when the OS refuses a whole arena; it still holds the largest block at any alignment.
#[cfg(not(loom))]
const SMALL_ARENA_SHIFT: u32 = 26;
/// Arenas the source keeps track of; beyond them (64 GiB of blocks), blocks are mapped one by one.
#[cfg(not(loom))]
const MAX_ARENAS: usize = 64;

/// The largest block the cache keeps resident (1 MiB): larger ones are purged when freed.
#[cfg(not(loom))]
const CACHE_MAX_ORDER: u32 = 20;
/// The size bound never falls below this, so a small heap may still keep a whole 1 MiB block for reuse...
#[cfg(not(loom))]
const CACHE_FLOOR: usize = 1 << 20;
/// ...but only this many dirty bytes stay cached for as long as the cache likes: less than a block, so
/// that what an idle program keeps, with the buddy's links and the tables, stays within 1 MiB...
#[cfg(not(loom))]
pub const CACHE_IDLE_BYTES: usize = 512 << 10;
/// ...and what it holds beyond them goes back to the OS once cached this long (milliseconds).
pub const DECAY_MS: u64 = 250;
/// It never holds more than 1/64 (1 / `CACHE_SHARE`) of the bytes in use, so its hold stays a small share
/// of the heap...
#[cfg(not(loom))]
const CACHE_SHARE: usize = 64;
/// ...and never more than this many bytes either.
#[cfg(not(loom))]
const CACHE_CEILING: usize = 4 << 20;
#[cfg(not(loom))]
const CACHE_SLOTS: usize = (CACHE_MAX_ORDER - MIN_ORDER + 1) as usize;

/// What a caller needs of a block's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Anything: a slab block (its head reads the dirty prefix), a medium allocation that is not zeroed.
    Any,
    /// Zero, resident or not: a zeroed medium allocation, a table.
    Zeroed,
}

/// A block handed out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grant {
    pub(crate) ptr: NonNull<u8>,
    /// Bytes from the block's start that may be non-zero or resident from the block's last use; beyond
    /// them the block is zero and, but for its first page, not resident.
    pub(crate) dirty: usize,
    /// Whether the whole block reads as zero.
    pub(crate) zeroed: bool,
}

/// When a freed block's pages go back to the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// With hysteresis: a small dirty block may stay resident in the cache.
    Lazy,
    /// At once: a slab is being released.
    Now,
}

/// The part of a free that runs outside the callers' locks (purging, merging, unmapping); see
/// [`PageSource::begin_free`].
#[must_use = "a begun free must be finished, or memory is lost"]
pub(crate) struct Release {
    /// The freed block, unless the cache kept it.
    block: Option<Freed>,
    /// Cached blocks evicted to make room for it, to be purged.
    evicted: *mut CacheNode,
}

/// A block on its way back to its region (or to the OS).
struct Freed {
    ptr: NonNull<u8>,
    order: u32,
    dirty: usize,
    in_arena: bool,
}

/// A block kept in the cache: these words sit at its start (inside its dirty prefix). Evicted or flushed
/// blocks are chained through `older`.
#[repr(C)]
struct CacheNode {
    /// The age list (every cached block, oldest first).
    older: *mut CacheNode,
    newer: *mut CacheNode,
    /// The stack of its order (most recent on top).
    below: *mut CacheNode,
    above: *mut CacheNode,
    order: u32,
    dirty: usize,
    /// When it was cached ([`os::coarse_millis`]).
    since: u64,
}

/// Counters of the page source, process-wide (all slabs share the source).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Arenas reserved now.
    pub arenas: usize,
    /// Address space they reserve, their metadata included.
    pub reserved_bytes: usize,
    /// Bytes of blocks handed out (slab blocks and medium allocations) and not given back.
    pub in_use_bytes: usize,
    /// Of those, bytes mapped on their own because no arena could serve them.
    pub direct_bytes: usize,
    /// Freed bytes kept resident for reuse: the hysteresis (see the module docs for its bounds).
    pub cached_bytes: usize,
    /// Dirty bytes given back to the OS with `madvise` so far (the pages callers may have made resident;
    /// the purges of coalesced free blocks, which hold at most a page per merged buddy, are not counted).
    pub purged_bytes: usize,
    /// Arenas reserved so far.
    pub reservations: usize,
    /// Arena reservations the OS refused so far.
    pub refused_reservations: usize,
    /// Blocks mapped on their own so far.
    pub direct_maps: usize,
}

struct Counters {
    arenas: AtomicUsize,
    reserved_bytes: AtomicUsize,
    in_use_bytes: AtomicUsize,
    direct_bytes: AtomicUsize,
    cached_bytes: AtomicUsize,
    purged_bytes: AtomicUsize,
    reservations: AtomicUsize,
    refused_reservations: AtomicUsize,
    direct_maps: AtomicUsize,
}

impl Counters {
    const fn new() -> Self {
        Self {
            arenas: AtomicUsize::new(0),
            reserved_bytes: AtomicUsize::new(0),
            in_use_bytes: AtomicUsize::new(0),
            direct_bytes: AtomicUsize::new(0),
            cached_bytes: AtomicUsize::new(0),
            purged_bytes: AtomicUsize::new(0),
            reservations: AtomicUsize::new(0),
            refused_reservations: AtomicUsize::new(0),
            direct_maps: AtomicUsize::new(0),
        }
    }
}

fn add(counter: &AtomicUsize, value: usize) {
    counter.fetch_add(value, Ordering::Relaxed);
}

fn sub(counter: &AtomicUsize, value: usize) {
    counter.fetch_sub(value, Ordering::Relaxed);
}

/// The process-wide page source.
pub(crate) struct PageSource {
    #[cfg(not(loom))]
    lock: Lock,
    #[cfg(not(loom))]
    state: UnsafeCell<State>,
    counters: Counters,
}

// SAFETY: the state's raw pointers (arena regions, cached blocks) are only used under `lock`; the counters
// are atomics.
unsafe impl Sync for PageSource {}

static SOURCE: PageSource = PageSource::new();

/// The source every slab maps its blocks and medium allocations from.
#[inline]
pub(crate) fn source() -> &'static PageSource {
    &SOURCE
}

/// The source's counters.
pub fn stats() -> PageStats {
    let counters = &source().counters;
    let load = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
    PageStats {
        arenas: load(&counters.arenas),
        reserved_bytes: load(&counters.reserved_bytes),
        in_use_bytes: load(&counters.in_use_bytes),
        direct_bytes: load(&counters.direct_bytes),
        cached_bytes: load(&counters.cached_bytes),
        purged_bytes: load(&counters.purged_bytes),
        reservations: load(&counters.reservations),
        refused_reservations: load(&counters.refused_reservations),
        direct_maps: load(&counters.direct_maps),
    }
}

/// Gives every freed-but-resident block of the cache back to the OS now (like `malloc_trim`), and unmaps
/// arenas left wholly free (all but one).
pub fn trim() {
    source().trim();
}

/// Rounds a dirty length up to whole pages, at most the block.
#[cfg(not(loom))]
#[inline]
fn dirty_pages(dirty: usize, size: usize) -> usize {
    dirty
        .min(size)
        .checked_next_multiple_of(PAGE_SIZE)
        .unwrap_or(size)
        .min(size)
}

impl PageSource {
    const fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            lock: new_lock(),
            #[cfg(not(loom))]
            state: UnsafeCell::new(State::EMPTY),
            counters: Counters::new(),
        }
    }

    /// Frees a block the caller owns (`begin_free` and `finish` in one); for slab blocks, which no other
    /// thread can free.
    ///
    /// # Safety
    /// `ptr` is a block of `2^order` bytes handed out by this source, owned by the caller and not used
    /// afterwards; bytes from `dirty` on are as the source handed them out (zero, untouched).
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, order: u32, dirty: usize, when: Return) {
        // A slab block's freed slots may be poisoned for AddressSanitizer: unpoisoned here, once, for
        // everything the source does with the block afterwards (its bookkeeping in the first page, the
        // scrub of the dirty prefix, handing it out again from the cache).
        classalloc_buddy::asan::unpoison(
            ptr.as_ptr() as usize,
            dirty.max(PAGE_SIZE).min(1 << order),
        );
        // SAFETY: forwarded contract.
        match unsafe { self.begin_free(ptr, order, dirty, when) } {
            Ok(release) => self.finish(release),
            Err(error) => crate::fatal::abort_with(format_args!(
                "the page source refused a block it handed out ({error}): {ptr:p} (order {order})"
            )),
        }
    }

    /// Maps a block on its own (the fallback, and the only path under loom).
    fn alloc_direct(&self, size: usize) -> Option<Grant> {
        let ptr = os::map_aligned(size, size)?;
        add(&self.counters.direct_maps, 1);
        add(&self.counters.direct_bytes, size);
        add(&self.counters.in_use_bytes, size);
        Some(Grant {
            ptr,
            dirty: 0,
            zeroed: true,
        })
    }

    /// Unmaps a block mapped on its own.
    ///
    /// # Safety
    /// `ptr` is a block of `size` bytes from `alloc_direct` that nobody uses any more.
    unsafe fn free_direct(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: per the contract the mapping is ours and unused.
        unsafe { os::unmap(ptr, size) };
        sub(&self.counters.direct_bytes, size);
    }
}

#[cfg(loom)]
impl PageSource {
    /// Hands out a block of `2^order` bytes aligned to its size, or `None` when the OS refuses memory.
    pub(crate) fn alloc(&self, order: u32, _need: Need) -> Option<Grant> {
        debug_assert!((MIN_ORDER..=MAX_ORDER).contains(&order));
        self.alloc_direct(1 << order)
    }

    /// The first half of a free (see the non-loom build); here every block is a mapping of its own.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    pub(crate) unsafe fn begin_free(
        &self,
        ptr: NonNull<u8>,
        order: u32,
        _dirty: usize,
        _when: Return,
    ) -> Result<Release, FreeError> {
        sub(&self.counters.in_use_bytes, 1 << order);
        Ok(Release {
            block: Some(Freed {
                ptr,
                order,
                dirty: 0,
                in_arena: false,
            }),
            evicted: core::ptr::null_mut(),
        })
    }

    /// The second half of a free, outside the caller's locks.
    pub(crate) fn finish(&self, release: Release) {
        debug_assert!(release.evicted.is_null());
        if let Some(freed) = release.block {
            debug_assert!(!freed.in_arena && freed.dirty == 0);
            // SAFETY: `begin_free` handed the block over: nobody uses it any more.
            unsafe { self.free_direct(freed.ptr, 1 << freed.order) };
        }
    }

    fn trim(&self) {}
}

/// An arena: a reservation and the buddy region over it (the region lives in the arena's metadata tail).
#[cfg(not(loom))]
#[derive(Clone, Copy)]
struct Arena {
    base: usize,
    len: usize,
    region: *mut Region,
}

#[cfg(not(loom))]
impl Arena {
    const NONE: Arena = Arena {
        base: 0,
        len: 0,
        region: core::ptr::null_mut(),
    };
}

/// The source's state, under its lock.
#[cfg(not(loom))]
struct State {
    arenas: [Arena; MAX_ARENAS],
    arena_count: usize,
    /// The top of each order's stack of cached blocks, from `MIN_ORDER` to `CACHE_MAX_ORDER`.
    cache: [*mut CacheNode; CACHE_SLOTS],
    /// The ends of the age list.
    oldest: *mut CacheNode,
    newest: *mut CacheNode,
    cached_bytes: usize,
}

/// What `State::take` found.
#[cfg(not(loom))]
enum Taken {
    /// A block from a buddy region: zero, only its first page resident.
    Clean(NonNull<u8>),
    /// A cached block and its dirty prefix.
    Cached(NonNull<u8>, usize),
    /// Nothing free: the cache's blocks, taken out to be purged into the buddy before trying again.
    Flush(*mut CacheNode),
    /// Nothing free and no arena to be had.
    Nothing,
}

#[cfg(not(loom))]
impl State {
    const EMPTY: State = State {
        arenas: [Arena::NONE; MAX_ARENAS],
        arena_count: 0,
        cache: [core::ptr::null_mut(); CACHE_SLOTS],
        oldest: core::ptr::null_mut(),
        newest: core::ptr::null_mut(),
        cached_bytes: 0,
    };

    fn arena_of(&self, addr: usize) -> Option<usize> {
        self.arenas[..self.arena_count]
            .iter()
            .position(|arena| addr.wrapping_sub(arena.base) < arena.len)
    }

    fn region(&mut self, index: usize) -> &mut Region {
        // SAFETY: arenas below `arena_count` hold a region built by `build_region`, which lives in the
        // arena's mapping until the arena is removed; the source's lock (held: we have `&mut self`) guards it.
        unsafe { &mut *self.arenas[index].region }
    }

    /// Takes a block of `order` for `need`: see the module's policy.
    fn take(&mut self, order: u32, may_flush: bool, counters: &Counters) -> Taken {
        if let Some((ptr, dirty)) = self.pop_cached(order, counters) {
            return Taken::Cached(ptr, dirty);
        }
        for index in 0..self.arena_count {
            if let Some(ptr) = self.region(index).alloc(order) {
                return Taken::Clean(ptr);
            }
        }
        if may_flush && self.cached_bytes > 0 {
            return Taken::Flush(self.take_all_cached(counters));
        }
        if self.grow(counters) {
            if let Some(ptr) = self.region(self.arena_count - 1).alloc(order) {
                return Taken::Clean(ptr);
            }
        }
        Taken::Nothing
    }

    /// Takes the most recently cached block of `order`, with its dirty prefix.
    fn pop_cached(&mut self, order: u32, counters: &Counters) -> Option<(NonNull<u8>, usize)> {
        if order > CACHE_MAX_ORDER {
            return None;
        }
        let node = NonNull::new(self.cache[(order - MIN_ORDER) as usize])?;
        // SAFETY: the node is on the cache's lists (it is the top of its order's stack).
        let dirty = unsafe { self.unlink(node.as_ptr()) };
        sub(&counters.cached_bytes, dirty);
        Some((node.cast(), dirty))
    }

    /// Takes `node` off both cache lists; returns its dirty prefix.
    ///
    /// # Safety
    /// `node` is a cached block (on both lists), under the lock.
    unsafe fn unlink(&mut self, node: *mut CacheNode) -> usize {
        // SAFETY: every cached block holds a node, and the lists link only cached blocks.
        unsafe {
            let CacheNode {
                older,
                newer,
                below,
                above,
                order,
                dirty,
                ..
            } = node.read();
            match older.is_null() {
                true => self.oldest = newer,
                false => (*older).newer = newer,
            }
            match newer.is_null() {
                true => self.newest = older,
                false => (*newer).older = older,
            }
            match above.is_null() {
                true => self.cache[(order - MIN_ORDER) as usize] = below,
                false => (*above).below = below,
            }
            if !below.is_null() {
                (*below).above = above;
            }
            self.cached_bytes -= dirty;
            dirty
        }
    }

    /// Keeps a freed block resident in the cache if it qualifies, evicting the oldest cached blocks to
    /// make room (chained through `older`, for the caller to purge). False if the block must be purged.
    fn cache(
        &mut self,
        ptr: NonNull<u8>,
        order: u32,
        dirty: usize,
        now: u64,
        evicted: &mut *mut CacheNode,
        counters: &Counters,
    ) -> bool {
        let in_use = counters.in_use_bytes.load(Ordering::Relaxed);
        let limit = (in_use / CACHE_SHARE).clamp(CACHE_FLOOR, CACHE_CEILING);
        if order > CACHE_MAX_ORDER || dirty == 0 || dirty > limit {
            return false;
        }
        while self.cached_bytes + dirty > limit {
            self.evict_oldest(evicted, counters);
        }
        let slot = &mut self.cache[(order - MIN_ORDER) as usize];
        let node = ptr.as_ptr().cast::<CacheNode>();
        // SAFETY: the caller gave the block up to us; its first page is in its dirty prefix (dirty > 0). The
        // neighbours written are cached blocks.
        unsafe {
            node.write(CacheNode {
                older: self.newest,
                newer: core::ptr::null_mut(),
                below: *slot,
                above: core::ptr::null_mut(),
                order,
                dirty,
                since: now,
            });
            if let Some(below) = NonNull::new(*slot) {
                (*below.as_ptr()).above = node;
            }
            match NonNull::new(self.newest) {
                Some(newest) => (*newest.as_ptr()).newer = node,
                None => self.oldest = node,
            }
        }
        *slot = node;
        self.newest = node;
        self.cached_bytes += dirty;
        add(&counters.cached_bytes, dirty);
        true
    }

    /// Moves the oldest cached block onto the `evicted` chain (through `older`), for the caller to purge.
    ///
    /// The cache must hold a block.
    fn evict_oldest(&mut self, evicted: &mut *mut CacheNode, counters: &Counters) {
        let oldest = self.oldest;
        debug_assert!(!oldest.is_null());
        // SAFETY: the cache holds a block, so the age list is not empty; its front is a cached block.
        let freed = unsafe { self.unlink(oldest) };
        sub(&counters.cached_bytes, freed);
        // SAFETY: the block is off the lists and ours; its node's link words are free to reuse.
        unsafe { (*oldest).older = *evicted };
        *evicted = oldest;
    }

    /// Evicts the blocks that have been cached for [`DECAY_MS`] or more, oldest first, as long as the
    /// cache holds more than [`CACHE_IDLE_BYTES`].
    fn decay(&mut self, now: u64, evicted: &mut *mut CacheNode, counters: &Counters) {
        while self.cached_bytes > CACHE_IDLE_BYTES {
            // SAFETY: the cache holds bytes, so its age list has a front, a cached block.
            let since = unsafe { (*self.oldest).since };
            if now.saturating_sub(since) < DECAY_MS {
                return;
            }
            self.evict_oldest(evicted, counters);
        }
    }

    /// Empties the cache into one chain (through `older`).
    fn take_all_cached(&mut self, counters: &Counters) -> *mut CacheNode {
        let chain = self.newest;
        sub(&counters.cached_bytes, self.cached_bytes);
        self.cache = [core::ptr::null_mut(); CACHE_SLOTS];
        self.oldest = core::ptr::null_mut();
        self.newest = core::ptr::null_mut();
        self.cached_bytes = 0;
        chain
    }

    /// Reserves another arena; false when the table is full or the OS refuses.
    fn grow(&mut self, counters: &Counters) -> bool {
        if self.arena_count == MAX_ARENAS {
            return false;
        }
        for shift in [ARENA_SHIFT, SMALL_ARENA_SHIFT] {
            let len = 1usize << shift;
            let Some(base) = os::reserve(len) else {
                add(&counters.refused_reservations, 1);
                continue;
            };
            // SAFETY: a fresh reservation of `len` bytes that nobody else knows.
            match unsafe { build_region(base, len, shift) } {
                Some(region) => {
                    self.arenas[self.arena_count] = Arena {
                        base: base.as_ptr() as usize,
                        len,
                        region,
                    };
                    self.arena_count += 1;
                    add(&counters.arenas, 1);
                    add(&counters.reservations, 1);
                    add(&counters.reserved_bytes, len);
                    return true;
                }
                // SAFETY: just reserved, never handed out.
                None => unsafe { os::unmap(base, len) },
            }
        }
        false
    }

    /// Takes a wholly free arena out of the table; the caller unmaps it.
    fn remove_arena(&mut self, index: usize, counters: &Counters) -> Arena {
        let arena = self.arenas[index];
        self.region(index).unpoison_all();
        self.arena_count -= 1;
        self.arenas[index] = self.arenas[self.arena_count];
        self.arenas[self.arena_count] = Arena::NONE;
        sub(&counters.arenas, 1);
        sub(&counters.reserved_bytes, arena.len);
        arena
    }
}

/// Builds the buddy region of a new arena, its metadata (the `Region` and its bitmaps) at the arena's end.
///
/// # Safety
/// `base .. base + len` is a fresh (zero) reservation owned by the caller, given over to the region.
#[cfg(not(loom))]
unsafe fn build_region(base: NonNull<u8>, len: usize, shift: u32) -> Option<*mut Region> {
    let start = base.as_ptr() as usize;
    let header = core::mem::size_of::<Region>().next_multiple_of(8);
    // Sized for the whole arena, the metadata is enough for the smaller span left after carving it out.
    let words = Region::metadata_words(start, len, MIN_ORDER, shift).ok()?;
    let meta = os::page_round(header.checked_add(words.checked_mul(8)?)?)?;
    let span = len.checked_sub(meta)?;
    let words = Region::metadata_words(start, span, MIN_ORDER, shift).ok()?;
    let meta_start = start + span;
    let region = meta_start as *mut Region;
    let bits = NonNull::new((meta_start + header) as *mut u64)?;
    // SAFETY: the span and the metadata are disjoint parts of the caller's fresh reservation (so the
    // metadata words are zero, 8-aligned after a page-aligned, 8-rounded header), and stay mapped while the
    // region is used.
    let built =
        unsafe { Region::with_metadata(base, span, MIN_ORDER, shift, bits, words, true) }.ok()?;
    // SAFETY: `meta_start` is page-aligned, inside the reservation, and `header` bytes are set aside for it.
    unsafe { region.write(built) };
    Some(region)
}

#[cfg(not(loom))]
fn free_error(error: RegionFreeError) -> FreeError {
    match error {
        RegionFreeError::Misaligned => FreeError::Misaligned,
        RegionFreeError::BadOrder | RegionFreeError::WrongOrder { .. } => FreeError::ClassMismatch,
        RegionFreeError::OutOfBounds
        | RegionFreeError::InteriorPointer { .. }
        | RegionFreeError::NotAllocated => FreeError::NotASlot,
    }
}

#[cfg(not(loom))]
impl PageSource {
    /// Runs `f` on the state under the lock.
    fn locked<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let _guard = acquire(&self.lock);
        // SAFETY: the lock guards the state and the reference does not outlive the call.
        self.state.with_mut(|state| f(unsafe { &mut *state }))
    }

    /// Hands out a block of `2^order` bytes aligned to its size, with contents as `need` says, or `None`
    /// when the OS refuses memory.
    pub(crate) fn alloc(&self, order: u32, need: Need) -> Option<Grant> {
        debug_assert!((MIN_ORDER..=MAX_ORDER).contains(&order));
        let size = 1usize << order;
        let mut may_flush = true;
        let now = os::coarse_millis();
        loop {
            let mut evicted = core::ptr::null_mut();
            let taken = self.locked(|state| {
                let taken = state.take(order, may_flush, &self.counters);
                state.decay(now, &mut evicted, &self.counters);
                taken
            });
            self.flush(evicted);
            match taken {
                Taken::Clean(ptr) => {
                    add(&self.counters.in_use_bytes, size);
                    return Some(Grant {
                        ptr,
                        dirty: 0,
                        zeroed: true,
                    });
                }
                Taken::Cached(ptr, dirty) => {
                    add(&self.counters.in_use_bytes, size);
                    // SAFETY: the cached block is ours now, with `dirty` bytes dirty.
                    return Some(unsafe { self.prepare(ptr, dirty, need) });
                }
                Taken::Flush(chain) => {
                    self.flush(chain);
                    may_flush = false;
                }
                Taken::Nothing => break,
            }
        }
        self.alloc_direct(size)
    }

    /// Makes a cached block what `need` asks.
    ///
    /// # Safety
    /// The block at `ptr` is ours, with a dirty prefix of `dirty` bytes (at least a page).
    unsafe fn prepare(&self, ptr: NonNull<u8>, dirty: usize, need: Need) -> Grant {
        match need {
            Need::Any => Grant {
                ptr,
                dirty,
                zeroed: false,
            },
            Need::Zeroed => {
                // SAFETY: the block is ours and at least `dirty` bytes long.
                unsafe { ptr.as_ptr().write_bytes(0, dirty) };
                Grant {
                    ptr,
                    dirty,
                    zeroed: true,
                }
            }
        }
    }

    /// Makes a dirty prefix zero again: the first page by `memset` (it stays resident), the rest purged.
    ///
    /// # Safety
    /// The block at `ptr` is ours and at least `dirty` bytes long (`dirty` a multiple of the page size).
    unsafe fn scrub(&self, ptr: NonNull<u8>, dirty: usize) {
        if dirty > PAGE_SIZE {
            // SAFETY: page-aligned pages of a block we own, whose contents are no longer needed.
            unsafe { os::purge(ptr.add(PAGE_SIZE), dirty - PAGE_SIZE) };
            add(&self.counters.purged_bytes, dirty - PAGE_SIZE);
        }
        if dirty > 0 {
            // SAFETY: the first page of a block we own.
            unsafe { ptr.as_ptr().write_bytes(0, PAGE_SIZE) };
        }
    }

    /// The first half of a free, under the caller's locks: checks that `ptr` is a live block of `order`
    /// (a wrong order or a pointer that starts no block is an error and changes nothing), then keeps it in
    /// the cache or not; what remains to do (purging, merging, unmapping) is for
    /// [`finish`](Self::finish), outside the caller's locks.
    ///
    /// # Safety
    /// If `ptr` is a block of this source, the caller owns it (no other thread frees it), and on success it
    /// is not used afterwards; bytes from `dirty` on are as the source handed them out.
    pub(crate) unsafe fn begin_free(
        &self,
        ptr: NonNull<u8>,
        order: u32,
        dirty: usize,
        when: Return,
    ) -> Result<Release, FreeError> {
        let size = 1usize << order;
        let dirty = dirty_pages(dirty, size);
        let now = os::coarse_millis();
        self.locked(|state| {
            let in_arena = match state.arena_of(ptr.as_ptr() as usize) {
                Some(index) => {
                    let live = state.region(index).live_order(ptr).map_err(free_error)?;
                    if live != order {
                        return Err(FreeError::ClassMismatch);
                    }
                    true
                }
                None => false,
            };
            sub(&self.counters.in_use_bytes, size);
            let mut evicted = core::ptr::null_mut();
            let cached = in_arena
                && when == Return::Lazy
                && state.cache(ptr, order, dirty, now, &mut evicted, &self.counters);
            state.decay(now, &mut evicted, &self.counters);
            let block = (!cached).then_some(Freed {
                ptr,
                order,
                dirty,
                in_arena,
            });
            Ok(Release { block, evicted })
        })
    }

    /// The second half of a free: gives the block back (and any blocks the cache evicted for it).
    pub(crate) fn finish(&self, release: Release) {
        if let Some(freed) = release.block {
            self.give_back(freed);
        }
        self.flush(release.evicted);
    }

    /// Scrubs a block, hands it to its region (which merges it with its free buddies) and purges what the
    /// merge made dirty; unmaps an arena left wholly free, or a block mapped on its own.
    fn give_back(&self, freed: Freed) {
        let Freed {
            ptr,
            order,
            dirty,
            in_arena,
        } = freed;
        if !in_arena {
            // SAFETY: `begin_free` handed the block over: nobody uses it any more.
            unsafe { self.free_direct(ptr, 1 << order) };
            return;
        }
        // SAFETY: the block is ours until it goes back to its region below.
        unsafe { self.scrub(ptr, dirty) };
        let emptied = self.locked(|state| {
            let Some(index) = state.arena_of(ptr.as_ptr() as usize) else {
                corrupted(ptr, order)
            };
            let region = state.region(index);
            let Ok((merged, merged_order)) = region.free_merged(ptr, order) else {
                corrupted(ptr, order)
            };
            if merged_order > order {
                // Under the lock: the merged block is on a free list, and these pages hold nothing but zero
                // (the cleared links of the merged buddies made their first pages resident).
                // SAFETY: the pages of a free block of the region, but its first (which holds its links).
                unsafe { os::purge(merged.add(PAGE_SIZE), (1usize << merged_order) - PAGE_SIZE) };
            }
            let empty = region.allocated_bytes() == 0 && state.arena_count > 1;
            empty.then(|| state.remove_arena(index, &self.counters))
        });
        if let Some(arena) = emptied {
            // SAFETY: the arena is out of the table and holds no live block: nothing refers to it.
            unsafe { os::unmap(NonNull::new_unchecked(arena.base as *mut u8), arena.len) };
        }
    }

    /// Purges every cached block into the buddy.
    fn trim(&self) {
        let chain = self.locked(|state| state.take_all_cached(&self.counters));
        self.flush(chain);
    }

    /// Gives a chain (through `older`) of blocks taken out of the cache back to their regions.
    fn flush(&self, mut chain: *mut CacheNode) {
        while let Some(node) = NonNull::new(chain) {
            // SAFETY: the chain's blocks were taken out of the cache under the lock: they are ours.
            let CacheNode {
                older,
                order,
                dirty,
                ..
            } = unsafe { node.as_ptr().read() };
            chain = older;
            self.give_back(Freed {
                ptr: node.cast(),
                order,
                dirty,
                in_arena: true,
            });
        }
    }
}

/// The source's own bookkeeping disagrees with itself: a block it checked is no longer where it was.
#[cfg(not(loom))]
#[cold]
fn corrupted(ptr: NonNull<u8>, order: u32) -> ! {
    crate::fatal::abort_with(format_args!(
        "page source corrupted: a checked block could not be returned: {ptr:p} (order {order})"
    ))
}
