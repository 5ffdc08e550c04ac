//! The core region: construction over any span, allocation, the error contract, and the bugs others shipped.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::ptr::NonNull;

use classalloc_buddy::region::{MIN_ORDER_FLOOR, ORDER_LIMIT};
use classalloc_buddy::{Region, RegionFreeError, RegionInitError};
use common::{all_equal, fill, AlignedBuf, Rng};

/// A region over the whole of `buf`, with metadata in a separate buffer (returned to keep it alive).
fn region_over(
    buf: &AlignedBuf,
    offset: usize,
    len: usize,
    min: u32,
    max: u32,
) -> (Region, Vec<u64>) {
    let start = buf.at(offset);
    let words =
        Region::metadata_words(start.as_ptr() as usize, len, min, max).expect("valid geometry");
    let mut meta = vec![u64::MAX; words];
    let meta_ptr = NonNull::new(meta.as_mut_ptr()).unwrap();
    // SAFETY: the span lies in `buf`, which outlives the region in every test; `meta` is a separate buffer kept
    // alive beside the region (its storage does not move when the Vec is moved).
    let region = unsafe { Region::with_metadata(start, len, min, max, meta_ptr, words, false) }
        .expect("region builds");
    (region, meta)
}

#[test]
fn a_fresh_aligned_region_is_one_free_block_and_can_be_handed_out_whole() {
    let buf = AlignedBuf::new(1 << 16, 1 << 16, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 16, 4, 16);
    let stats = region.stats();
    assert_eq!(stats.managed_bytes, 1 << 16);
    assert_eq!(stats.free_bytes, 1 << 16);
    assert_eq!(stats.allocated_bytes, 0);
    assert_eq!(stats.largest_free_order, Some(16));
    assert_eq!(region.free_block_count(16), 1);
    region.check_invariants().unwrap();

    let whole = region.alloc(16).expect("the whole region is one block");
    assert_eq!(whole, buf.ptr());
    assert_eq!(
        region.alloc(4),
        None,
        "nothing is left after the whole region"
    );
    assert_eq!(region.stats().free_bytes, 0);
    region.free(whole, 16).unwrap();
    assert_eq!(region.stats().largest_free_order, Some(16));
    region.check_invariants().unwrap();
}

#[test]
fn orders_outside_the_region_are_refused_and_small_orders_round_up() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 12, 5, 12);
    assert_eq!(region.alloc(13), None);
    assert_eq!(region.alloc(63), None);
    assert_eq!(region.alloc(u32::MAX), None);
    let small = region
        .alloc(0)
        .expect("order 0 is served with the smallest block");
    assert_eq!(region.stats().allocated_bytes, 32);
    assert_eq!(region.live_order(small), Ok(5));
    assert_eq!(region.free(small, 4), Err(RegionFreeError::BadOrder));
    assert_eq!(region.free(small, 13), Err(RegionFreeError::BadOrder));
    region.free(small, 5).unwrap();
}

#[test]
fn order_for_maps_sizes_and_alignments_without_overflow() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (region, _meta) = region_over(&buf, 0, 1 << 12, 4, 12);
    assert_eq!(region.order_for(0, 1), Some(4));
    assert_eq!(region.order_for(1, 1), Some(4));
    assert_eq!(region.order_for(17, 1), Some(5));
    assert_eq!(region.order_for(17, 64), Some(6));
    assert_eq!(region.order_for(4096, 8), Some(12));
    assert_eq!(region.order_for(4097, 8), None);
    assert_eq!(region.order_for(usize::MAX, 8), None);
    assert_eq!(region.order_for(usize::MAX - 7, 1), None);
    assert_eq!(
        region.order_for(8, 3),
        None,
        "alignments must be powers of two"
    );
    assert_eq!(region.order_for(8, 0), None);
}

#[test]
fn every_block_is_naturally_aligned_in_absolute_addresses() {
    // Start the region at an odd offset: blocks must still be aligned to their own size in absolute terms.
    let buf = AlignedBuf::new(1 << 16, 1 << 16, 0);
    let (mut region, _meta) = region_over(&buf, 48, (1 << 16) - 48 - 16, 4, 14);
    let mut rng = Rng(7);
    let mut live = Vec::new();
    for _ in 0..500 {
        let order = 4 + rng.below(8) as u32;
        if let Some(block) = region.alloc(order) {
            assert_eq!(
                block.as_ptr() as usize % (1 << order),
                0,
                "order {order} block misaligned"
            );
            live.push((block, order));
        }
    }
    assert!(!live.is_empty());
    region.check_invariants().unwrap();
    for (block, order) in live {
        region.free(block, order).unwrap();
    }
    region.check_invariants().unwrap();
}

