//! Workload f, larson: a port of mimalloc-bench's `larson` (Larson and Krishnan's server simulation).
//!
//! Each thread owns an array of slots holding objects of random sizes (8 to 1000 bytes, as
//! mimalloc-bench runs it) and replaces random slots. At the end of every epoch each array is handed
//! to the next thread (as larson's threads hand their arrays to the thread that replaces them), so
//! most objects are freed by a thread other than the one that allocated them.

use std::alloc::GlobalAlloc;
use std::time::Instant;

use super::{alloc_or_die, layout_for};
use crate::prng::SplitMix64;

/// The smallest object size.
const MIN_SIZE: usize = 8;
/// The largest object size.
const MAX_SIZE: usize = 1000;

/// The parameters of one larson run.
#[derive(Clone, Copy, Debug)]
pub struct LarsonConfig {
    /// Worker threads.
    pub threads: usize,
    /// Slots per thread's array.
    pub slots: usize,
    /// Epochs; arrays move to the next thread between epochs.
    pub epochs: usize,
    /// Replacements per thread per epoch.
    pub steps_per_epoch: usize,
}

/// Objects as addresses and sizes, so that arrays can move between threads.
type Slots = Vec<(usize, usize)>;

/// Runs larson; returns (replacements done, seconds taken).
pub fn run<A: GlobalAlloc + Sync>(alloc: &A, config: LarsonConfig) -> (u64, f64) {
    let mut arrays: Vec<Slots> = (0..config.threads)
        .map(|thread| {
            let mut rng = SplitMix64::new(thread as u64 + 1);
            (0..config.slots)
                .map(|_| {
                    let size = rng.between(MIN_SIZE, MAX_SIZE);
                    // SAFETY: size >= 8.
                    (
                        unsafe { alloc_or_die(alloc, layout_for(size)) } as usize,
                        size,
                    )
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    for epoch in 0..config.epochs {
        // Hand each array to the next thread: its objects are now freed by another thread.
        arrays.rotate_right(1);
        arrays = std::thread::scope(|scope| {
            let workers: Vec<_> = arrays
                .drain(..)
                .enumerate()
                .map(|(thread, mut slots)| {
                    scope.spawn(move || {
                        let mut rng = SplitMix64::new((epoch * 1_000 + thread) as u64 + 7);
                        for _ in 0..config.steps_per_epoch {
                            let index = rng.below(slots.len());
                            let size = rng.between(MIN_SIZE, MAX_SIZE);
                            let (old, old_size) = slots[index];
                            // SAFETY: `old` is a live object allocated with layout_for(old_size);
                            // it leaves the array here, so it is freed once. size >= 8.
                            unsafe {
                                alloc.dealloc(old as *mut u8, layout_for(old_size));
                                let object = alloc_or_die(alloc, layout_for(size));
                                object.write(1);
                                slots[index] = (object as usize, size);
                            }
                        }
                        slots
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("larson worker panicked"))
                .collect()
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    for slots in arrays {
        for (object, size) in slots {
            // SAFETY: every object left in the arrays is live, allocated with layout_for(size).
            unsafe { alloc.dealloc(object as *mut u8, layout_for(size)) };
        }
    }
    let replacements = (config.threads * config.epochs * config.steps_per_epoch) as u64;
    (replacements, seconds)
}
