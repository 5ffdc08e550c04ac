//! Releasing a whole slab, owner tags, and the registry of large allocations.

use classalloc_slab::{FreeError, SizeClass, Slab, SlabCache};
use core::alloc::Layout;
use core::pin::pin;
use core::ptr::NonNull;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 4096
}

#[test]
fn release_returns_every_block_and_large_allocation_and_the_slab_stays_usable() {
    let slab = Slab::new();
    let mut kept = Vec::new();
    for i in 0..200_000usize {
        let size = [8, 24, 100, 1000, 5000][i % 5];
        let layout = Layout::from_size_align(size, 8).unwrap();
        let p = slab.alloc(layout).unwrap();
        // SAFETY: the block holds at least `size` bytes.
        unsafe { p.cast::<u8>().as_ptr().write_bytes(1, size) };
        kept.push(p);
    }
    let large: Vec<_> = (0..50).map(|_| slab.malloc(1 << 20).unwrap()).collect();
    for p in &large {
        // SAFETY: 1 MiB allocations; touch every page.
        unsafe { p.as_ptr().write_bytes(2, 1 << 20) };
    }
    let before = slab.totals();
    assert!(before.blocks > 100 && before.resident_bytes > 200 << 20);
    let rss_before = resident_bytes();
    // SAFETY: nothing allocated above is used after this point (`kept` and `large` are only dropped).
    unsafe { slab.release() };
    let rss_after = resident_bytes();
    let after = slab.totals();
    assert_eq!(after.blocks, 0);
    assert_eq!(after.live_objects, 0);
    assert_eq!(after.resident_bytes, 0);
    assert_eq!(slab.large_stats().live_objects, 0);
    assert!(
        rss_before - rss_after >= before.resident_bytes * 9 / 10,
        "RSS fell by {} of {} resident",
        rss_before - rss_after,
        before.resident_bytes
    );
    drop((kept, large));
    // Still usable.
    let p = slab.malloc(64).unwrap();
    // SAFETY: live allocation of 64 bytes.
    unsafe { slab.free(p, 64).unwrap() };
}

#[test]
fn owner_tags_identify_the_slab_of_every_small_pointer() {
    let first = Slab::new().owned_by(3);
    let second = Slab::new().owned_by(9);
    for size in [1usize, 2, 24, 100, 8192] {
        let layout = Layout::from_size_align(size, 1).unwrap();
        let a = first.alloc(layout).unwrap().cast::<u8>();
        let b = second.alloc(layout).unwrap().cast::<u8>();
        // SAFETY: live allocations of `layout`; either slab can read the header (same configuration).
        unsafe {
            assert_eq!(first.owner_of(a, layout), Some(3));
            assert_eq!(first.owner_of(b, layout), Some(9));
            assert_eq!(second.owner_of(a, layout), Some(3));
            assert_eq!(second.dealloc(a, layout), Err(FreeError::OwnerMismatch));
            first.dealloc(a, layout).unwrap();
            second.dealloc(b, layout).unwrap();
        }
    }
    let big = Layout::from_size_align(100_000, 8).unwrap();
    let p = second.alloc(big).unwrap().cast::<u8>();
    // SAFETY: live large allocation.
    assert_eq!(unsafe { first.owner_of(p, big) }, None);
    assert!(second.owns_large(p) && !first.owns_large(p));
    // SAFETY: the wrong slab refuses it without touching it; the right one frees it.
    unsafe {
        assert_eq!(first.dealloc(p, big), Err(FreeError::NotASlot));
        second.dealloc(p, big).unwrap();
    }
}

