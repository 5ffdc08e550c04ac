//! Medium allocations (above the slab classes, blocks of at most `MAX_MEDIUM_SIZE` from the page source):
//! natural alignment, checked frees, zeroing, release per slab. Every assertion holds whatever the other
//! tests of this binary do meanwhile with the shared page source.

use classalloc_slab::{pages, AllocError, FreeError, Slab, MAX_MEDIUM_SIZE, MAX_SMALL_SIZE};
use core::alloc::Layout;
use core::ptr::NonNull;

fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { ptr.as_ptr().write_bytes(byte, len) }
}

fn all_bytes(ptr: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
        .iter()
        .all(|&b| b == byte)
}

fn page_round(size: usize) -> usize {
    size.next_multiple_of(4096)
}

#[test]
fn medium_layouts_are_naturally_aligned_for_every_power_of_two_alignment() {
    let slab = Slab::new();
    let mut align = 1;
    while align <= MAX_MEDIUM_SIZE {
        for size in [1, 100, 4096, MAX_SMALL_SIZE + 1, 20_000, 65_536, 300_000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            if size <= MAX_SMALL_SIZE && align <= 4096 {
                continue; // a slab class
            }
            let block = slab.alloc(layout).unwrap();
            let addr = block.cast::<u8>().as_ptr() as usize;
            // The block is a power of two of at least the size (in pages) and the alignment, aligned to
            // itself: every alignment up to the block comes for free.
            let natural = page_round(size).max(align).next_power_of_two();
            if natural <= MAX_MEDIUM_SIZE {
                assert_eq!(addr % natural, 0, "{layout:?} at {addr:#x}");
            }
            assert_eq!(addr % align, 0, "{layout:?}");
            assert_eq!(block.len(), page_round(size), "{layout:?}");
            fill(block.cast(), block.len(), 0xA5);
            // Free with the whole returned length: the `Allocator` "fits" rule.
            let fitted = Layout::from_size_align(block.len(), align).unwrap();
            // SAFETY: live allocation; same alignment, a size within the usable length.
            unsafe { slab.dealloc(block.cast(), fitted).unwrap() };
        }
        align *= 2;
    }
    // (Live bytes follow what the frees state, here the fitted lengths: not checked.)
    let stats = slab.large_stats();
    assert_eq!((stats.live_objects, stats.mapped_bytes), (0, 0));
}

#[test]
fn size_only_medium_allocations_are_aligned_to_their_block() {
    let slab = Slab::new();
    for size in [
        MAX_SMALL_SIZE + 1,
        12_345,
        1 << 16,
        100_000,
        1 << 20,
        MAX_MEDIUM_SIZE,
    ] {
        let p = slab.malloc(size).unwrap();
        let block = page_round(size).next_power_of_two();
        assert_eq!(p.as_ptr() as usize % block, 0, "size {size}");
        fill(p, size, 0x3C);
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
    }
    // Just above the limit: mapped on its own, page-aligned.
    let size = MAX_MEDIUM_SIZE + 1;
    let p = slab.malloc(size).unwrap();
    assert_eq!(p.as_ptr() as usize % 4096, 0);
    assert_eq!(slab.large_stats().mapped_bytes, page_round(size));
    // SAFETY: live allocation of `size` bytes.
    unsafe { slab.free(p, size).unwrap() };
}

#[test]
fn bad_frees_of_medium_allocations_are_refused_and_change_nothing() {
    let slab = Slab::new();
    let other = Slab::new();
    let size = 100_000; // 25 pages in a 128 KiB block
    let p = slab.malloc(size).unwrap();
    fill(p, size, 0x42);
    let interior_page = NonNull::new(p.as_ptr().wrapping_add(4096)).unwrap();
    let interior_byte = NonNull::new(p.as_ptr().wrapping_add(8)).unwrap();
    // SAFETY: every refused free leaves the allocation untouched; the last one frees it.
    unsafe {
        // Another page count, in the same block order and in another one.
        assert_eq!(slab.free(p, size + 4096), Err(FreeError::ClassMismatch));
        assert_eq!(slab.free(p, 200_000), Err(FreeError::ClassMismatch));
        assert_eq!(slab.free(p, 20_000), Err(FreeError::ClassMismatch));
        // Another alignment: another block order.
        let over_aligned = Layout::from_size_align(size, 1 << 18).unwrap();
        assert_eq!(slab.dealloc(p, over_aligned), Err(FreeError::ClassMismatch));
        assert_eq!(slab.free(interior_page, size), Err(FreeError::NotASlot));
        assert_eq!(slab.free(interior_byte, size), Err(FreeError::Misaligned));
        // Another slab does not own it, although both draw on the same page source.
        assert_eq!(other.free(p, size), Err(FreeError::NotASlot));
        assert!(!other.owns_large(p) && slab.owns_large(p));
        assert!(all_bytes(p, size, 0x42), "a refused free changed the block");
        assert_eq!(slab.large_stats().live_objects, 1);
        slab.free(p, size).unwrap();
        assert_eq!(slab.free(p, size), Err(FreeError::NotASlot), "double free");
        // A resize of a freed pointer is refused too.
        assert_eq!(
            slab.remalloc(p, size, size + 10),
            Err(AllocError::NotAllocated(FreeError::NotASlot))
        );
    }
    let stats = slab.large_stats();
    assert_eq!(
        (stats.live_objects, stats.live_bytes, stats.mapped_bytes),
        (0, 0, 0)
    );
}

