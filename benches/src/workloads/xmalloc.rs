//! Workload f, xmalloc: a port of mimalloc-bench's `xmalloc-test` (Lever and Boreham): producer
//! threads only allocate, consumer threads only free. With `w` workers there are `w` producers and
//! `w` consumers; each producer sends batches of objects to its consumer through a bounded channel.

use std::alloc::GlobalAlloc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use super::{alloc_or_die, join_all, layout_for};
use crate::prng::SplitMix64;

/// Objects per batch sent from a producer to its consumer.
const BATCH: usize = 100;
/// Batches in flight per producer/consumer pair before the producer waits.
const CHANNEL_BATCHES: usize = 16;
/// The smallest object size.
const MIN_SIZE: usize = 16;
/// The largest object size.
const MAX_SIZE: usize = 128;

/// Runs `workers` producer/consumer pairs, each pair moving `batches` batches of `BATCH` objects;
/// returns (objects allocated and freed, seconds taken).
pub fn run<A: GlobalAlloc + Sync>(alloc: &A, workers: usize, batches: usize) -> (u64, f64) {
    let start = Instant::now();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(2 * workers);
        for worker in 0..workers {
            let (sender, receiver) = sync_channel::<Vec<(usize, usize)>>(CHANNEL_BATCHES);
            handles.push(scope.spawn(move || {
                let mut rng = SplitMix64::new(worker as u64 + 11);
                for _ in 0..batches {
                    let batch = (0..BATCH)
                        .map(|_| {
                            let size = rng.between(MIN_SIZE, MAX_SIZE);
                            // SAFETY: size >= 16; the first byte is inside the object.
                            unsafe {
                                let object = alloc_or_die(alloc, layout_for(size));
                                object.write(1);
                                (object as usize, size)
                            }
                        })
                        .collect();
                    sender
                        .send(batch)
                        .expect("the consumer outlives the producer");
                }
            }));
            handles.push(scope.spawn(move || {
                for batch in receiver {
                    for (object, size) in batch {
                        // SAFETY: the producer allocated it with layout_for(size) and gave it up.
                        unsafe { alloc.dealloc(object as *mut u8, layout_for(size)) };
                    }
                }
            }));
        }
        join_all(handles);
    });
    let seconds = start.elapsed().as_secs_f64();
    ((workers * batches * BATCH) as u64, seconds)
}
