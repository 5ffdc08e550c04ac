//! The page source saves system calls: slab blocks come out of one reserved arena instead of one `mmap`
//! each (plus two `munmap`s to trim it to alignment), and a medium block freed and allocated again costs
//! none. Alone in its binary (one test): the counters are process-wide.

use classalloc_slab::{os, pages, Slab};
use core::ptr::NonNull;

#[test]
#[cfg_attr(classalloc_asan, ignore = "arenas are 64 MiB under AddressSanitizer")]
fn blocks_and_medium_churn_cost_few_system_calls() {
    let slab = Slab::new();
    // 64 MiB of 64-byte objects: 65 blocks of 1 MiB.
    let count = (64 << 20) / 64;
    let mut objects: Vec<NonNull<u8>> = Vec::with_capacity(count);
    let before = os::counts();
    for _ in 0..count {
        let p = slab.malloc(64).unwrap();
        // SAFETY: a live 64-byte allocation.
        unsafe { p.as_ptr().write(1) };
        objects.push(p);
    }
    let filled = os::counts();
    let blocks = slab.totals().blocks;
    eprintln!(
        "64 MiB of 64 B objects: {blocks} blocks, {} mmap, {} munmap, {} madvise; {:?}",
        filled.maps - before.maps,
        filled.unmaps - before.unmaps,
        filled.purges - before.purges,
        pages::stats()
    );
    assert!(blocks >= 64);
    // One arena reservation at most (none if an arena was there already); per-block mapping took
    // `blocks` mmaps and up to twice as many munmaps.
    assert!(filled.maps - before.maps <= 1, "{filled:?} vs {before:?}");
    assert_eq!(filled.unmaps, before.unmaps);

    for p in objects.drain(..) {
        // SAFETY: live 64-byte allocations, freed once.
        unsafe { slab.free(p, 64).unwrap() };
    }
    let freed = os::counts();
    eprintln!(
        "freeing them: {} munmap, {} madvise",
        freed.unmaps - filled.unmaps,
        freed.purges - filled.purges
    );
    assert_eq!(freed.maps, filled.maps);
    assert_eq!(freed.unmaps, filled.unmaps, "blocks go back to the arena");
    // At most a purge of the block and one of its merge per block.
    assert!(freed.purges - filled.purges <= 2 * blocks);
    // The blocks the source keeps resident would be purged as their hold decays, during the churn below.
    pages::trim();

    // Medium churn: after the first round, a freed block is taken back from the cache: no system call.
    let size = 200_000;
    let p = slab.malloc(size).unwrap();
    // SAFETY: a live allocation of `size` bytes, freed once.
    unsafe { slab.free(p, size).unwrap() };
    let warm = os::counts();
    for round in 0..1000usize {
        let p = slab.malloc(size).unwrap();
        // SAFETY: a live allocation of `size` bytes, written then freed once.
        unsafe {
            p.as_ptr().write_bytes(round as u8, size);
            slab.free(p, size).unwrap();
        }
    }
    let churned = os::counts();
    eprintln!("1000 rounds of a 200 KB allocation: {:?}", churned);
    assert_eq!(churned, warm, "medium churn made system calls");

    // Slab churn: every round empties its block, which goes back to the source and comes back from its
    // cache, dirty (the cache always holds 1 MiB): no system call, and its pages stay resident.
    let class_blocks =
        |slab: &Slab| slab.class_stats(classalloc_slab::SizeClass::for_size(256).unwrap());
    let round = |slab: &Slab| {
        let objects: Vec<NonNull<u8>> = (0..3_000).map(|_| slab.malloc(256).unwrap()).collect();
        for &p in &objects {
            // SAFETY: a live 256-byte allocation.
            unsafe { p.as_ptr().write_bytes(0x25, 256) };
        }
        for p in objects {
            // SAFETY: a live 256-byte allocation, freed once.
            unsafe { slab.free(p, 256).unwrap() };
        }
    };
    // The medium block cached above would be purged as its hold decays, during the rounds.
    pages::trim();
    round(&slab);
    assert_eq!(class_blocks(&slab).blocks, 0);
    let warm = os::counts();
    for _ in 0..100 {
        round(&slab);
    }
    let churned = os::counts();
    eprintln!("100 rounds of 3,000 objects of 256 B: {churned:?} after {warm:?}");
    assert_eq!(churned, warm, "slab churn made system calls");
}