#[test]
fn zeroed_medium_allocations_are_zero_even_in_reused_blocks() {
    let slab = Slab::new();
    let size = 256 << 10;
    for round in 0..50u8 {
        let p = slab.malloc(size).unwrap();
        fill(p, size, round | 1);
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
        // Most likely the same block, straight from the source's cache: it must be zero all the same.
        let q = slab.calloc(size).unwrap();
        assert!(all_bytes(q, size, 0), "round {round}");
        let layout = Layout::from_size_align(size / 2, 1 << 16).unwrap();
        let r = slab.alloc_zeroed(layout).unwrap();
        assert!(all_bytes(r.cast(), r.len(), 0), "round {round}");
        fill(q, size, 0xEE);
        fill(r.cast(), r.len(), 0xDD);
        // SAFETY: live allocations of these sizes.
        unsafe {
            slab.free(q, size).unwrap();
            slab.dealloc(r.cast(), layout).unwrap();
        }
    }
}

#[test]
fn medium_resizes_stay_in_their_block_and_move_across_blocks() {
    let slab = Slab::new();
    let p = slab.malloc(40_000).unwrap(); // 10 pages of a 64 KiB block
    fill(p, 40_000, 7);
    // SAFETY: each resize is of the live allocation with its current size.
    unsafe {
        let q = slab.remalloc(p, 40_000, 60_000).unwrap();
        assert_eq!(q, p, "same block order: resized in place");
        assert!(all_bytes(q, 40_000, 7));
        fill(q, 60_000, 8);
        assert_eq!(slab.free(q, 40_000), Err(FreeError::ClassMismatch));
        let r = slab.remalloc(q, 60_000, 70_000).unwrap();
        assert_ne!(r, q, "a 128 KiB block is another block");
        assert!(all_bytes(r, 60_000, 8));
        let s = slab.recalloc(r, 70_000, 5_000_000).unwrap(); // huge: mapped on its own
        assert!(all_bytes(s, 60_000, 8));
        assert!(all_bytes(
            NonNull::new(s.as_ptr().add(70_000)).unwrap(),
            5_000_000 - 70_000,
            0
        ));
        let t = slab.remalloc(s, 5_000_000, 10_000).unwrap(); // medium again
        assert!(all_bytes(t, 10_000, 8));
        assert_eq!(slab.large_stats().live_bytes, 10_000);
        slab.free(t, 10_000).unwrap();
    }
    assert_eq!(slab.large_stats(), Default::default());
}

#[test]
fn release_returns_a_slabs_medium_allocations_and_nothing_of_another_slab() {
    let doomed = Slab::new();
    let kept = Slab::new();
    let mut doomed_blocks = Vec::new();
    let mut kept_blocks = Vec::new();
    for i in 0..40usize {
        let size = [9000, 30_000, 100_000, 1 << 20][i % 4];
        let p = doomed.malloc(size).unwrap();
        fill(p, size, 0xD0);
        doomed_blocks.push((p, size));
        let q = kept.malloc(size).unwrap();
        fill(q, size, i as u8);
        kept_blocks.push((q, size));
    }
    let before = doomed.large_stats();
    assert_eq!(before.live_objects, 40);
    assert!(before.mapped_bytes >= doomed_blocks.iter().map(|(_, s)| page_round(*s)).sum());
    let in_use = pages::stats().in_use_bytes;
    // SAFETY: nothing of `doomed` is used after this point.
    unsafe { doomed.release() };
    assert_eq!(doomed.large_stats(), Default::default());
    assert!(pages::stats().in_use_bytes <= in_use - before.mapped_bytes + (64 << 20));
    for (p, _) in &doomed_blocks {
        assert!(!doomed.owns_large(*p));
    }
    for (i, (q, size)) in kept_blocks.iter().enumerate() {
        assert!(kept.owns_large(*q));
        assert!(
            all_bytes(*q, *size, i as u8),
            "a block of the other slab changed"
        );
    }
    for (q, size) in kept_blocks {
        // SAFETY: live allocations of `kept`.
        unsafe { kept.free(q, size).unwrap() };
    }
    // The released slab is still usable.
    let p = doomed.malloc(50_000).unwrap();
    // SAFETY: live allocation of 50 000 bytes.
    unsafe { doomed.free(p, 50_000).unwrap() };
}

