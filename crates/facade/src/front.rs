//! The thread-local front end: where each thread keeps its [`SlabCache`]s.
//!
//! - The process-wide slab behind [`Global`](crate::Global) and the seed functions: one cache per thread,
//!   in a `thread_local!`.
//! - Each [`ClassAlloc`](crate::ClassAlloc): a cache per lifetime class, in memory this thread maps for
//!   them, found through a small per-thread directory keyed by the allocator's address.
//!
//! Caches give their slots back when their thread exits: the `Global` cache is retired by a second
//! thread-local's destructor (the cache itself has none, so its accesses need no state check), and the
//! `ClassAlloc` caches are dropped with their directory. A call made after that, during the rest of the
//! thread's teardown, finds the cache retired or gone and takes the locked path, so allocating in another
//! thread-local's destructor works. Nothing here allocates through the global allocator: this code runs
//! inside it.

use crate::MAX_CLASSES;
use classalloc_slab::{os, SlabCache};
use core::cell::Cell;
use core::mem::{size_of, ManuallyDrop};
use core::pin::Pin;
use core::ptr::{self, NonNull};

std::thread_local! {
    // Const-initialised and without a destructor (`ManuallyDrop`), so every access is a plain offset from
    // the thread pointer: no lazy-initialisation or destroyed-state check on the fast path. The retirer
    // below gives its slots back at thread exit.
    static GLOBAL_CACHE: ManuallyDrop<SlabCache> =
        const { ManuallyDrop::new(SlabCache::with_attach_check(register_global_cache_retirer)) };
    static GLOBAL_CACHE_RETIRER: GlobalCacheRetirer = const { GlobalCacheRetirer };
}

/// Retires this thread's `GLOBAL_CACHE` when the thread's thread-locals are destroyed: its slots go back,
/// and later calls in the thread's teardown take the locked path.
struct GlobalCacheRetirer;

impl Drop for GlobalCacheRetirer {
    fn drop(&mut self) {
        // SAFETY: GLOBAL_CACHE has no destructor, so it is valid for the thread's whole life; a
        // thread-local never moves, which is the pinning guarantee.
        GLOBAL_CACHE.with(|cache| unsafe { Pin::new_unchecked(&**cache) }.retire());
    }
}

/// `GLOBAL_CACHE`'s attach check, run before the cache's first attach: touching the retirer registers its
/// destructor; once that destructor has begun, the access fails and the cache stays unattached.
fn register_global_cache_retirer() -> bool {
    GLOBAL_CACHE_RETIRER.try_with(|_| ()).is_ok()
}

/// Runs `cached` with this thread's cache for the process-wide slab. After the thread's cache has retired
/// (thread teardown), the cache no longer attaches, and the slab's cached calls take the locked path.
#[inline(always)]
pub(crate) fn with_global_cache<R>(cached: impl FnOnce(Pin<&SlabCache>) -> R) -> R {
    // SAFETY: the thread-local is never dropped or moved while the thread lives: the pinning guarantee.
    GLOBAL_CACHE.with(|cache| cached(unsafe { Pin::new_unchecked(&**cache) }))
}

/// One thread's caches for one `ClassAlloc`: one per lifetime class, each serving that class's slab.
struct ClassCaches {
    caches: [SlabCache; MAX_CLASSES],
}

/// Bytes mapped for one `ClassCaches` (whole pages; only the caches a thread uses are touched).
const CLASS_CACHES_BYTES: usize = size_of::<ClassCaches>().next_multiple_of(os::PAGE_SIZE);

impl ClassCaches {
    /// Maps and initialises a set of caches; `None` when the OS refuses memory.
    fn create() -> Option<NonNull<ClassCaches>> {
        let memory = os::map(CLASS_CACHES_BYTES)?.cast::<ClassCaches>();
        // SAFETY: fresh, page-aligned (so aligned for ClassCaches), writable memory of the right size;
        // each cache is written in place so none is built on the stack as a whole.
        unsafe {
            let caches = ptr::addr_of_mut!((*memory.as_ptr()).caches).cast::<SlabCache>();
            for index in 0..MAX_CLASSES {
                caches.add(index).write(SlabCache::new());
            }
        }
        Some(memory)
    }

    /// Drops the caches (each gives its slots back to its slab, if that slab still exists) and unmaps them.
    ///
    /// # Safety
    /// `memory` came from `create` and nothing uses it any more.
    unsafe fn destroy(memory: NonNull<ClassCaches>) {
        // SAFETY: per the contract; the caches are dropped in place, as pinning requires, before unmapping.
        unsafe {
            ptr::drop_in_place(memory.as_ptr());
            os::unmap(memory.cast(), CLASS_CACHES_BYTES);
        }
    }
}

/// How many `ClassAlloc`s a thread keeps caches for at once; a thread using more evicts the oldest.
const DIRECTORY_ENTRIES: usize = 4;

