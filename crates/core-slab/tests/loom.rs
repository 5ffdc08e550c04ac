//! Loom models of the head / block lock interactions (`cargo xtask loom`).
//!
//! Blocks of 64-byte slots hold two slots here, so every model reaches the full, partial and empty
//! transitions with a handful of operations.
#![cfg(loom)]

use classalloc_slab::{Geometry, SizeClass, Slab, SlabConfig};
use core::ptr::NonNull;
use loom::sync::Arc;
use loom::thread;

struct TwoSlotBlocks;
impl SlabConfig for TwoSlotBlocks {
    const GEOMETRY: Geometry = Geometry::SEED
        .with_block_shift(64, 12)
        .with_max_slots(64, 2);
}

type TestSlab = Slab<TwoSlotBlocks>;

/// A pointer that may cross threads in a model.
#[derive(Clone, Copy)]
struct Slot(NonNull<u8>);
// SAFETY: a slot is plain memory owned by whichever thread holds the value.
unsafe impl Send for Slot {}

fn alloc(slab: &TestSlab) -> Slot {
    Slot(slab.malloc(64).expect("mapping a 4 KiB block"))
}

fn free(slab: &TestSlab, slot: Slot) {
    // SAFETY: every model frees each slot exactly once, after allocating it with size 64.
    unsafe { slab.free(slot.0, 64) }.expect("a valid free");
}

/// Runs `model` under loom in a thread with a stack large enough for a loom-built slab (116 heads of
/// loom primitives are built by value before they move into their `Arc`).
fn check(model: fn()) {
    loom::model(move || {
        thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(model)
            .unwrap()
            .join()
            .unwrap();
    });
}

fn assert_settled(slab: &TestSlab) {
    let stats = slab.class_stats(SizeClass::for_size(64).unwrap());
    assert_eq!(stats.live_objects, 0);
    assert_eq!(stats.blocks, 0, "everything freed: every block went back");
}

#[test]
fn loom_head_block_alloc_races_free_on_the_same_block() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        let first = alloc(&slab);
        let freer = {
            let slab = slab.clone();
            thread::spawn(move || free(&slab, first))
        };
        let second = alloc(&slab);
        // SAFETY: `second` is ours; writing it checks it is not the slot being freed concurrently.
        unsafe { second.0.as_ptr().write_bytes(0xAB, 64) };
        freer.join().unwrap();
        free(&slab, second);
        assert_settled(&slab);
    });
}

#[test]
fn loom_head_block_free_makes_a_full_block_partial_while_allocating() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        // Fill the only block: it leaves the head's list.
        let a = alloc(&slab);
        let b = alloc(&slab);
        let freer = {
            let slab = slab.clone();
            thread::spawn(move || free(&slab, a))
        };
        // Either reuses `a`'s slot (after the relink) or maps a second block.
        let c = alloc(&slab);
        freer.join().unwrap();
        free(&slab, c);
        free(&slab, b);
        assert_settled(&slab);
    });
}

#[test]
fn loom_head_block_free_empties_a_block_while_its_head_allocates() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        // Block 1: x1, x2. Block 2: y1, y2, then emptied: it goes back to the page source.
        let x1 = alloc(&slab);
        let x2 = alloc(&slab);
        let y1 = alloc(&slab);
        let y2 = alloc(&slab);
        free(&slab, y1);
        free(&slab, y2);
        free(&slab, x1);
        // Freeing x2 empties block 1, which is unmapped. Meanwhile this thread takes a slot from block 1
        // (or from a new block, if block 1 is already gone) and frees it, emptying its block too: whichever settles last must find the block
        // still mapped (the pending count), and it must be unmapped exactly once.
        let freer = {
            let slab = slab.clone();
            thread::spawn(move || free(&slab, x2))
        };
        let z = alloc(&slab);
        // SAFETY: `z` is ours: if its block were unmapped under us this write would fault.
        unsafe { z.0.as_ptr().write_bytes(0xCD, 64) };
        free(&slab, z);
        freer.join().unwrap();
        assert_settled(&slab);
    });
}

// ----- the thread-local front end ----------------------------------------------------------------

use classalloc_slab::SlabCache;
use core::pin::Pin;
use loom::sync::atomic::{AtomicBool, Ordering};

fn alloc_cached(slab: &TestSlab, cache: Pin<&SlabCache>) -> Slot {
    Slot(
        slab.malloc_cached(cache, 64)
            .expect("mapping a 4 KiB block"),
    )
}

fn free_cached(slab: &TestSlab, cache: Pin<&SlabCache>, slot: Slot) {
    // SAFETY: every model frees each slot exactly once, after allocating it with size 64.
    unsafe { slab.free_cached(cache, slot.0, 64) }.expect("a valid free");
}

#[test]
fn loom_front_end_refill_races_a_locked_free_on_the_same_block() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        // Block 1 holds `a` (locked path) and one free slot.
        let a = alloc(&slab);
        let freer = {
            let slab = slab.clone();
            thread::spawn(move || free(&slab, a))
        };
        // The refill takes block 1's free slot (or both, once `a` is back) while `a` is freed.
        let cache = Box::pin(SlabCache::new());
        let b = alloc_cached(&slab, cache.as_ref());
        // SAFETY: `b` is ours: writing it checks it is not the slot being freed concurrently.
        unsafe { b.0.as_ptr().write_bytes(0xAB, 64) };
        free_cached(&slab, cache.as_ref(), b);
        freer.join().unwrap();
        drop(cache);
        assert_settled(&slab);
    });
}

