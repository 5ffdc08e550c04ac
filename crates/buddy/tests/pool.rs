//! The seed-003 API, `BuddyPool`: the seed's cases (btok, pool sizes, one byte, the whole pool), every bound as an
//! error, and threads.

mod common;

use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::Arc;

use classalloc_buddy::pool::{bytes_to_order, pool_order, DEFAULT_K, MAX_K, MIN_K, SMALLEST_K};
use classalloc_buddy::{BuddyPool, PoolError, RegionFreeError};
use common::{all_equal, fill, Rng};

#[test]
fn bytes_to_order_matches_the_seed_and_never_loops() {
    assert_eq!(bytes_to_order(0), 6);
    assert_eq!(bytes_to_order(1), 6);
    assert_eq!(bytes_to_order(64), 6);
    assert_eq!(bytes_to_order(65), 7);
    assert_eq!(bytes_to_order(1024), 10);
    assert_eq!(bytes_to_order(1025), 11);
    assert_eq!(bytes_to_order(1 << 63), 63);
    assert_eq!(bytes_to_order((1 << 63) + 1), 64);
    assert_eq!(bytes_to_order(usize::MAX), 64);
    assert_eq!(SMALLEST_K, 6);
}

#[test]
fn pool_order_matches_the_seed_and_bounds_are_errors() {
    assert_eq!(pool_order(0), Ok(DEFAULT_K));
    assert_eq!(pool_order(0), Ok(30));
    assert_eq!(pool_order(1), Ok(MIN_K));
    assert_eq!(pool_order(1 << 15), Ok(20));
    assert_eq!(pool_order((1 << 20) + 1), Ok(21));
    assert_eq!(pool_order(1 << 36), Ok(36));
    assert_eq!(pool_order(1 << 48), Ok(MAX_K));
    assert_eq!(pool_order((1 << 48) + 1), Err(PoolError::PoolTooLarge));
    assert_eq!(pool_order(usize::MAX), Err(PoolError::PoolTooLarge));
    assert_eq!(
        BuddyPool::new(usize::MAX).unwrap_err(),
        PoolError::PoolTooLarge
    );
}

#[test]
fn a_pool_of_order_max_k_is_built_or_refused_cleanly() {
    // 2^48 bytes exceeds the user address space of most machines: the OS refuses and we say so. Where it is
    // granted, the pool must work. Either way: no panic, no out-of-range index (the seed's `> MAX_K` bug).
    match BuddyPool::new(1 << MAX_K) {
        Ok(pool) => {
            assert_eq!(pool.order(), 48);
            let block = pool.alloc(1).unwrap();
            pool.free(block).unwrap();
        }
        Err(error) => assert!(matches!(error, PoolError::Os(_)), "{error:?}"),
    }
}

#[test]
fn the_default_pool_is_two_to_the_thirty_and_lazily_backed() {
    let pool = BuddyPool::new(0).unwrap();
    assert_eq!(pool.order(), 30);
    assert_eq!(pool.size(), 1 << 30);
    assert_eq!(pool.base().as_ptr() as usize % (1 << 30), 0);
    let block = pool.alloc(100).unwrap();
    pool.free(block).unwrap();
    assert_eq!(pool.stats().free_bytes, 1 << 30);
}

#[test]
fn one_byte_then_free_restores_one_block() {
    let pool = BuddyPool::new(1 << 20).unwrap();
    assert_eq!(pool.order(), 20);
    let block = pool.alloc(1).unwrap();
    assert_eq!(pool.stats().allocated_bytes, 64);
    pool.free(block).unwrap();
    let stats = pool.stats();
    assert_eq!(stats.free_bytes, 1 << 20);
    assert_eq!(stats.largest_free_order, Some(20));
    pool.check_invariants().unwrap();
}

#[test]
fn the_whole_pool_is_one_allocation_and_the_next_fails_cleanly() {
    let pool = BuddyPool::new(1 << 20).unwrap();
    let whole = pool.alloc(1 << 20).unwrap();
    assert_eq!(whole, pool.base());
    assert_eq!(pool.alloc(1), Err(PoolError::OutOfMemory));
    assert_eq!(pool.alloc(1 << 20), Err(PoolError::OutOfMemory));
    pool.free(whole).unwrap();
    assert!(
        pool.alloc((1 << 20) - 24).is_ok(),
        "the seed's whole-pool request"
    );
}

