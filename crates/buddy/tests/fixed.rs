//! The seed-002 API, `BuddyAllocator<HEAP, MIN_BLOCK>`: the seed's own cases, corrected where the seed was wrong,
//! plus moves, alignment and zeroing.

use std::ptr::NonNull;

use classalloc_buddy::{AllocError, BuddyAllocator, FreeError};

#[test]
fn a_new_allocator_is_fully_free() {
    let heap = BuddyAllocator::<1024, 8>::new(false);
    assert_eq!(heap.heap_size(), 1024);
    assert_eq!(heap.total_free(), 1024);
    assert_eq!(heap.total_allocated(), 0);
    // 8-byte blocks cannot hold a free block's two links: they are served as 16-byte blocks.
    assert_eq!(heap.min_block_size(), 16);
    let heap = BuddyAllocator::<4096, 64>::new(true);
    assert_eq!(heap.total_free(), 4096);
    assert_eq!(heap.min_block_size(), 64);
}

#[test]
fn zero_and_oversized_requests_are_errors() {
    let mut heap = BuddyAllocator::<1024, 8>::new(false);
    assert_eq!(heap.alloc_bytes(0), Err(AllocError::ZeroAllocation));
    assert_eq!(heap.alloc_bytes(1025), Err(AllocError::OutOfMemory));
    assert_eq!(heap.alloc_bytes(usize::MAX), Err(AllocError::OutOfMemory));
    assert_eq!(
        heap.alloc_bytes(usize::MAX / 2 + 2),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(heap.alloc::<()>(), Err(AllocError::ZeroAllocation));
    assert_eq!(heap.alloc::<[u8; 2048]>(), Err(AllocError::OutOfMemory));
    assert_eq!(heap.total_free(), 1024);
}

#[test]
fn the_whole_heap_is_one_block() {
    // The seed expected 1000 bytes not to fit a 1024-byte heap, an artefact of its search; a buddy gives it whole.
    let mut heap = BuddyAllocator::<1024, 8>::new(false);
    let whole = heap.alloc_bytes(1000).unwrap();
    assert_eq!(heap.total_allocated(), 1024);
    assert_eq!(heap.alloc_bytes(1), Err(AllocError::OutOfMemory));
    heap.free_nonnull(whole).unwrap();
    let whole = heap.alloc_bytes(1024).unwrap();
    assert_eq!(heap.total_free(), 0);
    heap.free_nonnull(whole).unwrap();
    assert_eq!(heap.total_free(), 1024);
}

#[test]
fn the_seeds_sizes_fit_together() {
    let mut heap = BuddyAllocator::<1024, 8>::new(false);
    let mut blocks = Vec::new();
    for size in [1, 8, 9, 24, 32, 65] {
        let block = heap
            .alloc_bytes(size)
            .unwrap_or_else(|e| panic!("{size} bytes: {e}"));
        // SAFETY: the block has at least `size` writable bytes.
        unsafe { block.as_ptr().write_bytes(size as u8, size) };
        blocks.push((block, size));
    }
    for &(block, size) in &blocks {
        // SAFETY: the block is live and `size` bytes were written.
        let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
        assert!(
            bytes.iter().all(|&b| b == size as u8),
            "{size}-byte block overwritten"
        );
    }
    // 16 + 16 + 16 + 32 + 32 + 128 bytes of blocks.
    assert_eq!(heap.total_allocated(), 240);
    for (block, _) in blocks {
        heap.free_nonnull(block).unwrap();
    }
    assert_eq!(heap.total_free(), 1024);
}

#[test]
fn null_foreign_double_and_unaligned_frees_are_errors() {
    let mut heap = BuddyAllocator::<1024, 8>::new(false);
    let block = heap.alloc_bytes(64).unwrap();
    assert_eq!(
        heap.free(std::ptr::null_mut::<u8>()),
        Err(FreeError::NullPtrFree)
    );
    assert_eq!(
        heap.free(usize::MAX as *mut u8),
        Err(FreeError::FreeOutOfBounds)
    );
    let mut local = 0u64;
    assert_eq!(
        heap.free(&mut local as *mut u64),
        Err(FreeError::FreeOutOfBounds)
    );
    // SAFETY: both pointers stay inside the 64-byte block.
    let (odd, interior) = unsafe { (block.as_ptr().add(1), block.as_ptr().add(16)) };
    assert_eq!(heap.free(odd), Err(FreeError::UnalignedFree));
    assert_eq!(heap.free(interior), Err(FreeError::UnalignedFree));
    assert_eq!(heap.total_allocated(), 64, "failed frees change nothing");
    heap.free_nonnull(block).unwrap();
    assert_eq!(heap.free_nonnull(block), Err(FreeError::DoubleFree));
    assert_eq!(heap.free(block.as_ptr()), Err(FreeError::DoubleFree));
    assert_eq!(heap.total_free(), 1024);
    heap.region().check_invariants().unwrap();
}

#[test]
fn allocating_and_freeing_many_sizes_restores_the_heap() {
    let mut heap = BuddyAllocator::<{ 1 << 16 }, 16>::new(false);
    let sizes = [
        1, 2, 3, 7, 16, 17, 31, 64, 100, 128, 200, 255, 256, 500, 1000, 1024, 4000,
    ];
    let blocks: Vec<_> = sizes
        .iter()
        .map(|&s| heap.alloc_bytes(s).unwrap())
        .collect();
    assert!(heap.total_allocated() >= sizes.iter().sum::<usize>());
    for block in blocks.into_iter().rev() {
        heap.free_nonnull(block).unwrap();
    }
    assert_eq!(heap.total_free(), 1 << 16);
    assert_eq!(heap.region().stats().largest_free_order, Some(16));
}

#[test]
fn typed_allocations_honour_alignment() {
    #[repr(align(64))]
    struct CacheLine([u8; 64]);
    #[repr(align(256))]
    struct Wide(u8);
    struct MyStruct(usize, usize, u32);

    let mut heap = BuddyAllocator::<4096, 8>::new(false);
    let _pad = heap.alloc_bytes(16).unwrap();
    let line = heap.alloc::<CacheLine>().unwrap();
    assert_eq!(line.as_ptr() as usize % 64, 0);
    let wide = heap.alloc::<Wide>().unwrap();
    assert_eq!(wide.as_ptr() as usize % 256, 0);
    let value = heap.alloc::<MyStruct>().unwrap();
    assert_eq!(value.as_ptr() as usize % align_of::<MyStruct>(), 0);
    // SAFETY: the block is aligned and large enough for `MyStruct`.
    unsafe {
        value.as_ptr().write(MyStruct(32, 3, 90));
        assert_eq!((*value.as_ptr()).2, 90);
        assert_eq!((*value.as_ptr()).0 + (*value.as_ptr()).1, 35);
        line.as_ptr().write(CacheLine([7; 64]));
        wide.as_ptr().write(Wide(1));
        assert_eq!((*line.as_ptr()).0[63], 7);
        assert_eq!((*wide.as_ptr()).0, 1);
    }
    heap.free(value.as_ptr()).unwrap();
    heap.free(line.as_ptr()).unwrap();
    heap.free_nonnull(wide).unwrap();
}

fn make_and_fill() -> (BuddyAllocator<2048, 16>, NonNull<u8>) {
    let mut heap = BuddyAllocator::<2048, 16>::new(false);
    let block = heap.alloc_bytes(100).unwrap();
    // SAFETY: the block has 128 writable bytes.
    unsafe { block.as_ptr().write_bytes(0xCD, 128) };
    (heap, block)
}

#[test]
fn the_allocator_keeps_working_after_being_moved() {
    // The seed's `new` returned an allocator that pointed at a dead stack frame; moves must be harmless.
    let (heap, block) = make_and_fill();
    let mut boxed = Box::new(heap);
    let other = boxed.alloc_bytes(100).unwrap();
    assert_ne!(other, block);
    let mut moved = [*boxed];
    let heap = &mut moved[0];
    // SAFETY: `block` is still live, 128 bytes.
    let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), 128) };
    assert!(bytes.iter().all(|&b| b == 0xCD));
    heap.free_nonnull(block).unwrap();
    heap.free_nonnull(other).unwrap();
    assert_eq!(heap.total_free(), 2048);
    heap.region().check_invariants().unwrap();
}

