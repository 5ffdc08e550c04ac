//! Memory goes back: after medium allocations and slab blocks are freed, the process's anonymous resident
//! memory falls back to what it was: at once but for the source's bounded cache, within 1 MiB plus 1% once
//! the cache's hold has decayed, and all of it after `pages::trim`. Alone in its binary (one test), so that
//! nothing else moves the process's resident memory meanwhile.

use classalloc_slab::{pages, Slab};
use core::ptr::NonNull;

#[path = "support/rss.rs"]
mod rss;
use rss::anonymous_bytes;

const MIB: usize = 1 << 20;

#[test]
#[cfg_attr(
    classalloc_asan,
    ignore = "AddressSanitizer writes shadow memory for the free blocks it poisons"
)]
fn freed_medium_and_block_memory_leaves_the_process() {
    let slab = Slab::new();
    let small_count = (64 * MIB) / 64;
    // Large medium blocks, then many small ones: a 9000-byte allocation takes 3 pages of a 16 KiB block,
    // so pages left resident by the buddy's links (a page per free block) would show.
    let medium_sizes: Vec<usize> = [MIB, 300_000, 40_000, 2 * MIB + 5]
        .repeat(12)
        .into_iter()
        .chain([9000; 3000])
        .collect();
    let medium_count = medium_sizes.len();
    // Bookkeeping first, written through, so that it is part of the baseline.
    let mut small: Vec<usize> = vec![1; small_count];
    let mut medium: Vec<(usize, usize)> = vec![(1, 1); medium_count];
    let baseline = anonymous_bytes();

    let mut medium_bytes = 0;
    for (i, slot) in medium.iter_mut().enumerate() {
        let size = medium_sizes[i];
        let p = slab.malloc(size).unwrap();
        // SAFETY: a live allocation of `size` bytes.
        unsafe { p.as_ptr().write_bytes(0x4D, size) };
        *slot = (p.as_ptr() as usize, size);
        medium_bytes += size;
    }
    for slot in small.iter_mut() {
        let p = slab.malloc(64).unwrap();
        // SAFETY: a live 64-byte allocation.
        unsafe { p.as_ptr().write_bytes(0x53, 64) };
        *slot = p.as_ptr() as usize;
    }
    let peak = anonymous_bytes();
    let written = medium_bytes + 64 * small_count;
    eprintln!(
        "baseline {} MiB, peak {} MiB ({} MiB written)",
        baseline / MIB,
        peak / MIB,
        written / MIB
    );
    assert!(peak - baseline >= written * 95 / 100);

    for &(addr, size) in &medium {
        // SAFETY: live allocations of these sizes, freed once.
        unsafe {
            slab.free(NonNull::new(addr as *mut u8).unwrap(), size)
                .unwrap()
        };
    }
    for &addr in &small {
        // SAFETY: live 64-byte allocations, freed once.
        unsafe {
            slab.free(NonNull::new(addr as *mut u8).unwrap(), 64)
                .unwrap()
        };
    }
    let after = anonymous_bytes();
    let stats = pages::stats();
    eprintln!(
        "after the frees: {} KiB above the baseline; source {:?}",
        (after.saturating_sub(baseline)) / 1024,
        stats
    );
    // What may stay at once: the source's cache (at most 4 MiB), the buddy's links (a page per free block)
    // and the arena's metadata.
    assert!(stats.cached_bytes <= 4 * MIB, "{stats:?}");
    assert!(
        after <= baseline + 6 * MIB,
        "{} MiB still resident above the baseline",
        (after - baseline) / MIB
    );

    // The cache's hold decays: once its blocks are older than DECAY_MS, the next call into the source
    // (here a medium allocation and its free) gives all but its floor (1 MiB) back.
    std::thread::sleep(std::time::Duration::from_millis(2 * pages::DECAY_MS + 10));
    let p = slab.malloc(100_000).unwrap();
    // SAFETY: a live allocation, freed once.
    unsafe { slab.free(p, 100_000).unwrap() };
    let decayed = anonymous_bytes();
    let stats = pages::stats();
    eprintln!(
        "after the decay: {} KiB above the baseline; source {:?}",
        decayed.saturating_sub(baseline) / 1024,
        stats
    );
    assert!(stats.cached_bytes <= MIB, "{stats:?}");
    assert!(
        decayed <= baseline + MIB + baseline / 100,
        "{} KiB still resident above the baseline",
        (decayed - baseline) / 1024
    );

    pages::trim();
    let trimmed = anonymous_bytes();
    eprintln!(
        "after trim: {} KiB above the baseline",
        trimmed.saturating_sub(baseline) / 1024
    );
    assert_eq!(pages::stats().cached_bytes, 0);
    assert!(trimmed <= baseline + MIB);
    drop((small, medium));
}
