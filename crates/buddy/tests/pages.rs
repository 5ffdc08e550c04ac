//! The seed-004 API, `PageHeap`: orders 0 to 10 of 4 KiB pages, growth by whole chunks, and every misuse.

mod common;

use std::collections::BTreeMap;
use std::ptr::NonNull;

use classalloc_buddy::pages::{PageStats, DEFAULT_MAX_ORDER, DEFAULT_PAGE_SHIFT};
use classalloc_buddy::{PageError, PageHeap, RegionFreeError};
use common::{all_equal, fill, Rng};

#[test]
fn every_order_from_0_to_10_is_served_aligned_to_its_size() {
    let mut heap = PageHeap::new();
    assert_eq!(heap.page_size(), 4096);
    assert_eq!(heap.max_order(), 10);
    assert_eq!(
        heap.stats().chunks,
        0,
        "nothing is mapped before the first allocation"
    );
    let mut blocks = Vec::new();
    for order in 0..=DEFAULT_MAX_ORDER {
        let block = heap.alloc_pages(order).unwrap();
        let size = 4096usize << order;
        assert_eq!(block.as_ptr() as usize % size, 0, "order {order}");
        // SAFETY: the block is `size` writable bytes.
        unsafe { fill(block, size, order as u8 + 1) };
        blocks.push((block, order));
    }
    for &(block, order) in &blocks {
        // SAFETY: live block, filled above.
        let intact = unsafe { all_equal(block, 4096 << order, order as u8 + 1) };
        assert!(intact);
    }
    for (block, order) in blocks {
        heap.free_pages(block, order).unwrap();
    }
    let stats = heap.stats();
    assert_eq!(stats.allocated_pages, 0);
    assert_eq!(stats.free_pages, stats.total_pages);
    heap.check_invariants().unwrap();
}

#[test]
fn an_exhausted_heap_grows_by_another_chunk() {
    let mut heap = PageHeap::new();
    let first = heap.alloc_pages(10).unwrap();
    assert_eq!(heap.stats().chunks, 1);
    let second = heap.alloc_pages(10).unwrap();
    let third = heap.alloc_pages(0).unwrap();
    assert_eq!(
        heap.stats(),
        PageStats {
            chunks: 3,
            total_pages: 3 * 1024,
            allocated_pages: 2049,
            free_pages: 1023,
        }
    );
    for block in [first, second, third] {
        let order = heap.free_pages_unsized(block).unwrap();
        assert!(order == 10 || order == 0);
    }
    assert_eq!(heap.stats().allocated_pages, 0);
    // Free chunks are reused before the heap grows again.
    for _ in 0..3 {
        heap.alloc_pages(10).unwrap();
    }
    assert_eq!(heap.stats().chunks, 3);
    heap.check_invariants().unwrap();
}

#[test]
fn a_chunk_limit_turns_exhaustion_into_an_error() {
    let mut heap = PageHeap::with_config(DEFAULT_PAGE_SHIFT, 2, 1).unwrap();
    let all = heap.alloc_pages(2).unwrap();
    assert_eq!(heap.alloc_pages(0), Err(PageError::ChunkLimitReached));
    heap.free_pages(all, 2).unwrap();
    assert!(heap.alloc_pages(0).is_ok());
}

#[test]
fn bad_configurations_and_orders_are_errors() {
    assert_eq!(
        PageHeap::with_config(3, 4, 1).unwrap_err(),
        PageError::BadConfig
    );
    assert_eq!(
        PageHeap::with_config(12, 60, 1).unwrap_err(),
        PageError::BadConfig
    );
    assert_eq!(
        PageHeap::with_config(u32::MAX, 1, 1).unwrap_err(),
        PageError::BadConfig
    );
    assert_eq!(
        PageHeap::with_config(12, u32::MAX, 1).unwrap_err(),
        PageError::BadConfig
    );
    let mut heap = PageHeap::new();
    assert_eq!(heap.alloc_pages(11), Err(PageError::OrderTooLarge));
    assert_eq!(heap.alloc_pages(u32::MAX), Err(PageError::OrderTooLarge));
    assert_eq!(heap.stats().chunks, 0);
}

