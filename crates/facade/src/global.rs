//! `Global`: the slab as Rust's global allocator.

use crate::front::with_global_cache;
use crate::{abort_on_misuse, AllocError, SLAB};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// classalloc as the global allocator:
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: classalloc::Global = classalloc::Global::new();
///
/// let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
/// assert_eq!(words[999], "999");
/// ```
///
/// `Layout`s use fine size classes (a 24-byte layout costs 24 bytes) and every alignment is honoured. A
/// `dealloc` or `realloc` that the allocator can tell does not match an allocation aborts the process with a
/// message naming the misuse rather than corrupting memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Global;

impl Global {
    /// The handle; all state lives in one process-wide slab.
    pub const fn new() -> Self {
        Global
    }
}

// SAFETY: the slab returns blocks that fit the layout (size and alignment), never hands out a live block
// twice, and returns null on every failure; dealloc/realloc forward the caller's guarantees.
unsafe impl GlobalAlloc for Global {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        with_global_cache(|cache| SLAB.alloc_cached_ptr(cache, layout))
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let block = with_global_cache(|cache| SLAB.alloc_zeroed_cached(cache, layout));
        match block {
            Ok(block) => block.as_ptr().cast(),
            Err(_) => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(nonnull) = NonNull::new(ptr) else {
            return;
        };
        // SAFETY: GlobalAlloc's contract: ptr was allocated by this allocator with `layout`.
        let freed =
            unsafe { with_global_cache(|cache| SLAB.dealloc_cached(cache, nonnull, layout)) };
        if let Err(error) = freed {
            abort_on_misuse(error, ptr, layout.size());
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(nonnull) = NonNull::new(ptr) else {
            return ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's contract: ptr was allocated with `layout`, new_size is valid for its align.
        let block = unsafe {
            with_global_cache(|cache| SLAB.realloc_cached(cache, nonnull, layout, new_size))
        };
        match block {
            Ok(block) => block.as_ptr().cast(),
            Err(AllocError::NotAllocated(error)) => abort_on_misuse(error, ptr, layout.size()),
            Err(_) => ptr::null_mut(),
        }
    }
}