#[test]
fn bad_sizes_and_alignments_are_errors() {
    let slab = Slab::new();
    for size in [usize::MAX, usize::MAX - 4095, isize::MAX as usize + 1] {
        assert_eq!(slab.malloc(size), Err(AllocError::TooLarge));
    }
    assert_eq!(slab.alloc_aligned(100, 3), Err(AllocError::BadAlignment));
    // An alignment above the largest medium block is served on its own (over-mapped and trimmed).
    let layout = Layout::from_size_align(100, MAX_MEDIUM_SIZE * 2).unwrap();
    let p = slab.alloc(layout).unwrap();
    assert_eq!(p.cast::<u8>().as_ptr() as usize % (MAX_MEDIUM_SIZE * 2), 0);
    // SAFETY: live allocation of `layout`; the medium route for it is refused first.
    unsafe {
        let medium = Layout::from_size_align(100, MAX_MEDIUM_SIZE).unwrap();
        assert_eq!(
            slab.dealloc(p.cast(), medium),
            Err(FreeError::ClassMismatch)
        );
        slab.dealloc(p.cast(), layout).unwrap();
    }
}

#[test]
fn the_page_source_counts_what_it_holds() {
    let slab = Slab::new();
    let p = slab.malloc(64).unwrap();
    let q = slab.malloc(1 << 20).unwrap();
    let stats = pages::stats();
    assert!(stats.arenas >= 1 && stats.reserved_bytes >= 64 << 20);
    assert!(stats.in_use_bytes >= 2 << 20, "{stats:?}");
    assert!(stats.cached_bytes <= 4 << 20);
    // SAFETY: live allocations of these sizes.
    unsafe {
        slab.free(p, 64).unwrap();
        slab.free(q, 1 << 20).unwrap();
    }
    pages::trim();
    assert!(pages::stats().cached_bytes <= 4 << 20);
}

/// Whether every 251st byte (and the last) of `len` bytes at `ptr` equals `byte`: a cheap check of large
/// blocks.
fn sampled(ptr: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) };
    bytes.iter().step_by(251).all(|&b| b == byte) && bytes[len - 1] == byte
}

#[test]
fn threads_share_the_page_source_and_never_share_a_block() {
    let slab = Slab::new();
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let slab = &slab;
            scope.spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (thread << 32);
                let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
                for step in 0..4000usize {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if live.len() < 48 && (rng & 3 != 0 || live.is_empty()) {
                        let size = match (rng >> 8) % 4 {
                            0 => 64,
                            1 => 9000 + (rng >> 16) as usize % 60_000,
                            2 => 100_000 + (rng >> 16) as usize % 900_000,
                            _ => 1 << 20,
                        };
                        let p = if rng & 4 == 0 {
                            let p = slab.calloc(size).unwrap();
                            assert!(sampled(p, size, 0), "calloc gave dirty memory");
                            p
                        } else {
                            slab.malloc(size).unwrap()
                        };
                        let tag = (thread as u8) << 6 | (step % 63) as u8;
                        fill(p, size, tag);
                        live.push((p, size, tag));
                    } else {
                        let (p, size, tag) = live.swap_remove((rng >> 20) as usize % live.len());
                        assert!(sampled(p, size, tag), "another allocation wrote here");
                        // SAFETY: a live allocation of `size` bytes, freed once.
                        unsafe { slab.free(p, size).unwrap() };
                    }
                }
                for (p, size, tag) in live {
                    assert!(sampled(p, size, tag));
                    // SAFETY: a live allocation of `size` bytes, freed once.
                    unsafe { slab.free(p, size).unwrap() };
                }
            });
        }
    });
    assert_eq!(slab.large_stats(), Default::default());
    assert_eq!(slab.totals().live_objects, 0);
}
