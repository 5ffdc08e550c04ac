//! The seed's five functions, with its contract: the caller passes the size to `free` and `realloc`, and
//! an allocation of `n` bytes is aligned to `n.next_power_of_two()` (at most 4096; larger sizes get whole
//! pages). Errors are null pointers, as in C.

use crate::front::with_global_cache;
use crate::{abort_on_misuse, AllocError, FreeError, SLAB};
use core::ptr::{self, NonNull};

/// Allocates `size` bytes, aligned to `size.next_power_of_two()` up to 4096. Null for size 0, for sizes
/// whose rounding overflows, and when the OS refuses memory.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    with_global_cache(|cache| SLAB.malloc_cached(cache, size))
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// As [`malloc`], zeroed; memory known to be fresh from the OS is not cleared again.
#[inline]
pub fn calloc(size: usize) -> *mut u8 {
    with_global_cache(|cache| SLAB.calloc_cached(cache, size))
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Allocates `size` bytes aligned to `align` (any power of two; above 4096 whole pages are mapped). Null
/// when `align` is not a power of two, for size 0, for sizes whose rounding overflows, and when the OS
/// refuses memory. Free with [`aligned_free`] and the same size and alignment.
#[inline]
pub fn aligned_alloc(size: usize, align: usize) -> *mut u8 {
    SLAB.alloc_aligned(size, align)
        .map_or(ptr::null_mut(), |block| block.as_ptr().cast())
}

/// Frees an allocation of [`aligned_alloc`]. A null `ptr` is ignored; a detected misuse aborts with a
/// message naming it.
///
/// # Safety
/// `ptr` is null or was returned by [`aligned_alloc`] with `size` and `align`, and is not used afterwards.
pub unsafe fn aligned_free(ptr: *mut u8, size: usize, align: usize) {
    let Some(nonnull) = NonNull::new(ptr) else {
        return;
    };
    let result = match classalloc_slab::checked_layout(size, align) {
        // SAFETY: forwarded contract.
        Ok(layout) => unsafe { SLAB.dealloc(nonnull, layout) },
        Err(_) => Err(FreeError::NotASlot),
    };
    if let Err(error) = result {
        abort_on_misuse(error, ptr, size);
    }
}

/// Frees an allocation of `size` bytes. A null `ptr` is ignored. The slot joins this thread's cache
/// without any check (the size gives its class); a free the allocator can tell is wrong (size 0, a
/// pointer that is not an allocated slot of `size`'s class, a block with nothing live) aborts the process
/// with a message naming it, at once or when the cache gives the slot back. Use [`try_free`] to have the
/// free checked at once and get the error instead.
///
/// # Safety
/// `ptr` is null or was returned by [`malloc`], [`calloc`], [`realloc`] or [`recalloc`] for `size` bytes
/// and is not used afterwards.
#[inline]
pub unsafe fn free(ptr: *mut u8, size: usize) {
    let Some(nonnull) = NonNull::new(ptr) else {
        return;
    };
    // SAFETY: forwarded contract.
    let freed = unsafe { with_global_cache(|cache| SLAB.free_cached(cache, nonnull, size)) };
    if let Err(error) = freed {
        abort_on_misuse(error, ptr, size);
    }
}

/// As [`free`], checked at once against the block the pointer lies in (it bypasses the thread cache),
/// returning what was wrong instead of aborting; a refused free changes nothing.
///
/// # Safety
/// As for [`free`].
#[inline]
pub unsafe fn try_free(ptr: *mut u8, size: usize) -> Result<(), FreeError> {
    match NonNull::new(ptr) {
        // SAFETY: forwarded contract.
        Some(ptr) => unsafe { SLAB.free(ptr, size) },
        None => Ok(()),
    }
}

/// Resizes an allocation from `old_size` to `new_size` bytes (the seed's `Remalloc`): the same pointer
/// within a size class, an OS remap for large sizes, else a copy of `min(old, new)` bytes. A null `ptr`
/// allocates. Null on failure, leaving the old allocation as it was; a `new_size` of 0 is a failure (the
/// allocation stays and is still freed with `old_size`), not a free as C's `realloc(p, 0)` may be.
///
/// # Safety
/// As for [`free`] with `old_size`; after a non-null return the old pointer is not used (unless equal).
pub unsafe fn realloc(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    let Some(old) = NonNull::new(ptr) else {
        return malloc(new_size);
    };
    // SAFETY: forwarded contract.
    let resized =
        unsafe { with_global_cache(|cache| SLAB.remalloc_cached(cache, old, old_size, new_size)) };
    match resized {
        Ok(new) => new.as_ptr(),
        Err(AllocError::NotAllocated(error)) => abort_on_misuse(error, ptr, old_size),
        Err(_) => ptr::null_mut(),
    }
}

/// As [`realloc`], zeroing the grown tail `old_size .. new_size`. A null `ptr` allocates zeroed memory.
///
/// # Safety
/// As for [`realloc`].
pub unsafe fn recalloc(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    let Some(old) = NonNull::new(ptr) else {
        return calloc(new_size);
    };
    // SAFETY: forwarded contract.
    let resized =
        unsafe { with_global_cache(|cache| SLAB.remalloc_cached(cache, old, old_size, new_size)) };
    match resized {
        Ok(new) => {
            if new_size > old_size {
                // SAFETY: the allocation holds new_size bytes.
                unsafe {
                    new.as_ptr()
                        .add(old_size)
                        .write_bytes(0, new_size - old_size)
                };
            }
            new.as_ptr()
        }
        Err(AllocError::NotAllocated(error)) => abort_on_misuse(error, ptr, old_size),
        Err(_) => ptr::null_mut(),
    }
}