#[test]
fn unaligned_regions_of_odd_length_hand_out_only_their_own_bytes() {
    const GUARD: u8 = 0xA5;
    for (offset, len) in [
        (1, 1000),
        (8, 1000),
        (24, 4096 - 40),
        (4000, 5000),
        (3, 17_000),
    ] {
        let buf = AlignedBuf::new(32 * 1024, 4096, GUARD);
        let start = buf.addr() + offset;
        let end = start + len;
        let (mut region, _meta) = region_over(&buf, offset, len, 4, 12);
        let expected = (end & !15) - ((start + 15) & !15);
        assert_eq!(
            region.stats().managed_bytes,
            expected,
            "offset {offset} len {len}"
        );
        // Fill the region with smallest blocks: every one must lie inside the span, and all of it is reachable.
        let mut count = 0;
        while let Some(block) = region.alloc(4) {
            let addr = block.as_ptr() as usize;
            assert!(
                addr >= start && addr + 16 <= end,
                "block {addr:#x} outside {start:#x}..{end:#x}"
            );
            // SAFETY: the block is 16 bytes inside `buf`, handed out to this test.
            unsafe { fill(block, 16, 0x11) };
            count += 1;
        }
        assert_eq!(count * 16, expected);
        // Nothing outside the span was written: not by the allocator, not by the test through its blocks.
        let bytes = buf.bytes();
        assert!(
            bytes[..offset].iter().all(|&b| b == GUARD),
            "prefix written"
        );
        assert!(
            bytes[offset + len..].iter().all(|&b| b == GUARD),
            "tail written"
        );
        region.reset();
        assert_eq!(region.stats().free_bytes, expected);
        region.check_invariants().unwrap();
    }
}

#[test]
fn tiny_regions_are_refused_or_served_without_writing_outside_them() {
    const GUARD: u8 = 0x5A;
    for offset in 0..24 {
        for len in 0..80 {
            let buf = AlignedBuf::new(256, 64, GUARD);
            // SAFETY: the span lies in `buf`, which outlives the region.
            let built = unsafe { Region::in_place(buf.at(64 + offset), len, 4, 8) };
            match built {
                Ok(mut region) => {
                    let stats = region.stats();
                    assert!(stats.managed_bytes >= 16 && stats.managed_bytes <= len);
                    while let Some(block) = region.alloc(4) {
                        let addr = block.as_ptr() as usize;
                        let start = buf.addr() + 64 + offset;
                        assert!(addr >= start && addr + 16 <= start + len);
                    }
                    region.check_invariants().unwrap();
                }
                Err(error) => assert_eq!(
                    error,
                    RegionInitError::TooSmall,
                    "offset {offset} len {len}"
                ),
            }
            let bytes = buf.bytes();
            assert!(
                bytes[..64 + offset].iter().all(|&b| b == GUARD),
                "prefix written: {offset} {len}"
            );
            assert!(
                bytes[64 + offset + len..].iter().all(|&b| b == GUARD),
                "tail written: {offset} {len}"
            );
        }
    }
}

#[test]
fn in_place_metadata_stays_inside_the_region() {
    const GUARD: u8 = 0x3C;
    let buf = AlignedBuf::new(3 * 4096, 4096, GUARD);
    let len = 4096 + 100;
    // SAFETY: the span lies in `buf`, which outlives the region.
    let mut region = unsafe { Region::in_place(buf.at(4096), len, 4, 12) }.unwrap();
    assert!(region.usable_start() >= buf.addr() + 4096);
    assert!(region.usable_end() <= buf.addr() + 4096 + len);
    while let Some(block) = region.alloc(4) {
        // SAFETY: a 16-byte block handed out to the test.
        unsafe { fill(block, 16, 0x77) };
    }
    region.check_invariants().unwrap();
    let bytes = buf.bytes();
    assert!(bytes[..4096].iter().all(|&b| b == GUARD));
    assert!(bytes[4096 + len..].iter().all(|&b| b == GUARD));
}

