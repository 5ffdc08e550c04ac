//! The multi-thread stress (see `stress_common`) with `Global` as this binary's global allocator: objects
//! come from `std::alloc` (so from `Global`), from the seed's `malloc` / `calloc` and from
//! `aligned_alloc`, and the threads' own bookkeeping (vectors that grow, thread start and exit) runs on
//! classalloc too. The live counts of the process-wide slab must come back after each configuration.

mod stress_common;

use classalloc::Global;
use core::alloc::Layout;
use stress_common::Api;

#[global_allocator]
static GLOBAL: Global = Global::new();

/// Tag 0: `std::alloc` (the global allocator); 1: the seed's size-only functions; 2: `aligned_alloc`.
struct GlobalApi;

impl Api for GlobalApi {
    const TAGS: u8 = 3;

    fn alloc(&self, tag: u8, layout: Layout, zeroed: bool) -> *mut u8 {
        match (tag, zeroed) {
            // SAFETY: layouts of non-zero size.
            (0, false) => unsafe { std::alloc::alloc(layout) },
            // SAFETY: as above.
            (0, true) => unsafe { std::alloc::alloc_zeroed(layout) },
            (1, false) => classalloc::malloc(layout.size()),
            (1, true) => classalloc::calloc(layout.size()),
            _ => {
                let p = classalloc::aligned_alloc(layout.size(), layout.align());
                if zeroed && !p.is_null() {
                    // SAFETY: a fresh allocation of `layout.size()` bytes.
                    unsafe { p.write_bytes(0, layout.size()) };
                }
                p
            }
        }
    }

    fn guaranteed_align(&self, tag: u8, layout: Layout) -> usize {
        if tag != 1 {
            return layout.align();
        }
        if layout.size() <= 8192 {
            layout.size().next_power_of_two().min(4096)
        } else {
            4096
        }
    }

    unsafe fn free(&self, tag: u8, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract: `ptr` was allocated the way `tag` says, with `layout`.
        unsafe {
            match tag {
                0 => std::alloc::dealloc(ptr, layout),
                1 => classalloc::free(ptr, layout.size()),
                _ => classalloc::aligned_free(ptr, layout.size(), layout.align()),
            }
        }
    }

    unsafe fn realloc(&self, tag: u8, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            match tag {
                0 => std::alloc::realloc(ptr, layout, new_size),
                1 => classalloc::realloc(ptr, layout.size(), new_size),
                _ => {
                    // No resize for aligned_alloc: allocate, copy, free.
                    let new = classalloc::aligned_alloc(new_size, layout.align());
                    if !new.is_null() {
                        core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        classalloc::aligned_free(ptr, layout.size(), layout.align());
                    }
                    new
                }
            }
        }
    }

    fn live_counts(&self) -> [(usize, usize); 4] {
        let totals = classalloc::totals();
        let large = classalloc::large_stats();
        [
            (totals.live_objects, totals.live_bytes),
            (large.live_objects, large.mapped_bytes),
            (0, 0),
            (0, 0),
        ]
    }
}

#[test]
fn stress_global_with_cookies_cross_thread_frees_and_fresh_threads() {
    stress_common::run(&GlobalApi, "global");
}
