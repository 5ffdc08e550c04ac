#![doc = include_str!("../README.md")]

mod class_alloc;
mod front;
mod global;
mod names;
mod scope;
mod seed_api;

pub use class_alloc::{ClassAlloc, ClassHandle, ClassReport, Report};
pub use classalloc_registry::{lifetime_class, strum, LifetimeClass, MAX_CLASSES};
pub use classalloc_slab::{
    AllocError, BlockGeometry, ClassStats, FreeError, LargeStats, SizeClass, Totals, CHECKED,
};
pub use global::Global;
pub use scope::with_class;
pub use seed_api::{
    aligned_alloc, aligned_free, calloc, free, malloc, realloc, recalloc, try_free,
};

use classalloc_slab::Slab;

/// The workspace README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadme;

/// `docs/lifetime-classes.md`'s example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/lifetime-classes.md")]
pub struct LifetimeClassesDoc;

/// The process-wide slab behind [`Global`] and the seed's functions.
static SLAB: Slab = Slab::new();

/// The counters of every size class, smallest first.
pub fn stats() -> impl Iterator<Item = ClassStats> {
    SLAB.stats()
}

/// The counters of allocations mapped directly from the OS (above 8 KiB).
pub fn large_stats() -> LargeStats {
    SLAB.large_stats()
}

/// Totals over every size class and the large allocations.
pub fn totals() -> Totals {
    SLAB.totals()
}

/// Gives back the memory the calling thread keeps for reuse, like `mi_collect(true)` or `malloc_trim(0)`:
/// its cache of free slots for [`Global`] and the seed functions goes back to the blocks (with the transfer
/// caches of the size classes it used), blocks left empty go back to the page source, and the page source
/// gives every freed block it keeps resident back to the OS ([`pages::trim`](classalloc_slab::pages::trim)).
///
/// Never needed for correctness. Without it, a thread's cache goes back when the thread exits, and the
/// page source gives freed blocks back on its own, all but 512 KiB, within
/// [`DECAY_MS`](classalloc_slab::pages::DECAY_MS) of its next call. Other threads' caches are left alone,
/// and so are the caches of [`ClassAlloc`]s ([`ClassAlloc::collect`] gives those back).
///
/// ```
/// let data: Vec<u64> = (0..100_000).collect();
/// drop(data);
/// classalloc::collect();
/// ```
pub fn collect() {
    front::with_global_cache(|cache| {
        if let Err(error) = SLAB.flush_cache(cache) {
            classalloc_slab::fatal::abort_with(format_args!(
                "{error}: found when collect() gave this thread's cached slots back"
            ));
        }
    });
    classalloc_slab::pages::trim();
}

/// Aborts on a misuse the allocator detected (a free that does not match an allocation), with
/// `classalloc: fatal: <misuse>: <ptr> (<size> B)` on standard error, written without allocating; going on
/// could corrupt memory. Shared by every entry point, the C ABI included, so all report misuse alike.
#[cold]
#[inline(never)]
pub fn abort_on_misuse(what: FreeError, ptr: *mut u8, size: usize) -> ! {
    classalloc_slab::fatal::abort_with(format_args!("{what}: {ptr:p} ({size} B)"))
}