#[test]
fn a_heap_refuses_chunks_the_os_cannot_give() {
    // A chunk of 2^(12 + 48) bytes: no machine maps that; the error must say the OS refused.
    let mut heap = PageHeap::with_config(DEFAULT_PAGE_SHIFT, 48, 4).unwrap();
    assert!(matches!(heap.alloc_pages(0), Err(PageError::Os(_))));
    assert_eq!(heap.stats().chunks, 0);
}

#[test]
fn bad_frees_are_errors() {
    let mut heap = PageHeap::new();
    let block = heap.alloc_pages(2).unwrap();
    let mut local = 0u64;
    let foreign = NonNull::from(&mut local).cast::<u8>();
    assert_eq!(heap.free_pages(foreign, 0), Err(PageError::ForeignPointer));
    assert_eq!(
        heap.free_pages_unsized(foreign),
        Err(PageError::ForeignPointer)
    );
    assert_eq!(heap.free_pages(block, 11), Err(PageError::OrderTooLarge));
    assert_eq!(
        heap.free_pages(block, 1),
        Err(PageError::InvalidFree(RegionFreeError::WrongOrder {
            actual: 14
        }))
    );
    // SAFETY: one page into a four-page block.
    let interior = unsafe { NonNull::new_unchecked(block.as_ptr().add(4096)) };
    assert!(matches!(
        heap.free_pages(interior, 0),
        Err(PageError::InvalidFree(
            RegionFreeError::InteriorPointer { .. }
        ))
    ));
    heap.free_pages(block, 2).unwrap();
    assert_eq!(
        heap.free_pages(block, 2),
        Err(PageError::InvalidFree(RegionFreeError::NotAllocated))
    );
    heap.check_invariants().unwrap();
}

#[test]
fn random_page_actions_across_growing_chunks() {
    let mut heap = PageHeap::with_config(DEFAULT_PAGE_SHIFT, 6, 8).unwrap();
    let mut rng = Rng(5);
    let mut live: BTreeMap<usize, (u32, u8)> = BTreeMap::new();
    for step in 0..3000usize {
        if live.is_empty() || rng.below(100) < 55 {
            let order = rng.below(7) as u32;
            match heap.alloc_pages(order) {
                Ok(block) => {
                    let addr = block.as_ptr() as usize;
                    let size = 4096usize << order;
                    assert_eq!(addr % size, 0);
                    if let Some((&prev, &(prev_order, _))) = live.range(..addr + size).next_back() {
                        assert!(prev + (4096usize << prev_order) <= addr, "overlap");
                    }
                    let pattern = (step % 200) as u8 + 1;
                    // SAFETY: the first and last bytes of a live block.
                    unsafe {
                        block.as_ptr().write(pattern);
                        block.as_ptr().add(size - 1).write(pattern);
                    }
                    live.insert(addr, (order, pattern));
                }
                Err(error) => assert_eq!(error, PageError::ChunkLimitReached),
            }
        } else {
            let addr = *live.keys().nth(rng.below(live.len())).unwrap();
            let (order, pattern) = live.remove(&addr).unwrap();
            let block = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: the first and last bytes of a live block.
            unsafe {
                assert_eq!(block.as_ptr().read(), pattern);
                assert_eq!(block.as_ptr().add((4096 << order) - 1).read(), pattern);
            }
            heap.free_pages(block, order).unwrap();
        }
        if step % 500 == 0 {
            heap.check_invariants().unwrap();
        }
    }
    for (addr, (order, _)) in live {
        heap.free_pages(NonNull::new(addr as *mut u8).unwrap(), order)
            .unwrap();
    }
    let stats = heap.stats();
    assert_eq!(stats.allocated_pages, 0);
    assert_eq!(
        heap.free_blocks_per_order()[6],
        stats.chunks,
        "every chunk merges back whole"
    );
    heap.check_invariants().unwrap();
}
