//! The workloads, one per file. Each takes its allocator as `&A` with `A: GlobalAlloc`.

use std::alloc::{GlobalAlloc, Layout};

pub mod btree;
pub mod churn;
pub mod json;
pub mod larson;
pub mod lifetimes;
pub mod locality;
pub mod mixed;
pub mod mstress;
pub mod ratio;
pub mod seed;
pub mod xmalloc;

/// The layout the suite uses for an object of `size` bytes: the alignment a typical Rust type of
/// that size has, the largest power of two dividing the size, at most 8.
pub fn layout_for(size: usize) -> Layout {
    let align = (1usize << size.trailing_zeros().min(3)).max(1);
    Layout::from_size_align(size, align).expect("benchmark sizes are small and non-zero")
}

/// Allocates `layout` from `alloc`, aborting the benchmark when the allocator returns null: a run
/// that silently skipped allocations would report meaningless numbers.
///
/// # Safety
/// `layout` must have a non-zero size (the `GlobalAlloc::alloc` precondition).
#[inline]
pub unsafe fn alloc_or_die<A: GlobalAlloc + ?Sized>(alloc: &A, layout: Layout) -> *mut u8 {
    // SAFETY: the caller guarantees a non-zero size.
    let ptr = unsafe { alloc.alloc(layout) };
    if ptr.is_null() {
        out_of_memory(layout);
    }
    ptr
}

#[cold]
#[inline(never)]
fn out_of_memory(layout: Layout) -> ! {
    eprintln!("allocator returned null for {layout:?}");
    std::process::abort();
}

/// Writes one byte into every page the object `[ptr, ptr + size)` spans, so that all of it is resident.
///
/// # Safety
/// `ptr` must be valid for writes of `size` bytes, and `size` must be non-zero.
#[inline]
pub unsafe fn touch_pages(ptr: *mut u8, size: usize) {
    let mut offset = 0;
    while offset < size {
        // SAFETY: offset < size and the caller guarantees `size` writable bytes at `ptr`.
        unsafe { ptr.add(offset).write_volatile(1) };
        offset += 4096;
    }
    // SAFETY: size >= 1, so size - 1 is inside the object.
    unsafe { ptr.add(size - 1).write_volatile(1) };
}

/// Joins every thread explicitly. A scope's implicit wait only waits for the closures to return,
/// not for the threads to exit, and an allocator's thread-exit hook still running while the process
/// exits can crash (rpmalloc's does: its `pthread_create` wrapper is linked into every process that
/// links rpmalloc, whichever allocator is under test).
pub fn join_all<T>(handles: Vec<std::thread::ScopedJoinHandle<'_, T>>) {
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
}