#[test]
fn zero_initialized_allocators_hand_out_zeroed_blocks_even_after_reuse() {
    let mut heap = BuddyAllocator::<1024, 16>::new(true);
    let block = heap.alloc_bytes(64).unwrap();
    // SAFETY: 64 writable bytes.
    unsafe { block.as_ptr().write_bytes(0xFF, 64) };
    heap.free_nonnull(block).unwrap();
    let again = heap.alloc_bytes(64).unwrap();
    // SAFETY: 64 readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(again.as_ptr(), 64) };
    assert!(bytes.iter().all(|&b| b == 0));
}

#[test]
fn free_all_returns_every_block() {
    let mut heap = BuddyAllocator::<1024, 16>::new(false);
    let blocks: Vec<_> = (0..10).map(|_| heap.alloc_bytes(30).unwrap()).collect();
    assert_eq!(heap.total_allocated(), 320);
    heap.free_all();
    assert_eq!(heap.total_free(), 1024);
    assert_eq!(heap.free_nonnull(blocks[0]), Err(FreeError::DoubleFree));
    assert!(heap.alloc_bytes(1024).is_ok());
}

#[test]
fn allocators_can_be_sent_to_other_threads() {
    let mut heap = BuddyAllocator::<4096, 16>::new(false);
    let block = heap.alloc_bytes(32).unwrap().as_ptr() as usize;
    let heap = std::thread::spawn(move || {
        heap.free(block as *mut u8).unwrap();
        heap
    })
    .join()
    .unwrap();
    assert_eq!(heap.total_free(), 4096);
}