/// One directory entry: the allocator's address (0: empty) and its caches.
#[derive(Clone, Copy)]
struct Entry {
    allocator: usize,
    caches: Option<NonNull<ClassCaches>>,
}

const EMPTY_ENTRY: Entry = Entry {
    allocator: 0,
    caches: None,
};

/// A thread's directory of `ClassAlloc` caches, most recently used first.
struct Directory {
    entries: Cell<[Entry; DIRECTORY_ENTRIES]>,
}

impl Drop for Directory {
    fn drop(&mut self) {
        for entry in self.entries.replace([EMPTY_ENTRY; DIRECTORY_ENTRIES]) {
            if let Some(caches) = entry.caches {
                // SAFETY: the directory owned these caches and is going away.
                unsafe { ClassCaches::destroy(caches) };
            }
        }
    }
}

std::thread_local! {
    static DIRECTORY: Directory = const {
        Directory {
            entries: Cell::new([EMPTY_ENTRY; DIRECTORY_ENTRIES]),
        }
    };
}

impl Directory {
    /// This thread's caches for the allocator at `allocator`, made on first use.
    #[inline(always)]
    fn caches(&self, allocator: usize) -> Option<NonNull<ClassCaches>> {
        let entries = self.entries.get();
        if entries[0].allocator == allocator {
            return entries[0].caches;
        }
        self.caches_slow(allocator)
    }

    /// The position and entry of the allocator at `allocator`, if this thread has caches for it.
    fn find(&self, allocator: usize) -> Option<(usize, Entry)> {
        self.entries
            .get()
            .into_iter()
            .enumerate()
            .find(|(_, entry)| entry.allocator == allocator)
    }

    #[cold]
    #[inline(never)]
    fn caches_slow(&self, allocator: usize) -> Option<NonNull<ClassCaches>> {
        let mut entries = self.entries.get();
        let found = self.find(allocator);
        let entry = match found {
            Some((_, entry)) => entry,
            None => {
                // An allocator that was dropped left its entry behind with orphaned caches; a new one at
                // the same address finds them above and they attach to its slabs afresh.
                let caches = ClassCaches::create()?;
                let evicted = entries[DIRECTORY_ENTRIES - 1];
                if let Some(old) = evicted.caches {
                    // SAFETY: the entry leaves the directory, and no call is using its caches now (calls
                    // do not nest on one thread: nothing in them allocates).
                    unsafe { ClassCaches::destroy(old) };
                }
                Entry {
                    allocator,
                    caches: Some(caches),
                }
            }
        };
        // Move to the front.
        let position = found.map_or(DIRECTORY_ENTRIES - 1, |(index, _)| index);
        entries.copy_within(0..position, 1);
        entries[0] = entry;
        self.entries.set(entries);
        entry.caches
    }
}

/// Runs `visit` with each cache this thread keeps for the `ClassAlloc` at `allocator`, one per lifetime
/// class below `classes`, without making any: a thread that never used the allocator has none.
pub(crate) fn for_each_existing_class_cache(
    allocator: usize,
    classes: usize,
    mut visit: impl FnMut(usize, Pin<&SlabCache>),
) {
    debug_assert!(classes <= MAX_CLASSES);
    let caches = DIRECTORY
        .try_with(|directory| {
            directory
                .find(allocator)
                .and_then(|(_, entry)| entry.caches)
        })
        .ok()
        .flatten();
    if let Some(caches) = caches {
        for class in 0..classes {
            // SAFETY: as in `with_class_cache`: the caches are pinned in memory only this thread's
            // directory frees, and `visit` cannot reach the directory (it runs no allocator call that
            // could evict the entry: flushing allocates nothing).
            let cache = unsafe { Pin::new_unchecked(&(*caches.as_ptr()).caches[class]) };
            visit(class, cache);
        }
    }
}

/// Runs `cached` with this thread's cache for lifetime class `class` of the `ClassAlloc` at `allocator`,
/// or `uncached` when there is none (thread teardown, or the OS refused memory for the caches).
#[inline(always)]
pub(crate) fn with_class_cache<R>(
    allocator: usize,
    class: usize,
    cached: impl FnOnce(Pin<&SlabCache>) -> R,
    uncached: impl FnOnce() -> R,
) -> R {
    debug_assert!(class < MAX_CLASSES);
    let caches = DIRECTORY
        .try_with(|directory| directory.caches(allocator))
        .ok()
        .flatten();
    match caches {
        Some(caches) => {
            // SAFETY: the caches live in memory this thread mapped and only this thread's directory
            // frees (dropping them in place first), so they are pinned; `class` is below MAX_CLASSES.
            let cache = unsafe { Pin::new_unchecked(&(*caches.as_ptr()).caches[class]) };
            cached(cache)
        }
        None => uncached(),
    }
}
