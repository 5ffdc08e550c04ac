//! Memory the page source hands out again is zero where it must be: slab blocks given back by their heads
//! (reused dirty from the source's cache, or purged) and medium blocks kept in the source's cache. Alone in its binary (one test), so that the process-wide source reuses
//! exactly the blocks this test gave back.

use classalloc_slab::{pages, SizeClass, Slab};
use core::ptr::NonNull;
use std::collections::HashSet;

fn all_bytes(ptr: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
        .iter()
        .all(|&b| b == byte)
}

#[test]
fn blocks_and_medium_allocations_are_aligned_and_zero_when_reused() {
    let slab = Slab::new();
    let class = SizeClass::for_size(64).unwrap();
    let geometry = slab.geometry(class);
    let count = 4 * geometry.capacity;
    let base_of = |p: NonNull<u8>| p.as_ptr() as usize & !(geometry.block_size - 1);

    // Four blocks of 64-byte slots, every byte written, then all freed: the blocks go back to the page
    // source, which keeps them resident (its cache) for reuse.
    let first: Vec<NonNull<u8>> = (0..count).map(|_| slab.malloc(64).unwrap()).collect();
    let first_blocks: HashSet<usize> = first.iter().map(|&p| base_of(p)).collect();
    assert_eq!(first_blocks.len(), 4);
    for &base in &first_blocks {
        assert_eq!(
            base % geometry.block_size,
            0,
            "blocks are aligned to their size"
        );
    }
    let dirty_all = |objects: &[NonNull<u8>]| {
        for &p in objects {
            // SAFETY: live 64-byte allocations.
            unsafe { p.as_ptr().write_bytes(0xFF, 64) };
        }
    };
    let free_all = |objects: Vec<NonNull<u8>>| {
        for p in objects {
            // SAFETY: live 64-byte allocations, freed once.
            unsafe { slab.free(p, 64).unwrap() };
        }
    };
    dirty_all(&first);
    free_all(first);
    assert_eq!(slab.class_stats(class).blocks, 0);
    assert!(
        pages::stats().cached_bytes >= geometry.block_size,
        "kept resident for reuse: {:?}",
        pages::stats()
    );

    // A cached block comes back dirty (the source kept at least the last one): calloc must clear every
    // slot it held, and the class counts its dirty pages resident from the start.
    let second: Vec<NonNull<u8>> = (0..count).map(|_| slab.calloc(64).unwrap()).collect();
    let second_blocks: HashSet<usize> = second.iter().map(|&p| base_of(p)).collect();
    assert!(
        first_blocks.intersection(&second_blocks).count() >= 1,
        "a cached block was reused"
    );
    for &p in &second {
        assert!(all_bytes(p, 64, 0), "calloc from a dirty block at {p:p}");
    }
    assert!(slab.class_stats(class).resident_bytes >= 4 * (geometry.block_size - 4096));
    dirty_all(&second);
    free_all(second);

    // Whatever the cache kept goes back to the buddy now: the next blocks come from the same pages,
    // purged, and calloc trusts their fresh slots to be zero (it does not clear them).
    pages::trim();
    assert_eq!(pages::stats().cached_bytes, 0);
    let third: Vec<NonNull<u8>> = (0..count).map(|_| slab.calloc(64).unwrap()).collect();
    let third_blocks: HashSet<usize> = third.iter().map(|&p| base_of(p)).collect();
    assert!(
        first_blocks.intersection(&third_blocks).count() >= 3,
        "the freed blocks were reused"
    );
    for &p in &third {
        assert!(all_bytes(p, 64, 0), "a purged block was not zero at {p:p}");
    }
    free_all(third);

    // A medium block comes back from the cache (LIFO: the same one), dirty for malloc, zero for calloc.
    let size = 256 << 10;
    let p = slab.malloc(size).unwrap();
    assert_eq!(p.as_ptr() as usize % size, 0);
    // SAFETY: a live allocation of `size` bytes.
    unsafe { p.as_ptr().write_bytes(0xEE, size) };
    // SAFETY: freed once, with its size.
    unsafe { slab.free(p, size).unwrap() };
    assert!(
        pages::stats().cached_bytes >= size,
        "kept resident for reuse"
    );
    let q = slab.malloc(size).unwrap();
    assert_eq!(q, p, "taken back from the cache");
    // SAFETY: freed once, with its size.
    unsafe { slab.free(q, size).unwrap() };
    let r = slab.calloc(size).unwrap();
    assert_eq!(r, p, "taken back from the cache");
    assert!(all_bytes(r, size, 0), "calloc of a cached block is zero");
    // SAFETY: live allocation, written then freed.
    unsafe {
        r.as_ptr().write_bytes(0xEE, size);
        slab.free(r, size).unwrap();
    }
    // Purged into the buddy and handed out again: zero without any clearing.
    pages::trim();
    let s = slab.malloc(size).unwrap();
    assert_eq!(s, p, "the buddy hands the same block out again");
    assert!(all_bytes(s, size, 0), "a purged block is zero");
    // SAFETY: freed once, with its size.
    unsafe { slab.free(s, size).unwrap() };
}