#[test]
fn the_large_registry_checks_frees_and_survives_many_entries() {
    let slab = Slab::new();
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut rng = 0x1234_5678_9ABC_DEF1u64;
    for step in 0..20_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if live.len() < 3000 && (rng & 3 != 0 || live.is_empty()) {
            let size = 8193 + (rng >> 20) as usize % 50_000;
            let p = slab.malloc(size).unwrap();
            // SAFETY: the allocation holds `size` bytes.
            unsafe { p.as_ptr().cast::<usize>().write(step) };
            live.push((p, size));
        } else {
            let (p, size) = live.swap_remove((rng >> 8) as usize % live.len());
            // SAFETY: each refused free changes nothing; the last frees the live allocation.
            unsafe {
                let wrong = size + 4096 * 4;
                assert_eq!(slab.free(p, wrong), Err(FreeError::ClassMismatch));
                slab.free(p, size).unwrap();
                assert_eq!(slab.free(p, size), Err(FreeError::NotASlot), "double free");
            }
        }
    }
    assert_eq!(slab.large_stats().live_objects, live.len());
    for (p, size) in live {
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
    }
    let stats = slab.large_stats();
    assert_eq!(
        (stats.live_objects, stats.live_bytes, stats.mapped_bytes),
        (0, 0, 0)
    );
    assert_eq!(
        slab.class_stats(SizeClass::for_size(8).unwrap()).blocks,
        0,
        "the registry lives outside the slabs"
    );
}

/// Found by `cargo xtask fuzz` (facade target): an in-place resize counted on a thread cache in a class
/// the cache had not touched (here the 4-byte class, which is never cached) was forgotten by `release`,
/// which clears the counts of touched classes only, so the slab showed `live_bytes == usize::MAX` with
/// nothing allocated.
#[test]
fn release_forgets_what_an_in_place_resize_counted_on_a_cache() {
    let slab = Slab::new();
    let cache = pin!(SlabCache::new());
    // SAFETY: every allocation is freed once, with its size, or forgotten at the release.
    unsafe {
        // A cached call in another class attaches the cache to the slab.
        let warm = slab.malloc_cached(cache.as_ref(), 64).unwrap();
        slab.free_cached(cache.as_ref(), warm, 64).unwrap();
        // The 4-byte class: allocated and freed under the locks, resized in place through the cache.
        let p = slab.malloc_cached(cache.as_ref(), 4).unwrap();
        let p = slab.remalloc_cached(cache.as_ref(), p, 4, 3).unwrap();
        slab.free_cached(cache.as_ref(), p, 3).unwrap();
        assert_eq!(
            (slab.totals().live_objects, slab.totals().live_bytes),
            (0, 0)
        );
        // A live object resized in place, then released with the slab.
        let q = slab.malloc_cached(cache.as_ref(), 4).unwrap();
        slab.remalloc_cached(cache.as_ref(), q, 4, 3).unwrap();
        slab.release();
    }
    let totals = slab.totals();
    assert_eq!((totals.live_objects, totals.live_bytes), (0, 0));
}

/// The same forgotten count, when the cache's thread exits: the resize made on another thread's cache
/// must be folded into the slab's counts.
#[test]
fn a_resize_counted_on_an_exiting_threads_cache_is_kept() {
    let slab = Slab::new();
    let layout = Layout::from_size_align(17, 1).unwrap();
    let p = slab.alloc(layout).unwrap().cast::<u8>();
    /// The allocation, handed to the other thread.
    struct Live(NonNull<u8>);
    // SAFETY: the allocation is plain memory of the slab, which is `Sync`; one thread uses it at a time.
    unsafe impl Send for Live {}
    let live = Live(p);
    let slab = &slab;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let live = live;
            let p = live.0;
            let cache = pin!(SlabCache::new());
            // SAFETY: `warm` is freed at once; `p` is live with `layout` and resized within its class
            // (17 and 24 bytes share the 24-byte class), so it stays where it is.
            unsafe {
                let warm = slab.malloc_cached(cache.as_ref(), 64).unwrap();
                slab.free_cached(cache.as_ref(), warm, 64).unwrap();
                let same = slab.realloc_cached(cache.as_ref(), p, layout, 24).unwrap();
                assert_eq!(same.cast::<u8>(), p);
            }
            // The cache detaches here, folding its counts into the slab's.
        });
    });
    let totals = slab.totals();
    assert_eq!((totals.live_objects, totals.live_bytes), (1, 24));
    // SAFETY: `p` is live with 24 bytes and alignment 1.
    unsafe {
        slab.dealloc(p, Layout::from_size_align(24, 1).unwrap())
            .unwrap()
    };
    let totals = slab.totals();
    assert_eq!((totals.live_objects, totals.live_bytes), (0, 0));
}
