//! Behaviour of the slab through its public API, including a regression test for each bug of the seed's
//! code (field notes, section 1).

use classalloc_slab::{
    AllocError, FreeError, Geometry, SizeClass, Slab, SlabConfig, MAX_SMALL_SIZE,
};
use core::alloc::Layout;
use core::ptr::NonNull;
use std::collections::HashSet;

/// Small blocks so full and empty paths are reached with few allocations: 8192-byte slots in 64 KiB blocks
/// (7 slots), and at most 3 slots of 64 B per block.
struct SmallBlocks;
impl SlabConfig for SmallBlocks {
    const GEOMETRY: Geometry = Geometry::SEED
        .with_block_shift(8192, 16)
        .with_max_slots(64, 3);
}

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

#[test]
fn seed_bug_1_a_full_blocks_first_free_is_reused_not_the_slot_past_the_end() {
    let slab = Slab::<SmallBlocks>::with_config();
    let geometry = slab.geometry(SizeClass::for_size(8192).unwrap());
    let slots: Vec<_> = (0..geometry.capacity)
        .map(|_| slab.malloc(8192).unwrap())
        .collect();
    let block = slots[0].as_ptr() as usize & !(geometry.block_size - 1);
    assert!(slots
        .iter()
        .all(|p| p.as_ptr() as usize & !(geometry.block_size - 1) == block));
    // The block is full. Free one slot: the next allocation must reuse it, inside the block.
    // SAFETY: live allocation of 8192 bytes.
    unsafe { slab.free(slots[3], 8192).unwrap() };
    let again = slab.malloc(8192).unwrap();
    assert_eq!(again, slots[3]);
    // The block is full again: the next allocation comes from a new block.
    let next = slab.malloc(8192).unwrap();
    assert_ne!(next.as_ptr() as usize & !(geometry.block_size - 1), block);
    for p in slots
        .iter()
        .filter(|&&p| p != slots[3])
        .chain([&again, &next])
    {
        // SAFETY: each is live, freed once.
        unsafe { slab.free(*p, 8192).unwrap() };
    }
}

#[test]
fn seed_bug_2_the_8192_class_masks_to_its_header_and_never_corrupts_neighbours() {
    let slab = Slab::new();
    let geometry = slab.geometry(SizeClass::for_size(8192).unwrap());
    assert!(geometry.block_size.is_power_of_two());
    let objects: Vec<_> = (0..300).map(|_| slab.malloc(8192).unwrap()).collect();
    for (i, p) in objects.iter().enumerate() {
        fill(*p, 8192, i as u8);
    }
    for p in objects.iter().step_by(2) {
        // SAFETY: live allocation of 8192 bytes, freed once.
        unsafe { slab.free(*p, 8192).unwrap() };
    }
    for (i, p) in objects.iter().enumerate().skip(1).step_by(2) {
        assert!(all_bytes(*p, 8192, i as u8), "object {i} was corrupted");
        // SAFETY: live allocation of 8192 bytes, freed once.
        unsafe { slab.free(*p, 8192).unwrap() };
    }
}

#[test]
fn seed_bug_3_sizes_of_2_pow_31_and_more_are_large_allocations() {
    let slab = Slab::new();
    let size = (1usize << 31) + 5;
    let p = slab.malloc(size).unwrap();
    assert_eq!(p.as_ptr() as usize % 4096, 0);
    // SAFETY: the allocation holds `size` bytes (lazily backed: only two pages are touched).
    unsafe {
        p.as_ptr().write(1);
        p.as_ptr().add(size - 1).write(2);
    }
    assert_eq!(slab.large_stats().live_bytes, size);
    // SAFETY: live allocation of `size` bytes.
    unsafe { slab.free(p, size).unwrap() };
    assert_eq!(slab.large_stats().live_objects, 0);
    assert_eq!(slab.class_stats(SizeClass::for_size(1).unwrap()).blocks, 0);
}