#[test]
fn bad_geometry_is_an_error() {
    let base = 1usize << 20;
    assert_eq!(
        Region::metadata_words(base, 4096, MIN_ORDER_FLOOR - 1, 12),
        Err(RegionInitError::BadOrders)
    );
    assert_eq!(
        Region::metadata_words(base, 4096, 13, 12),
        Err(RegionInitError::BadOrders)
    );
    assert_eq!(
        Region::metadata_words(base, 4096, 4, ORDER_LIMIT),
        Err(RegionInitError::BadOrders)
    );
    assert_eq!(
        Region::metadata_words(base, 15, 4, 12),
        Err(RegionInitError::TooSmall)
    );
    assert_eq!(
        Region::metadata_words(base + 1, 16, 4, 12),
        Err(RegionInitError::TooSmall)
    );
    assert_eq!(
        Region::metadata_words(usize::MAX - 100, 200, 4, 12),
        Err(RegionInitError::AddressOverflow)
    );
    assert_eq!(
        Region::metadata_words(usize::MAX - 4095, 4000, 4, 20),
        Err(RegionInitError::AddressOverflow)
    );
    assert!(Region::metadata_words(base, 4096, 4, 12).unwrap() > 0);

    let buf = AlignedBuf::new(4096, 4096, 0);
    let words = Region::metadata_words(buf.addr(), 4096, 4, 12).unwrap();
    let mut meta = vec![0u64; words];
    let meta_ptr = NonNull::new(meta.as_mut_ptr()).unwrap();
    // SAFETY: valid buffers; the call must refuse the short metadata before using it.
    let short =
        unsafe { Region::with_metadata(buf.ptr(), 4096, 4, 12, meta_ptr, words - 1, false) };
    assert_eq!(short.unwrap_err(), RegionInitError::MetadataTooSmall);
    let inside = NonNull::new(buf.at(2048).as_ptr().cast::<u64>()).unwrap();
    // SAFETY: valid buffers; the call must refuse metadata inside the region before using it.
    let overlapping =
        unsafe { Region::with_metadata(buf.ptr(), 4096, 4, 12, inside, words, false) };
    assert_eq!(
        overlapping.unwrap_err(),
        RegionInitError::MetadataOverlapsRegion
    );
}

#[test]
fn bad_frees_are_reported_and_change_nothing() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 12, 4, 12);
    let a = region.alloc(6).unwrap(); // 64 bytes
    let b = region.alloc(4).unwrap();
    let before = region.stats();

    let outside = NonNull::new((buf.addr() + (1 << 12)) as *mut u8).unwrap();
    let below = NonNull::new((buf.addr() - 16) as *mut u8).unwrap();
    let interior = buf.at(a.as_ptr() as usize - buf.addr() + 16);
    let odd = buf.at(a.as_ptr() as usize - buf.addr() + 3);
    let never = buf.at(2048);
    let cases = [
        (region.free(outside, 4), RegionFreeError::OutOfBounds),
        (region.free(below, 4), RegionFreeError::OutOfBounds),
        (region.free_unsized(outside), RegionFreeError::OutOfBounds),
        (
            region.free(interior, 4),
            RegionFreeError::InteriorPointer { order: 6 },
        ),
        (
            region.free_unsized(interior),
            RegionFreeError::InteriorPointer { order: 6 },
        ),
        (
            region.free(odd, 4),
            RegionFreeError::InteriorPointer { order: 6 },
        ),
        (region.free(a, 4), RegionFreeError::WrongOrder { actual: 6 }),
        (region.free(a, 7), RegionFreeError::WrongOrder { actual: 6 }),
        (region.free(b, 6), RegionFreeError::WrongOrder { actual: 4 }),
        (region.free(never, 4), RegionFreeError::NotAllocated),
        (region.free_unsized(never), RegionFreeError::NotAllocated),
        (region.free(buf.at(2049), 4), RegionFreeError::Misaligned),
        (region.free(a, 3), RegionFreeError::BadOrder),
        (region.free(a, 13), RegionFreeError::BadOrder),
        (
            region.free_bytes(a, usize::MAX, 8),
            RegionFreeError::BadOrder,
        ),
    ];
    for (index, (got, expected)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(expected), "case {index}");
    }
    assert_eq!(region.stats(), before);
    region.check_invariants().unwrap();

    region.free(a, 6).unwrap();
    assert_eq!(
        region.free(a, 6),
        Err(RegionFreeError::NotAllocated),
        "double free"
    );
    assert_eq!(
        region.free_unsized(a),
        Err(RegionFreeError::NotAllocated),
        "double free, unsized"
    );
    region.free_unsized(b).unwrap();
    assert_eq!(region.free_unsized(b), Err(RegionFreeError::NotAllocated));
    assert_eq!(region.stats().free_bytes, 1 << 12);
    region.check_invariants().unwrap();
}

