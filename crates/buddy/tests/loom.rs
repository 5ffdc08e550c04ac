//! Loom models of the pool's lock: every interleaving of a few threads allocating and freeing through one
//! `BuddyPool` (run with `cargo xtask loom`, which sets `--cfg loom`).

#![cfg(loom)]

use std::collections::HashSet;

use classalloc_buddy::pool::MIN_K;
use classalloc_buddy::BuddyPool;
use loom::sync::Arc;

/// Two threads each take a block, write it, and give it back; a third block is held by the main thread. No block
/// may be handed out twice, and everything merges back at the end.
#[test]
fn loom_pool_concurrent_alloc_free() {
    loom::model(|| {
        let pool = Arc::new(BuddyPool::new(1 << MIN_K).unwrap());
        let held = pool.alloc(64).unwrap();
        let threads: Vec<_> = (0..2u8)
            .map(|thread| {
                let pool = Arc::clone(&pool);
                loom::thread::spawn(move || {
                    let block = pool.alloc(64).unwrap();
                    // SAFETY: the block is 64 bytes handed out to this thread alone.
                    unsafe { block.as_ptr().write_bytes(thread + 1, 64) };
                    // SAFETY: as above.
                    let first = unsafe { block.as_ptr().read() };
                    assert_eq!(first, thread + 1, "another thread wrote into this block");
                    let address = block.as_ptr() as usize;
                    pool.free(block).unwrap();
                    address
                })
            })
            .collect();
        let addresses: HashSet<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(!addresses.contains(&(held.as_ptr() as usize)));
        pool.free(held).unwrap();
        let stats = pool.stats();
        assert_eq!(stats.allocated_bytes, 0);
        assert_eq!(stats.largest_free_order, Some(MIN_K));
    });
}

/// One thread frees while another allocates the whole pool: the allocation either fails cleanly or gets the
/// whole, merged pool, never a block that is still live.
#[test]
fn loom_pool_free_races_whole_pool_alloc() {
    loom::model(|| {
        let pool = Arc::new(BuddyPool::new(1 << MIN_K).unwrap());
        let small = pool.alloc(64).unwrap();
        let freer = {
            let pool = Arc::clone(&pool);
            let address = small.as_ptr() as usize;
            loom::thread::spawn(move || {
                let block = core::ptr::NonNull::new(address as *mut u8).unwrap();
                pool.free(block).unwrap();
            })
        };
        let whole = pool.alloc(1 << MIN_K);
        freer.join().unwrap();
        match whole {
            Ok(block) => {
                assert_eq!(block, pool.base());
                pool.free(block).unwrap();
            }
            Err(error) => assert_eq!(error, classalloc_buddy::PoolError::OutOfMemory),
        }
        assert_eq!(pool.stats().allocated_bytes, 0);
    });
}