#[test]
fn bad_requests_are_errors() {
    let pool = BuddyPool::new(1 << 20).unwrap();
    assert_eq!(pool.alloc(0), Err(PoolError::ZeroSize));
    assert_eq!(pool.alloc((1 << 20) + 1), Err(PoolError::OutOfMemory));
    assert_eq!(pool.alloc(usize::MAX), Err(PoolError::OutOfMemory));
    assert_eq!(pool.alloc((1 << 63) + 1), Err(PoolError::OutOfMemory));

    let block = pool.alloc(100).unwrap();
    let mut local = 0u8;
    let foreign = NonNull::from(&mut local);
    assert_eq!(
        pool.free(foreign),
        Err(PoolError::InvalidFree(RegionFreeError::OutOfBounds))
    );
    // SAFETY: 8 bytes into a 128-byte block.
    let interior = unsafe { NonNull::new_unchecked(block.as_ptr().add(8)) };
    assert!(matches!(
        pool.free(interior),
        Err(PoolError::InvalidFree(
            RegionFreeError::InteriorPointer { .. }
        ))
    ));
    assert_eq!(
        pool.free_sized(block, 64),
        Err(PoolError::InvalidFree(RegionFreeError::WrongOrder {
            actual: 7
        }))
    );
    assert_eq!(
        pool.free_sized(block, 0),
        Err(PoolError::InvalidFree(RegionFreeError::BadOrder))
    );
    assert_eq!(
        pool.free_sized(block, usize::MAX),
        Err(PoolError::InvalidFree(RegionFreeError::BadOrder))
    );
    pool.free_sized(block, 100).unwrap();
    // The seed had no double-free check at all and corrupted its lists.
    assert_eq!(
        pool.free(block),
        Err(PoolError::InvalidFree(RegionFreeError::NotAllocated))
    );
    assert_eq!(pool.stats().free_bytes, 1 << 20);
    pool.check_invariants().unwrap();
}

#[test]
fn ten_small_blocks_are_distinct_and_aligned() {
    let pool = BuddyPool::new(1 << 20).unwrap();
    let blocks: Vec<_> = (0..10).map(|_| pool.alloc(8).unwrap()).collect();
    let distinct: HashSet<_> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
    assert_eq!(distinct.len(), 10);
    assert!(blocks.iter().all(|b| b.as_ptr() as usize % 64 == 0));
    for block in blocks {
        pool.free(block).unwrap();
    }
    assert_eq!(pool.stats().largest_free_order, Some(20));
}

#[test]
fn pools_are_dropped_and_rebuilt_repeatedly() {
    for _ in 0..50 {
        let pool = BuddyPool::new(1 << 24).unwrap();
        let block = pool.alloc(1 << 23).unwrap();
        // SAFETY: 2^23 writable bytes; touching the first and last page only.
        unsafe {
            block.as_ptr().write(1);
            block.as_ptr().add((1 << 23) - 1).write(2);
        }
        drop(pool);
    }
}

#[test]
fn threads_share_a_pool_without_overlap() {
    let pool = Arc::new(BuddyPool::new(1 << 22).unwrap());
    let handles: Vec<_> = (0..4u8)
        .map(|thread| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut rng = Rng(u64::from(thread) + 11);
                let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
                for step in 0..3000usize {
                    if live.len() < 64 && rng.below(2) == 0 {
                        let size = 1 + rng.below(4000);
                        if let Ok(block) = pool.alloc(size) {
                            let pattern = thread * 50 + (step % 50) as u8 + 1;
                            // SAFETY: the block has at least `size` writable bytes.
                            unsafe { fill(block, size, pattern) };
                            live.push((block, size, pattern));
                        }
                    } else if !live.is_empty() {
                        let (block, size, pattern) = live.swap_remove(rng.below(live.len()));
                        // SAFETY: the block is live with `size` bytes written.
                        let intact = unsafe { all_equal(block, size, pattern) };
                        assert!(intact, "another thread wrote here");
                        pool.free(block).unwrap();
                    }
                }
                for (block, _, _) in live {
                    pool.free(block).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(pool.stats().free_bytes, 1 << 22);
    assert_eq!(pool.stats().largest_free_order, Some(22));
    pool.check_invariants().unwrap();
}
