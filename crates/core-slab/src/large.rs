//! Sizes above the slab classes (or alignments above a page's worth of slab alignment): whole pages from
//! the OS, with no header. The caller's size (sized free) says how much to unmap.

use crate::error::{AllocError, FreeError};
use crate::os::{self, page_round, PAGE_SIZE};
use crate::stats::LargeStats;
use crate::sync::{AtomicUsize, Ordering};
use core::ptr::NonNull;

/// Counters of the large path.
#[derive(Debug)]
pub(crate) struct LargeCounters {
    live_objects: AtomicUsize,
    live_bytes: AtomicUsize,
    mapped_bytes: AtomicUsize,
}

impl LargeCounters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            live_objects: AtomicUsize::new(0),
            live_bytes: AtomicUsize::new(0),
            mapped_bytes: AtomicUsize::new(0),
        }
    }
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            live_objects: AtomicUsize::new(0),
            live_bytes: AtomicUsize::new(0),
            mapped_bytes: AtomicUsize::new(0),
        }
    }

    pub(crate) fn stats(&self) -> LargeStats {
        LargeStats {
            live_objects: self.live_objects.load(Ordering::Relaxed),
            live_bytes: self.live_bytes.load(Ordering::Relaxed),
            mapped_bytes: self.mapped_bytes.load(Ordering::Relaxed),
        }
    }

    /// Maps `size` bytes aligned to `align` (a power of two).
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let len = page_round(size).ok_or(AllocError::TooLarge)?;
        let ptr = os::map_aligned(len, align.max(PAGE_SIZE)).ok_or(AllocError::OutOfMemory)?;
        self.live_objects.fetch_add(1, Ordering::Relaxed);
        self.live_bytes.fetch_add(size, Ordering::Relaxed);
        self.mapped_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(ptr)
    }

    /// Unmaps an allocation of `size` bytes.
    ///
    /// # Safety
    /// `ptr` was returned by `alloc` or `resize` of this path for `size` bytes and is not used afterwards.
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, size: usize) -> Result<(), FreeError> {
        if ptr.as_ptr() as usize % PAGE_SIZE != 0 {
            return Err(FreeError::Misaligned);
        }
        let len = page_round(size).ok_or(FreeError::NotASlot)?;
        // SAFETY: per the contract the pages are ours and unused from now on.
        unsafe { os::unmap(ptr, len) };
        self.live_objects.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes.fetch_sub(size, Ordering::Relaxed);
        self.mapped_bytes.fetch_sub(len, Ordering::Relaxed);
        Ok(())
    }

    /// Resizes a large allocation, in place where the OS allows, else by moving its pages (mremap: no copy).
    /// Alignments above a page can only be kept in place; otherwise the caller copies.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this path of `old_size` bytes, aligned to `align`.
    pub(crate) unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
        align: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let old_len = page_round(old_size).ok_or(AllocError::TooLarge)?;
        let new_len = page_round(new_size).ok_or(AllocError::TooLarge)?;
        let moved = if old_len == new_len {
            ptr
        } else {
            let may_move = align <= PAGE_SIZE;
            // SAFETY: per the contract the mapping is ours and of old_len bytes.
            unsafe { os::remap(ptr, old_len, new_len, may_move) }.ok_or(AllocError::OutOfMemory)?
        };
        self.live_bytes.fetch_add(new_size, Ordering::Relaxed);
        self.live_bytes.fetch_sub(old_size, Ordering::Relaxed);
        self.mapped_bytes.fetch_add(new_len, Ordering::Relaxed);
        self.mapped_bytes.fetch_sub(old_len, Ordering::Relaxed);
        Ok(moved)
    }
}
