//! Workload a: the seed's own benchmark, per size: allocate; free in order; allocate; free in random
//! order; allocate; free in reverse; allocate; walk writing one byte per object; free.

use std::alloc::GlobalAlloc;
use std::hint::black_box;
use std::time::Instant;

use super::{alloc_or_die, layout_for};
use crate::prng::SplitMix64;

/// The names of the nine timed phases, in order.
pub const PHASES: [&str; 9] = [
    "alloc",
    "free in order",
    "alloc",
    "free random",
    "alloc",
    "free reverse",
    "alloc",
    "walk",
    "free",
];

/// Runs the nine phases on `count` objects of `size` bytes; returns nanoseconds per object of each.
pub fn run<A: GlobalAlloc>(alloc: &A, size: usize, count: usize, seed: u64) -> [f64; 9] {
    let layout = layout_for(size);
    let mut objects: Vec<*mut u8> = vec![std::ptr::null_mut(); count];
    let mut random_order: Vec<usize> = (0..count).collect();
    SplitMix64::new(seed).shuffle(&mut random_order);
    let mut nanos = [0f64; 9];
    let mut timed = |phase: usize, work: &mut dyn FnMut()| {
        let start = Instant::now();
        work();
        nanos[phase] = start.elapsed().as_nanos() as f64 / count as f64;
    };
    let allocate_all = |objects: &mut Vec<*mut u8>| {
        for slot in objects.iter_mut() {
            // SAFETY: layout_for gives a non-zero size.
            *slot = unsafe { alloc_or_die(alloc, layout) };
        }
        black_box(objects.as_ptr());
    };
    // SAFETY (for every `dealloc` below): each pointer came from `alloc` with `layout` in the
    // preceding allocation phase and is freed exactly once before the next allocation phase.
    timed(0, &mut || allocate_all(&mut objects));
    timed(1, &mut || {
        for &object in &objects {
            // SAFETY: see above.
            unsafe { alloc.dealloc(object, layout) };
        }
    });
    timed(2, &mut || allocate_all(&mut objects));
    timed(3, &mut || {
        for &index in &random_order {
            // SAFETY: see above; random_order is a permutation, so each object is freed once.
            unsafe { alloc.dealloc(objects[index], layout) };
        }
    });
    timed(4, &mut || allocate_all(&mut objects));
    timed(5, &mut || {
        for &object in objects.iter().rev() {
            // SAFETY: see above.
            unsafe { alloc.dealloc(object, layout) };
        }
    });
    timed(6, &mut || allocate_all(&mut objects));
    timed(7, &mut || {
        for &object in &objects {
            // SAFETY: each object is live and at least one byte long.
            unsafe { object.write_volatile(1) };
        }
    });
    timed(8, &mut || {
        for &object in &objects {
            // SAFETY: see above.
            unsafe { alloc.dealloc(object, layout) };
        }
    });
    nanos
}
