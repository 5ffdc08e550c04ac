//! Sizes above the slab classes (or alignments above the slab's 4096): whole pages from the OS, with no
//! header. A registry of live large allocations (address -> mapped length, outside the allocations) lets
//! a free check its pointer and size, lets a whole slab be released, and tells which slab owns a pointer.

use crate::addr_table::AddrTable as Table;
use crate::error::{AllocError, FreeError};
use crate::os::{self, page_round, PAGE_SIZE};
use crate::stats::LargeStats;
use crate::sync::{
    acquire, loom_const_fn, new_lock, read, write, AtomicUsize, Lock, Ordering, UnsafeCell,
};
use core::ptr::NonNull;

/// The large path of one slab: its registry and counters.
pub(crate) struct Large {
    lock: Lock,
    table: UnsafeCell<Table>,
    live_bytes: AtomicUsize,
}

// SAFETY: the table's raw pointer is only used under `lock`.
unsafe impl Send for Large {}
// SAFETY: as above.
unsafe impl Sync for Large {}

impl Large {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self {
                lock: new_lock(),
                table: UnsafeCell::new(Table::EMPTY),
                live_bytes: AtomicUsize::new(0),
            }
        }
    }

    pub(crate) fn stats(&self) -> LargeStats {
        let _guard = acquire(&self.lock);
        // SAFETY: the lock guards the table.
        let table = unsafe { read(&self.table) };
        let mut mapped_bytes = 0;
        for index in 0..table.capacity {
            // SAFETY: index < capacity of the mapped array.
            mapped_bytes += unsafe { (*table.entry(index)).value };
        }
        LargeStats {
            live_objects: table.len,
            live_bytes: self.live_bytes.load(Ordering::Relaxed),
            mapped_bytes,
        }
    }

    /// Runs `f` on the table under the lock.
    fn with_table<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        let _guard = acquire(&self.lock);
        // SAFETY: the lock guards the table.
        unsafe {
            let mut table = read(&self.table);
            let result = f(&mut table);
            write(&self.table, table);
            result
        }
    }

    /// Whether `ptr` is a live large allocation of this slab.
    pub(crate) fn owns(&self, ptr: NonNull<u8>) -> bool {
        self.with_table(|table| table.find(ptr.as_ptr() as usize).is_some())
    }

    /// Maps `size` bytes aligned to `align` (a power of two); the slice is the whole pages mapped.
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<NonNull<[u8]>, AllocError> {
        let len = page_round(size).ok_or(AllocError::TooLarge)?;
        let ptr = os::map_aligned(len, align.max(PAGE_SIZE)).ok_or(AllocError::OutOfMemory)?;
        if !self.with_table(|table| table.insert(ptr.as_ptr() as usize, len)) {
            // SAFETY: just mapped, never handed out.
            unsafe { os::unmap(ptr, len) };
            return Err(AllocError::OutOfMemory);
        }
        self.live_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(NonNull::slice_from_raw_parts(ptr, len))
    }

    /// Unmaps an allocation of `size` bytes, after checking that it is one.
    ///
    /// # Safety
    /// If `ptr` is a live large allocation of this slab, it is not used afterwards.
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, size: usize) -> Result<(), FreeError> {
        if ptr.as_ptr() as usize % PAGE_SIZE != 0 {
            return Err(FreeError::Misaligned);
        }
        let len = page_round(size).ok_or(FreeError::ClassMismatch)?;
        self.with_table(|table| match table.find(ptr.as_ptr() as usize) {
            None => Err(FreeError::NotASlot),
            Some(index) => {
                // SAFETY: index was just found in the mapped array.
                if unsafe { (*table.entry(index)).value } != len {
                    return Err(FreeError::ClassMismatch);
                }
                table.remove_at(index);
                Ok(())
            }
        })?;
        // SAFETY: the registry held this mapping of `len` bytes; the caller no longer uses it.
        unsafe { os::unmap(ptr, len) };
        self.live_bytes.fetch_sub(size, Ordering::Relaxed);
        Ok(())
    }

    /// Resizes a large allocation, in place where the OS allows, else by moving its pages (mremap: no copy);
    /// the slice is the whole pages now mapped. Alignments above a page can only be kept in place; the
    /// caller copies otherwise.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this path of `old_size` bytes, aligned to `align`.
    pub(crate) unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
        align: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old_len = page_round(old_size).ok_or(AllocError::TooLarge)?;
        let new_len = page_round(new_size).ok_or(AllocError::TooLarge)?;
        self.with_table(|table| {
            let index = table
                .find(ptr.as_ptr() as usize)
                .ok_or(AllocError::NotAllocated(FreeError::NotASlot))?;
            // SAFETY: index was just found in the mapped array.
            if unsafe { (*table.entry(index)).value } != old_len {
                return Err(AllocError::NotAllocated(FreeError::ClassMismatch));
            }
            let moved = if old_len == new_len {
                ptr
            } else {
                // Keep room for the new entry before moving anything.
                if (table.len + 1) * 2 > table.capacity && !table.grow() {
                    return Err(AllocError::OutOfMemory);
                }
                let index = table.find(ptr.as_ptr() as usize).unwrap_or(index);
                let may_move = align <= PAGE_SIZE;
                // SAFETY: the registry holds this mapping of old_len bytes.
                let moved = unsafe { os::remap(ptr, old_len, new_len, may_move) }
                    .ok_or(AllocError::OutOfMemory)?;
                table.remove_at(index);
                let inserted = table.insert(moved.as_ptr() as usize, new_len);
                debug_assert!(inserted, "room was made above");
                moved
            };
            self.live_bytes
                .fetch_add(new_size.wrapping_sub(old_size), Ordering::Relaxed);
            Ok(NonNull::slice_from_raw_parts(moved, new_len))
        })
    }

    /// Unmaps every large allocation and the registry.
    ///
    /// # Safety
    /// None of the allocations is used during or after the call.
    pub(crate) unsafe fn release_all(&self) {
        let table = self.with_table(|table| core::mem::replace(table, Table::EMPTY));
        for index in 0..table.capacity {
            // SAFETY: index < capacity of the mapped array, which nobody else references now.
            let entry = unsafe { *table.entry(index) };
            if let Some(addr) = NonNull::new(entry.addr as *mut u8) {
                // SAFETY: per the contract the caller gave up every allocation.
                unsafe { os::unmap(addr, entry.value) };
            }
        }
        table.unmap();
        self.live_bytes.store(0, Ordering::Relaxed);
    }
}

impl Drop for Large {
    /// Frees the registry; live allocations stay mapped (their owners may still use them).
    fn drop(&mut self) {
        self.with_table(|table| core::mem::replace(table, Table::EMPTY))
            .unmap();
    }
}