#[test]
fn a_double_free_after_the_block_merged_and_was_reused_is_caught() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 12, 4, 12);
    let small = region.alloc(4).unwrap();
    region.free(small, 4).unwrap();
    let big = region.alloc(8).unwrap();
    assert_eq!(
        big, small,
        "the merged block is reused from the same address"
    );
    assert_eq!(
        region.free(small, 4),
        Err(RegionFreeError::WrongOrder { actual: 8 })
    );
    assert_eq!(region.live_order(small), Ok(8));
    region.free_unsized(small).unwrap();
    region.check_invariants().unwrap();
}

#[test]
fn merging_stops_at_the_maximum_order() {
    // Four top-level blocks of 2^10: blocks must never merge into 2^11 or beyond, even when all are free.
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 12, 4, 10);
    assert_eq!(region.free_block_count(10), 4);
    assert_eq!(region.alloc(11), None);
    let mut blocks = Vec::new();
    while let Some(block) = region.alloc(4) {
        blocks.push(block);
    }
    assert_eq!(blocks.len(), 256);
    for block in blocks {
        region.free(block, 4).unwrap();
    }
    assert_eq!(
        region.free_block_count(10),
        4,
        "top-level blocks stay separate"
    );
    assert_eq!(region.stats().largest_free_order, Some(10));
    assert_eq!(region.alloc(11), None);
    region.check_invariants().unwrap();
}

#[test]
fn freed_buddies_merge_before_reaching_a_list_so_no_address_is_handed_out_twice() {
    let buf = AlignedBuf::new(1 << 10, 1 << 10, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 10, 4, 10);
    let a = region.alloc(4).unwrap();
    let b = region.alloc(4).unwrap();
    assert_eq!(
        a.as_ptr() as usize ^ 16,
        b.as_ptr() as usize,
        "a and b are buddies"
    );
    region.free(a, 4).unwrap();
    region.free(b, 4).unwrap();
    // The pair merged all the way up: no order-4 block may still be listed.
    assert_eq!(region.free_block_count(4), 0);
    assert_eq!(region.free_block_count(10), 1);
    region.check_invariants().unwrap();
    // Hand out everything in mixed sizes: no two blocks may overlap.
    let mut spans = BTreeMap::new();
    for order in [5, 4, 4, 6, 7, 8, 9] {
        let block = region.alloc(order).unwrap().as_ptr() as usize;
        let end = block + (1 << order);
        if let Some((&prev, &prev_end)) = spans.range(..end).next_back() {
            assert!(prev_end <= block || prev >= end, "overlap at {block:#x}");
        }
        spans.insert(block, end);
    }
    assert_eq!(
        spans
            .values()
            .zip(spans.keys().skip(1))
            .filter(|(e, s)| e > s)
            .count(),
        0
    );
}

#[test]
fn a_region_can_be_moved_between_operations() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, meta) = region_over(&buf, 0, 1 << 12, 4, 12);
    let a = region.alloc(5).unwrap();
    let moved = Box::new(region);
    let mut moved_again = [*moved];
    let region = &mut moved_again[0];
    let b = region.alloc(5).unwrap();
    assert_ne!(a, b);
    region.free(a, 5).unwrap();
    region.free(b, 5).unwrap();
    assert_eq!(region.stats().largest_free_order, Some(12));
    region.check_invariants().unwrap();
    drop(meta);
}

#[test]
fn for_each_block_covers_the_region_exactly() {
    let buf = AlignedBuf::new(1 << 12, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 12, 4, 12);
    let live: Vec<_> = [4, 6, 5, 8]
        .iter()
        .map(|&o| (region.alloc(o).unwrap(), o))
        .collect();
    let mut covered = 0;
    let mut allocated = HashSet::new();
    region.for_each_block(|block| {
        covered += 1usize << block.order;
        if block.allocated {
            allocated.insert((block.addr, block.order));
        }
    });
    assert_eq!(covered, 1 << 12);
    let expected: HashSet<_> = live
        .iter()
        .map(|&(p, o)| (p.as_ptr() as usize, o))
        .collect();
    assert_eq!(allocated, expected);
}

/// One live block in the model: its order and the byte written over all of it.
struct Live {
    order: u32,
    pattern: u8,
}