#[test]
fn loom_front_end_flush_races_a_free_from_another_threads_cache() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        let cache = Box::pin(SlabCache::new());
        // One refill takes both slots of block 1 into this thread's cache.
        let a = alloc_cached(&slab, cache.as_ref());
        let b = alloc_cached(&slab, cache.as_ref());
        // Another thread frees `a` into its own cache and exits: its cache gives `a` back to block 1,
        // while this thread frees `b` and flushes: both runs reach the block; the last one empties it.
        let remote = {
            let slab = slab.clone();
            thread::spawn(move || {
                let cache = Box::pin(SlabCache::new());
                free_cached(&slab, cache.as_ref(), a);
            })
        };
        free_cached(&slab, cache.as_ref(), b);
        slab.flush_cache(cache.as_ref()).unwrap();
        remote.join().unwrap();
        drop(cache);
        assert_settled(&slab);
    });
}

#[test]
fn loom_front_end_thread_exits_while_others_free_its_objects() {
    check(|| {
        let slab = Arc::new(TestSlab::with_config());
        // A thread allocates both slots of block 1 through its cache, keeps one free slot cached (it
        // frees `mine`) and exits, giving its cache back, while this thread frees `theirs` directly.
        let (tx, rx) = loom::sync::mpsc::channel();
        let owner = {
            let slab = slab.clone();
            thread::spawn(move || {
                let cache = Box::pin(SlabCache::new());
                let theirs = alloc_cached(&slab, cache.as_ref());
                let mine = alloc_cached(&slab, cache.as_ref());
                tx.send(theirs).unwrap();
                free_cached(&slab, cache.as_ref(), mine);
            })
        };
        let theirs = rx.recv().unwrap();
        free(&slab, theirs);
        owner.join().unwrap();
        assert_settled(&slab);
    });
}

#[test]
fn loom_front_end_slab_dropped_while_a_thread_detaches() {
    check(|| {
        // The slab is shared by address (as a dropped `ClassAlloc`'s would be); the owner of a cache
        // detaches it while the slab is dropped: either the detach gives its slot back first, or the
        // drop takes it back (orphaning the cache), never both, and neither touches freed memory.
        let slab: &'static TestSlab = Box::leak(Box::new(TestSlab::with_config()));
        let address = slab as *const TestSlab as usize;
        let ready = Arc::new(AtomicBool::new(false));
        let owner = {
            let ready = ready.clone();
            thread::spawn(move || {
                // SAFETY: the slab is dropped only after `ready`, and this thread makes no call on it
                // after setting `ready`; its cache's detach is synchronised with the drop by design.
                let slab = unsafe { &*(address as *const TestSlab) };
                let cache = Box::pin(SlabCache::new());
                let slot = alloc_cached(slab, cache.as_ref());
                free_cached(slab, cache.as_ref(), slot);
                ready.store(true, Ordering::Release);
                drop(cache);
            })
        };
        while !ready.load(Ordering::Acquire) {
            thread::yield_now();
        }
        // SAFETY: leaked above, dropped once, and the owner makes no more calls on it.
        drop(unsafe { Box::from_raw(address as *mut TestSlab) });
        owner.join().unwrap();
    });
}

/// Allocates `allocations` slots through this thread's cache, then frees them all while another thread's
/// cache makes its first allocation (a refill) and frees it; both caches give everything back.
fn frees_race_another_threads_first_allocation(allocations: usize) {
    let slab = Arc::new(TestSlab::with_config());
    let cache = Box::pin(SlabCache::new());
    let slots: Vec<Slot> = (0..allocations)
        .map(|_| alloc_cached(&slab, cache.as_ref()))
        .collect();
    let other = {
        let slab = slab.clone();
        thread::spawn(move || {
            let cache = Box::pin(SlabCache::new());
            let slot = alloc_cached(&slab, cache.as_ref());
            // SAFETY: `slot` is ours: writing it checks it is no slot still live in the other thread.
            unsafe { slot.0.as_ptr().write_bytes(0xCD, 64) };
            free_cached(&slab, cache.as_ref(), slot);
        })
    };
    for slot in slots {
        free_cached(&slab, cache.as_ref(), slot);
    }
    drop(cache);
    other.join().unwrap();
    assert_settled(&slab);
}

#[test]
fn loom_front_end_spill_to_the_transfer_cache_races_a_refill() {
    // Under loom a bin holds four 64-byte slots and a refill takes two. Five allocations leave one slot in
    // this thread's bin; the fourth of five frees finds it full and spills it whole into the head's
    // transfer cache, while another thread's first allocation refills its own empty bin: from that batch
    // if the spill came first, else from a block (the model fails if a spilled batch is lost). Either way
    // each slot is handed out once, and the exits (flush, then transfer drain) give every block back.
    check(|| frees_race_another_threads_first_allocation(5));
}

#[test]
fn loom_front_end_overflow_drain_races_a_refill_from_the_transfer_cache() {
    // Under loom the slab's transfer caches hold one batch. Nine allocations leave one slot in this
    // thread's bin; of nine frees, the fourth spills a batch into the transfer cache and the eighth finds
    // it full: its bin goes back to the blocks, and since the refused bytes reach the limit, the transfer
    // cache is drained too. Meanwhile another thread's first allocation refills its empty bin: from the
    // kept batch if it comes between the two spills, else from a block. Each slot is handed out once, no
    // batch is lost, and the exits give every block back.
    check(|| frees_race_another_threads_first_allocation(9));
}