#[test]
fn seed_bug_4_sizes_beyond_the_table_and_near_usize_max() {
    let slab = Slab::new();
    for size in [MAX_SMALL_SIZE + 1, 12_345, 1 << 20] {
        let p = slab.malloc(size).unwrap();
        fill(p, size, 0xAB);
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
    }
    for size in [usize::MAX, usize::MAX - 4095, isize::MAX as usize + 1] {
        assert_eq!(slab.malloc(size), Err(AllocError::TooLarge), "size {size}");
        assert_eq!(slab.calloc(size), Err(AllocError::TooLarge));
    }
    let huge = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
    assert!(matches!(
        slab.alloc(huge),
        Err(AllocError::TooLarge | AllocError::OutOfMemory)
    ));
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn seed_bug_6_shrinking_remalloc_copies_the_new_size_and_recalloc_does_not_overrun() {
    let slab = Slab::new();
    let neighbour = slab.malloc(16).unwrap();
    fill(neighbour, 16, 0x11);
    let p = slab.malloc(4096).unwrap();
    for i in 0..4096 {
        // SAFETY: within the 4096-byte allocation.
        unsafe { p.as_ptr().add(i).write(i as u8) };
    }
    // SAFETY: live allocation of 4096 bytes.
    let q = unsafe { slab.remalloc(p, 4096, 16) }.unwrap();
    for i in 0..16 {
        // SAFETY: within the 16-byte allocation.
        assert_eq!(unsafe { q.as_ptr().add(i).read() }, i as u8);
    }
    assert!(all_bytes(neighbour, 16, 0x11), "shrinking remalloc overran");
    // SAFETY: live allocation of 16 bytes.
    let r = unsafe { slab.recalloc(q, 16, 8) }.unwrap();
    assert!(all_bytes(neighbour, 16, 0x11), "shrinking recalloc overran");
    // SAFETY: live allocations of 8 and 16 bytes.
    unsafe {
        slab.free(r, 8).unwrap();
        slab.free(neighbour, 16).unwrap();
    }
}

#[test]
fn seed_bug_6_free_of_size_0_is_refused_and_changes_nothing() {
    let slab = Slab::new();
    let p = slab.malloc(8).unwrap();
    // SAFETY: the refused free must not touch the allocation.
    assert_eq!(unsafe { slab.free(p, 0) }, Err(FreeError::ZeroSize));
    assert_eq!(slab.totals().live_objects, 1);
    // SAFETY: live allocation of 8 bytes.
    unsafe { slab.free(p, 8).unwrap() };
    assert_eq!(slab.malloc(0), Err(AllocError::ZeroSize));
    assert_eq!(slab.calloc(0), Err(AllocError::ZeroSize));
}

#[test]
fn size_only_allocations_are_aligned_to_the_next_power_of_two() {
    let slab = Slab::new();
    for size in (1..=MAX_SMALL_SIZE)
        .step_by(7)
        .chain([1, 2, 3, 4, 4096, 8192])
    {
        let p = slab.malloc(size).unwrap();
        let align = size.next_power_of_two().min(4096);
        assert_eq!(p.as_ptr() as usize % align, 0, "size {size}");
        fill(p, size, 0xEE);
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
    }
}

#[test]
fn layouts_are_aligned_and_use_the_returned_length() {
    let slab = Slab::new();
    let mut align = 1;
    while align <= 8192 {
        for size in [1, 3, 12, 24, 48, 100, 1000, 3000, 8192, 9000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = slab.alloc(layout).unwrap();
            assert!(block.len() >= size);
            assert_eq!(
                block.cast::<u8>().as_ptr() as usize % align,
                0,
                "{layout:?}"
            );
            fill(block.cast(), block.len(), 0x5A);
            // Free with the full returned length: the "fits" rule of Allocator::deallocate.
            let fitted = Layout::from_size_align(block.len(), align).unwrap();
            // SAFETY: live allocation; `fitted` has the same alignment and a size within the usable length.
            unsafe { slab.dealloc(block.cast(), fitted).unwrap() };
        }
        align *= 2;
    }
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn calloc_zeroes_reused_slots_and_recalloc_zeroes_the_grown_tail() {
    let slab = Slab::new();
    let p = slab.malloc(64).unwrap();
    fill(p, 64, 0xFF);
    // SAFETY: live allocation of 64 bytes.
    unsafe { slab.free(p, 64).unwrap() };
    let q = slab.calloc(64).unwrap();
    assert_eq!(q, p, "LIFO reuse expected");
    assert!(all_bytes(q, 64, 0));
    fill(q, 40, 0x77);
    // Same class (64): same pointer, tail 40..64 zeroed even though the slot held 0xFF there before.
    fill(NonNull::new(q.as_ptr().wrapping_add(40)).unwrap(), 24, 0x99);
    // SAFETY: live allocation of 40 bytes (class 64).
    let r = unsafe { slab.recalloc(q, 40, 64) }.unwrap();
    assert_eq!(r, q);
    assert!(all_bytes(r, 40, 0x77));
    assert!(all_bytes(
        NonNull::new(r.as_ptr().wrapping_add(40)).unwrap(),
        24,
        0
    ));
    // To another class: moved, contents kept, tail zeroed.
    // SAFETY: live allocation of 64 bytes.
    let s = unsafe { slab.recalloc(r, 64, 1000) }.unwrap();
    assert!(all_bytes(s, 40, 0x77));
    assert!(all_bytes(
        NonNull::new(s.as_ptr().wrapping_add(64)).unwrap(),
        936,
        0
    ));
    // SAFETY: live allocation of 1000 bytes.
    unsafe { slab.free(s, 1000).unwrap() };
    let z = slab
        .alloc_zeroed(Layout::from_size_align(24, 8).unwrap())
        .unwrap();
    assert!(all_bytes(z.cast(), z.len(), 0));
    // SAFETY: live allocation of this layout.
    unsafe {
        slab.dealloc(z.cast(), Layout::from_size_align(24, 8).unwrap())
            .unwrap()
    };
}

#[test]
fn realloc_keeps_the_pointer_within_a_class_and_copies_across_classes() {
    let slab = Slab::new();
    let layout = Layout::from_size_align(20, 4).unwrap();
    let p = slab.alloc(layout).unwrap().cast::<u8>();
    fill(p, 20, 3);
    // SAFETY: live allocation of `layout`.
    let same = unsafe { slab.realloc(p, layout, 24) }.unwrap();
    assert_eq!(same.cast::<u8>(), p, "20 -> 24 stays in the 24-byte class");
    let grown_layout = Layout::from_size_align(24, 4).unwrap();
    // SAFETY: live allocation of 24 bytes now.
    let moved = unsafe { slab.realloc(p, grown_layout, 5000) }.unwrap();
    assert!(all_bytes(moved.cast(), 20, 3));
    // Large: grow and shrink through mremap, contents kept.
    let big = Layout::from_size_align(5000, 4).unwrap();
    // SAFETY: live allocation of 5000 bytes.
    let large = unsafe { slab.realloc(moved.cast(), big, 1 << 20) }.unwrap();
    assert!(all_bytes(large.cast(), 20, 3));
    let large_layout = Layout::from_size_align(1 << 20, 4).unwrap();
    // SAFETY: live allocation of 1 MiB.
    let larger = unsafe { slab.realloc(large.cast(), large_layout, 8 << 20) }.unwrap();
    assert!(all_bytes(larger.cast(), 20, 3));
    assert_eq!(slab.large_stats().live_bytes, 8 << 20);
    let larger_layout = Layout::from_size_align(8 << 20, 4).unwrap();
    // SAFETY: live allocation of 8 MiB.
    let small_again = unsafe { slab.realloc(larger.cast(), larger_layout, 10) }.unwrap();
    assert!(all_bytes(small_again.cast(), 10, 3));
    // SAFETY: live allocation of 10 bytes, align 4.
    unsafe {
        slab.dealloc(small_again.cast(), Layout::from_size_align(10, 4).unwrap())
            .unwrap()
    };
    let totals = slab.totals();
    assert_eq!((totals.live_objects, totals.live_bytes), (0, 0));
}

#[test]
fn bad_frees_are_refused_without_changing_anything() {
    let slab = Slab::new();
    let p = slab.malloc(64).unwrap();
    // Keeps the block mapped: an emptied block goes back to the page source.
    let keep = slab.malloc(64).unwrap();
    let interior = NonNull::new(p.as_ptr().wrapping_add(8)).unwrap();
    // SAFETY: each refused free leaves the slab untouched; every pointer lies in a mapped block.
    unsafe {
        assert_eq!(slab.free(interior, 64), Err(FreeError::NotASlot));
        assert_eq!(slab.free(p, 32), Err(FreeError::ClassMismatch));
        // A slot of this block that was never handed out.
        let never = NonNull::new(p.as_ptr().wrapping_add(64 * 100)).unwrap();
        assert_eq!(slab.free(never, 64), Err(FreeError::NotASlot));
        slab.free(p, 64).unwrap();
        // Checked builds keep a bit per slot; release builds cannot tell a second free of `p` from a
        // free of another slot while the block holds live ones (docs/safety.md).
        if classalloc_slab::CHECKED {
            assert_eq!(slab.free(p, 64), Err(FreeError::DoubleFree));
        }
        slab.free(keep, 64).unwrap();
        let large = slab.malloc(100_000).unwrap();
        let off = NonNull::new(large.as_ptr().wrapping_add(16)).unwrap();
        assert_eq!(slab.free(off, 100_000), Err(FreeError::Misaligned));
        slab.free(large, 100_000).unwrap();
    }
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn empty_blocks_go_back_to_the_page_source() {
    let slab = Slab::new();
    let class = SizeClass::for_size(16).unwrap();
    let count = 8 * slab.geometry(class).capacity + 5;
    let objects: Vec<_> = (0..count).map(|_| slab.malloc(16).unwrap()).collect();
    let full = slab.class_stats(class);
    assert_eq!(full.blocks, 9);
    assert_eq!(full.live_objects, count);
    assert_eq!(full.live_bytes, count * 16);
    for &p in &objects {
        fill(p, 16, 0xAB);
    }
    for p in objects {
        // SAFETY: live allocation of 16 bytes.
        unsafe { slab.free(p, 16).unwrap() };
    }
    let after = slab.class_stats(class);
    assert_eq!(
        (
            after.blocks,
            after.live_objects,
            after.live_bytes,
            after.resident_bytes
        ),
        (0, 0, 0, 0)
    );
    // The next block may be one of those, still dirty: calloc clears what it hands out.
    let p = slab.calloc(16).unwrap();
    assert!(all_bytes(p, 16, 0));
    // SAFETY: a live 16-byte allocation.
    unsafe { slab.free(p, 16).unwrap() };
}

#[test]
fn resident_ratio_from_the_counters_meets_the_seed_table() {
    // (size, the seed's ratio as printed); the seed rounded its figures to the digits shown (its own
    // geometry gives 1.0000343 at 4 B and 1.000061 at 64 B), so they are compared at that precision.
    let seed = [
        (1usize, "1.024"),
        (2, "1.00023"),
        (4, "1.000034"),
        (8, "1.000038"),
        (16, "1.0000458"),
        (32, "1.00006"),
        (64, "1.00006"),
        (128, "1.0001"),
        (256, "1.00024"),
        (512, "1.0005"),
        (1024, "1.001"),
        (2048, "1.002"),
        (4096, "1.004"),
        (8192, "1.008"),
    ];
    for (size, printed) in seed {
        let digits = printed.len() - 2;
        let limit: f64 = printed.parse().unwrap();
        let slab = Slab::new();
        let class = SizeClass::for_size(size).unwrap();
        // Whole blocks, so the figure is the steady-state one the seed's table states.
        let count = slab.geometry(class).capacity * if size <= 2 { 64 } else { 2 };
        let objects: Vec<_> = (0..count).map(|_| slab.malloc(size).unwrap()).collect();
        let ratio = slab.class_stats(class).ratio().unwrap();
        let shown: f64 = format!("{ratio:.digits$}").parse().unwrap();
        assert!(shown <= limit, "size {size}: {ratio} > {printed}");
        for p in objects {
            // SAFETY: live allocation of `size` bytes.
            unsafe { slab.free(p, size).unwrap() };
        }
    }
}

#[test]
fn non_power_of_two_layouts_cost_at_most_1_05() {
    for (size, align) in [(24usize, 8usize), (48, 8), (100, 4), (100, 1)] {
        let slab = Slab::new();
        let layout = Layout::from_size_align(size, align).unwrap();
        let class = SizeClass::for_layout(size, align).unwrap();
        let count = slab.geometry(class).capacity * 2;
        let objects: Vec<_> = (0..count).map(|_| slab.alloc(layout).unwrap()).collect();
        let ratio = slab.class_stats(class).ratio().unwrap();
        assert!(ratio <= 1.05, "{layout:?}: {ratio}");
        for p in objects {
            // SAFETY: live allocation of `layout`.
            unsafe { slab.dealloc(p.cast(), layout).unwrap() };
        }
    }
}

#[test]
fn no_live_pointer_is_handed_out_twice() {
    let slab = Slab::<SmallBlocks>::with_config();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..50_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if live.len() < 500 && (rng & 1 == 0 || live.is_empty()) {
            let size = [1, 2, 3, 24, 64, 100, 8192, 20_000][(rng >> 8) as usize % 8];
            let p = slab.malloc(size).unwrap();
            assert!(seen.insert(p.as_ptr() as usize), "{p:?} handed out twice");
            fill(p, size, size as u8);
            live.push((p, size));
        } else {
            let (p, size) = live.swap_remove((rng >> 8) as usize % live.len());
            assert!(
                all_bytes(p, size, size as u8),
                "contents of a live object changed"
            );
            seen.remove(&(p.as_ptr() as usize));
            // SAFETY: live allocation of `size` bytes.
            unsafe { slab.free(p, size).unwrap() };
        }
    }
    for (p, size) in live {
        // SAFETY: live allocation of `size` bytes.
        unsafe { slab.free(p, size).unwrap() };
    }
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn threads_on_shared_and_separate_classes_keep_contents_intact() {
    static SLAB: Slab<SmallBlocks> = Slab::with_config();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (t + 1);
                let mut live: Vec<(usize, usize)> = Vec::new();
                for _ in 0..20_000 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Threads 0 and 1 share classes; 2 and 3 have their own.
                    let size = match t {
                        0 | 1 => [64, 8192][(rng >> 3) as usize % 2],
                        2 => 1,
                        _ => 24,
                    };
                    if live.len() < 200 && rng & 1 == 0 {
                        let p = SLAB.malloc(size).unwrap();
                        fill(p, size, t as u8 + 1);
                        live.push((p.as_ptr() as usize, size));
                    } else if let Some((addr, size)) = live.pop() {
                        let p = NonNull::new(addr as *mut u8).unwrap();
                        assert!(all_bytes(p, size, t as u8 + 1));
                        // SAFETY: live allocation of `size` bytes owned by this thread.
                        unsafe { SLAB.free(p, size).unwrap() };
                    }
                }
                for (addr, size) in live {
                    // SAFETY: live allocation of `size` bytes owned by this thread.
                    unsafe {
                        SLAB.free(NonNull::new(addr as *mut u8).unwrap(), size)
                            .unwrap()
                    };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(SLAB.totals().live_objects, 0);
}

#[test]
fn raw_alignments_are_checked() {
    let slab = Slab::new();
    for align in [0, 3, 24, 4097, usize::MAX] {
        assert_eq!(
            slab.alloc_aligned(64, align),
            Err(AllocError::BadAlignment),
            "{align}"
        );
    }
    assert_eq!(
        slab.alloc_aligned(usize::MAX - 10, 8),
        Err(AllocError::TooLarge)
    );
    assert_eq!(slab.alloc_aligned(0, 8), Err(AllocError::ZeroSize));
    let block = slab.alloc_aligned(40, 32).unwrap();
    assert_eq!(block.cast::<u8>().as_ptr() as usize % 32, 0);
    // SAFETY: allocated just above with (40, 32).
    unsafe {
        slab.dealloc(block.cast(), Layout::from_size_align(40, 32).unwrap())
            .unwrap()
    };
}