fn random_stress(seed: u64, offset: usize, len: usize, min: u32, max: u32, steps: usize) {
    let buf = AlignedBuf::new(len + offset + 64, 1 << 12, 0);
    let (mut region, _meta) = region_over(&buf, offset, len, min, max);
    let managed = region.stats().managed_bytes;
    let initial_counts: Vec<_> = (min..=max).map(|o| region.free_block_count(o)).collect();
    let start = buf.addr() + offset;
    let mut rng = Rng(seed);
    let mut model: BTreeMap<usize, Live> = BTreeMap::new();
    for step in 0..steps {
        let allocate = model.is_empty() || rng.below(100) < 55;
        if allocate {
            let order = min + rng.below((max - min + 1) as usize) as u32;
            match region.alloc(order) {
                Some(block) => {
                    let addr = block.as_ptr() as usize;
                    let size = 1usize << order;
                    assert_eq!(addr % size, 0, "alignment");
                    assert!(addr >= start && addr + size <= start + len, "bounds");
                    if let Some((&prev, live)) = model.range(..addr + size).next_back() {
                        assert!(
                            prev + (1usize << live.order) <= addr,
                            "overlap with {prev:#x}"
                        );
                    }
                    let pattern = (step % 251) as u8 + 1;
                    // SAFETY: the block is `size` bytes handed out to the test.
                    unsafe { fill(block, size, pattern) };
                    model.insert(addr, Live { order, pattern });
                }
                None => {
                    // A failure is legitimate only if no free block of that order or larger exists.
                    assert!(
                        (order..=max).all(|o| region.free_block_count(o) == 0),
                        "spurious failure"
                    );
                }
            }
        } else {
            let index = rng.below(model.len());
            let addr = *model.keys().nth(index).unwrap();
            let live = model.remove(&addr).unwrap();
            let block = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: the block is live and `2^order` bytes long.
            let intact = unsafe { all_equal(block, 1 << live.order, live.pattern) };
            assert!(intact, "block content overwritten");
            if rng.next() & 1 == 0 {
                region.free(block, live.order).unwrap();
            } else {
                region.free_unsized(block).unwrap();
            }
            assert_eq!(
                region.free(block, live.order),
                Err(RegionFreeError::NotAllocated)
            );
        }
        let allocated: usize = model.values().map(|l| 1usize << l.order).sum();
        assert_eq!(region.stats().allocated_bytes, allocated);
        if step % 97 == 0 {
            region.check_invariants().unwrap();
        }
    }
    for (addr, live) in std::mem::take(&mut model) {
        region
            .free(NonNull::new(addr as *mut u8).unwrap(), live.order)
            .unwrap();
    }
    region.check_invariants().unwrap();
    assert_eq!(region.stats().free_bytes, managed);
    let final_counts: Vec<_> = (min..=max).map(|o| region.free_block_count(o)).collect();
    assert_eq!(final_counts, initial_counts, "everything merges back");
}

#[test]
fn random_stress_against_a_model_aligned_region() {
    for seed in 1..=6 {
        random_stress(seed, 0, 1 << 16, 4, 16, 2000);
    }
}

#[test]
fn random_stress_against_a_model_unaligned_odd_region() {
    for seed in 11..=16 {
        random_stress(seed, 40, 50_000, 4, 13, 2000);
    }
}

#[test]
fn random_stress_against_a_model_single_order() {
    random_stress(3, 0, 1 << 10, 6, 6, 500);
}

#[test]
fn uniqueness_of_live_pointers_over_many_actions() {
    let buf = AlignedBuf::new(1 << 18, 1 << 18, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 18, 4, 18);
    let mut rng = Rng(99);
    let mut slots: Vec<Option<(NonNull<u8>, u32)>> = vec![None; 2000];
    let mut live = HashSet::new();
    for _ in 0..50_000 {
        let slot = rng.below(slots.len());
        match slots[slot].take() {
            Some((block, order)) => {
                assert!(live.remove(&(block.as_ptr() as usize)));
                region.free(block, order).unwrap();
            }
            None => {
                let order = 4 + rng.below(5) as u32;
                if let Some(block) = region.alloc(order) {
                    assert!(
                        live.insert(block.as_ptr() as usize),
                        "address handed out twice"
                    );
                    slots[slot] = Some((block, order));
                }
            }
        }
    }
    region.check_invariants().unwrap();
}

