//! AddressSanitizer annotations: under `--cfg classalloc_asan` (set by `cargo xtask asan`) the bytes of free blocks
//! are poisoned, so a use after free or a write through a stale pointer into the region is reported; otherwise these
//! functions do nothing.
//!
//! Only the two link words at the start of a free block stay addressable: the free lists live there.

#[cfg(classalloc_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const core::ffi::c_void, size: usize);
    fn __asan_unpoison_memory_region(addr: *const core::ffi::c_void, size: usize);
}

/// Marks `len` bytes at `addr` as not addressable.
#[inline(always)]
pub fn poison(addr: usize, len: usize) {
    #[cfg(classalloc_asan)]
    // SAFETY: the ASan runtime only updates its shadow memory for the range; it does not touch the bytes.
    unsafe {
        __asan_poison_memory_region(addr as *const core::ffi::c_void, len)
    };
    #[cfg(not(classalloc_asan))]
    let _ = (addr, len);
}

/// Marks `len` bytes at `addr` as addressable again.
#[inline(always)]
pub fn unpoison(addr: usize, len: usize) {
    #[cfg(classalloc_asan)]
    // SAFETY: the ASan runtime only updates its shadow memory for the range; it does not touch the bytes.
    unsafe {
        __asan_unpoison_memory_region(addr as *const core::ffi::c_void, len)
    };
    #[cfg(not(classalloc_asan))]
    let _ = (addr, len);
}
