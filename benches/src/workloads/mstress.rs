//! Workload f, mstress: a port of mimalloc's `test-stress` as mimalloc-bench runs it. Threads allocate
//! objects (1% of them 100 times larger), fill every word with a cookie derived from the object's
//! address, free random ones after checking the cookie, and swap objects through a shared transfer
//! array, so objects are also freed by threads other than their allocator. Threads are recreated
//! every round. A corrupted cookie aborts the run: this is a correctness check as well as a timing.

use std::alloc::GlobalAlloc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{alloc_or_die, join_all};
use crate::prng::SplitMix64;

/// Slots of the shared transfer array.
const TRANSFER_SLOTS: usize = 1000;
/// Words per ordinary object at most (objects are 2 to 32 words; 1% are 100 times larger).
const MAX_WORDS: usize = 32;

/// The parameters of one mstress run.
#[derive(Clone, Copy, Debug)]
pub struct MstressConfig {
    /// Threads per round.
    pub threads: usize,
    /// Rounds; threads are recreated every round.
    pub rounds: usize,
    /// Steps per thread per round.
    pub steps: usize,
}

fn layout_of(words: usize) -> std::alloc::Layout {
    std::alloc::Layout::array::<usize>(words).expect("small objects")
}

fn cookie(object: *mut usize) -> usize {
    (object as usize) ^ 0xC0FF_EE00_BAD5_EED5
}

/// Allocates an object of `words` words; word 0 holds the length, the others the cookie.
fn make<A: GlobalAlloc>(alloc: &A, words: usize) -> usize {
    // SAFETY: words >= 2, so the layout is non-zero and every word written is inside the object.
    unsafe {
        let object = alloc_or_die(alloc, layout_of(words)).cast::<usize>();
        object.write(words);
        let value = cookie(object);
        for word in 1..words {
            object.add(word).write(value);
        }
        object as usize
    }
}

/// Checks the cookie of an object made by [`make`] and frees it.
fn check_and_free<A: GlobalAlloc>(alloc: &A, address: usize) {
    let object = address as *mut usize;
    // SAFETY: `address` is a live object made by `make` (words >= 2, word 0 its length), owned by
    // this thread now; it is freed once, with the layout it was made with.
    unsafe {
        let words = object.read();
        let value = cookie(object);
        for word in 1..words {
            if object.add(word).read() != value {
                eprintln!("mstress: object {address:#x} corrupted at word {word}");
                std::process::abort();
            }
        }
        alloc.dealloc(object.cast(), layout_of(words));
    }
}

/// Runs mstress; returns (steps done, seconds taken).
pub fn run<A: GlobalAlloc + Sync>(alloc: &A, config: MstressConfig) -> (u64, f64) {
    let transfer: Vec<AtomicUsize> = (0..TRANSFER_SLOTS).map(|_| AtomicUsize::new(0)).collect();
    let start = Instant::now();
    for round in 0..config.rounds {
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(config.threads);
            for thread in 0..config.threads {
                let transfer = &transfer;
                handles.push(scope.spawn(move || {
                    let mut rng = SplitMix64::new((round * 64 + thread) as u64 + 3);
                    let mut owned: Vec<usize> = Vec::with_capacity(config.steps);
                    for _ in 0..config.steps {
                        match rng.below(4) {
                            0 | 1 => {
                                let mut words = rng.between(2, MAX_WORDS);
                                if rng.below(100) == 0 {
                                    words *= 100;
                                }
                                owned.push(make(alloc, words));
                            }
                            2 => {
                                if !owned.is_empty() {
                                    let index = rng.below(owned.len());
                                    check_and_free(alloc, owned.swap_remove(index));
                                }
                            }
                            _ => {
                                let slot = &transfer[rng.below(TRANSFER_SLOTS)];
                                let give = owned.pop().unwrap_or(0);
                                // AcqRel: the cookie written by the giving thread must be visible
                                // to the taking thread that checks and frees it.
                                let taken = slot.swap(give, Ordering::AcqRel);
                                if taken != 0 {
                                    owned.push(taken);
                                }
                            }
                        }
                    }
                    for object in owned {
                        check_and_free(alloc, object);
                    }
                }));
            }
            join_all(handles);
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    for slot in &transfer {
        let object = slot.swap(0, Ordering::Acquire);
        if object != 0 {
            check_and_free(alloc, object);
        }
    }
    (
        (config.threads * config.rounds * config.steps) as u64,
        seconds,
    )
}