/// Under `cargo xtask asan`, free blocks are poisoned except their two link words, and handed-out blocks are not.
#[cfg(classalloc_asan)]
#[test]
fn free_blocks_are_poisoned_for_address_sanitizer() {
    extern "C" {
        fn __asan_address_is_poisoned(addr: *const std::ffi::c_void) -> std::ffi::c_int;
    }
    let poisoned = |addr: usize| {
        // SAFETY: the query only reads ASan's shadow memory.
        unsafe { __asan_address_is_poisoned(addr as *const std::ffi::c_void) != 0 }
    };
    let buf = AlignedBuf::new(1 << 10, 1 << 10, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 10, 4, 10);
    assert!(!poisoned(buf.addr()), "link words stay addressable");
    assert!(poisoned(buf.addr() + 16) && poisoned(buf.addr() + 1023));
    let block = region.alloc(6).unwrap();
    let addr = block.as_ptr() as usize;
    assert!(
        (addr..addr + 64).all(|a| !poisoned(a)),
        "a handed-out block is addressable"
    );
    region.free(block, 6).unwrap();
    assert!(poisoned(addr + 16), "a freed block is poisoned again");
    region.unpoison_all();
    assert!(!poisoned(buf.addr() + 512));
}

#[test]
fn alloc_and_sized_free_agree_for_every_size_and_alignment() {
    // One rounding decides the block for both directions: a sized free must find exactly the block it was given.
    let buf = AlignedBuf::new(1 << 14, 1 << 14, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 14, 4, 14);
    for align_order in 0..=12 {
        let align = 1usize << align_order;
        for size in 1..=1100 {
            let block = region
                .alloc_bytes(size, align)
                .expect("fits an empty region");
            let addr = block.as_ptr() as usize;
            let order = region.live_order(block).unwrap();
            assert!(
                1usize << order >= size && 1usize << order >= align,
                "size {size} align {align}"
            );
            assert!(
                size <= 16 && align <= 16 || (1usize << (order - 1)) < size.max(align),
                "not the smallest"
            );
            assert_eq!(addr % align, 0);
            region.free_bytes(block, size, align).unwrap();
        }
    }
    assert_eq!(region.stats().largest_free_order, Some(14));
}

#[test]
fn a_region_over_zeroed_memory_hands_out_zeroed_blocks_when_freed_blocks_are_zeroed() {
    // The contract an owner that gives memory back to the OS relies on: the links written into free blocks are
    // cleared again when the blocks leave their lists (handed out, or merged into a buddy).
    let buf = AlignedBuf::new(1 << 16, 1 << 16, 0);
    let (mut region, _meta) = region_over(&buf, 0, 1 << 16, 4, 16);
    let mut rng = Rng(0x5EED_0000_0000_0042);
    let mut live: Vec<(NonNull<u8>, u32)> = Vec::new();
    for _ in 0..20_000 {
        if live.len() < 40 && (rng.below(3) != 0 || live.is_empty()) {
            let order = 4 + rng.below(8) as u32;
            if let Some(block) = region.alloc(order) {
                // SAFETY: a live block of 2^order bytes inside `buf`.
                unsafe {
                    assert!(
                        all_equal(block, 1 << order, 0),
                        "a block of order {order} was handed out dirty"
                    );
                    fill(block, 1 << order, 0xA5);
                }
                live.push((block, order));
            }
        } else {
            let (block, order) = live.swap_remove(rng.below(live.len()));
            // SAFETY: the block is live and ours; it is zeroed before it goes back.
            unsafe { fill(block, 1 << order, 0) };
            let (merged, merged_order) = region.free_merged(block, order).unwrap();
            let (start, merged_start) = (block.as_ptr() as usize, merged.as_ptr() as usize);
            assert!(merged_order >= order);
            assert_eq!(merged_start, start & !((1usize << merged_order) - 1));
            assert_eq!(
                region.free_merged(block, order),
                Err(RegionFreeError::NotAllocated)
            );
        }
    }
    for (block, order) in live {
        // SAFETY: as above.
        unsafe { fill(block, 1 << order, 0) };
        region.free(block, order).unwrap();
    }
    region.check_invariants().unwrap();
    assert_eq!(region.free_block_count(16), 1);
    // Everything merged back: only the links of the one free block are left in memory. (The free block is
    // poisoned under ASan; the owner unpoisons it before looking, as before giving memory back.)
    region.unpoison_all();
    assert!(buf.bytes()[16..].iter().all(|&b| b == 0));
}
