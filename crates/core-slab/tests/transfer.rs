//! The transfer caches' adaptive limit: a free phase longer than the caches gives their memory back, a
//! round that fits keeps it, and allocating again lets the caches hold batches again.

use classalloc_slab::{Slab, SlabCache};
use core::alloc::Layout;
use core::pin::Pin;
use core::ptr::NonNull;

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => unreachable!(),
};

/// Slots of 64 bytes in a 1 MiB block of the seed geometry.
const SLOTS_PER_BLOCK: usize = 16_383;

fn alloc_many(slab: &Slab, cache: Pin<&SlabCache>, count: usize) -> Vec<NonNull<u8>> {
    (0..count)
        .map(|_| slab.alloc_cached(cache, LAYOUT).unwrap().cast())
        .collect()
}

fn free_all(slab: &Slab, cache: Pin<&SlabCache>, objects: Vec<NonNull<u8>>) {
    for object in objects {
        // SAFETY: allocated by `alloc_many` from this slab with LAYOUT, freed once.
        unsafe { slab.dealloc_cached(cache, object, LAYOUT).unwrap() };
    }
}

#[test]
fn a_free_phase_longer_than_the_transfer_caches_gives_their_blocks_back() {
    static SLAB: Slab = Slab::new();
    let cache = core::pin::pin!(SlabCache::new());
    // 32 MiB of slots, freed in allocation order: far more than the bin (256 KiB) and the transfer
    // caches (4 MiB) hold.
    let objects = alloc_many(&SLAB, cache.as_ref(), 32 * SLOTS_PER_BLOCK);
    assert_eq!(SLAB.totals().blocks, 32);
    free_all(&SLAB, cache.as_ref(), objects);
    // Only the bin's last slots keep blocks: the transfer caches were drained when the frees outran
    // them. With a fixed 4 MiB transfer cache the first batches would pin four more blocks.
    let blocks = SLAB.totals().blocks;
    assert!(
        blocks <= 2,
        "{blocks} blocks still mapped after freeing everything"
    );
    SLAB.flush_cache(cache.as_ref()).unwrap();
}

#[test]
fn a_round_that_fits_keeps_its_slots_cached_and_reuses_them() {
    static SLAB: Slab = Slab::new();
    let cache = core::pin::pin!(SlabCache::new());
    // 2.5 MiB of slots: one bin and nine batches in the transfer cache.
    let count = 40_000;
    let first_round = alloc_many(&SLAB, cache.as_ref(), count);
    let blocks = SLAB.totals().blocks;
    let mut first_addresses: Vec<usize> = first_round.iter().map(|p| p.as_ptr() as usize).collect();
    free_all(&SLAB, cache.as_ref(), first_round);
    assert_eq!(
        SLAB.totals().blocks,
        blocks,
        "the bin and the transfer cache keep the round's slots, and so its blocks"
    );
    let second_round = alloc_many(&SLAB, cache.as_ref(), count);
    let mut second_addresses: Vec<usize> =
        second_round.iter().map(|p| p.as_ptr() as usize).collect();
    first_addresses.sort_unstable();
    second_addresses.sort_unstable();
    assert_eq!(
        first_addresses, second_addresses,
        "the second round reuses the first's slots"
    );
    free_all(&SLAB, cache.as_ref(), second_round);
    SLAB.flush_cache(cache.as_ref()).unwrap();
}

#[test]
fn allocating_again_after_a_long_free_phase_lets_the_transfer_caches_hold_batches_again() {
    static SLAB: Slab = Slab::new();
    let cache = core::pin::pin!(SlabCache::new());
    let long_phase = alloc_many(&SLAB, cache.as_ref(), 32 * SLOTS_PER_BLOCK);
    free_all(&SLAB, cache.as_ref(), long_phase);
    assert!(SLAB.totals().blocks <= 2);
    // The limit fell to nothing during the frees; these allocations from the blocks raise it again by
    // what they take, so the round's frees fit in the bin and the transfer cache.
    let round = alloc_many(&SLAB, cache.as_ref(), 40_000);
    let blocks = SLAB.totals().blocks;
    assert!(
        blocks >= 3,
        "40,000 slots of 64 B span at least three blocks"
    );
    free_all(&SLAB, cache.as_ref(), round);
    assert_eq!(
        SLAB.totals().blocks,
        blocks,
        "the transfer cache holds the round's batches again"
    );
    SLAB.flush_cache(cache.as_ref()).unwrap();
}
