//! Sizes above the slab classes (or alignments above the slab's 4096), with no header.
//!
//! - **Medium** (a block of at most [`MAX_MEDIUM_SIZE`], 4 MiB): a naturally aligned power-of-two block from
//!   the page source (`pages.rs`), so every alignment up to the block size comes for free and no system
//!   call is made while the source has room. The caller gets the whole pages it asked for; the rest of the
//!   block is never touched, so it costs address space, not memory. Freed blocks go back with hysteresis.
//! - **Huge** (anything larger): whole pages mapped on their own, resized with `mremap`.
//!
//! 4 MiB is where the buddy stops paying: above it the power-of-two rounding costs up to as much address
//! space again, the `mmap` a huge allocation costs is small beside the faults of touching a thousand pages,
//! and `mremap` resizes without copying where a block would be copied.
//!
//! A registry of live allocations per slab (address -> length, in memory mapped for it, outside the
//! allocations) checks each free's pointer and size, lets a whole slab be released, and tells which slab
//! owns a pointer; medium blocks belong to the slab whose registry holds them, although every slab shares
//! the page source.

use crate::addr_table::{AddrTable, Keyed};
use crate::error::{AllocError, FreeError};
use crate::os::{self, page_round, PAGE_SIZE};
use crate::pages::{self, Need, Release, Return};
use crate::stats::LargeStats;
use crate::sync::{
    acquire, loom_const_fn, new_lock, read, write, AtomicUsize, Lock, Ordering, UnsafeCell,
};
use core::ptr::NonNull;

/// The order of the largest medium block.
const MEDIUM_MAX_ORDER: u32 = 22;

/// The largest block a medium allocation takes from the page source (size rounded up to pages, then to a
/// power of two, at least the alignment); larger requests are mapped on their own.
pub const MAX_MEDIUM_SIZE: usize = 1 << MEDIUM_MAX_ORDER;

/// The order of the page-source block that serves `size` bytes aligned to `align` (a power of two), or
/// `None` when the request is huge.
#[inline]
pub(crate) const fn medium_order(size: usize, align: usize) -> Option<u32> {
    if size > MAX_MEDIUM_SIZE || align > MAX_MEDIUM_SIZE {
        return None;
    }
    let len = (size + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let span = if len > align { len } else { align };
    let order = span.next_power_of_two().trailing_zeros();
    Some(if order < pages::MIN_ORDER {
        pages::MIN_ORDER
    } else {
        order
    })
}

/// Which kind of allocation a free or resize expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A page-source block of `2^order` bytes.
    Medium(u32),
    /// A mapping of its own.
    Huge,
}

impl Kind {
    /// The block size an entry of this kind records (0: a mapping of its own).
    const fn block(self) -> usize {
        match self {
            Kind::Medium(order) => 1 << order,
            Kind::Huge => 0,
        }
    }
}

/// The registry of one slab's live large allocations.
type Table = AddrTable<Entry>;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// 0 marks an empty entry (no mapping starts at address 0).
    addr: usize,
    /// The whole pages handed out (the usable length).
    len: usize,
    /// The page-source block holding a medium allocation, 0 for a huge one (its mapping is `len`).
    block: usize,
    /// Medium: bytes from the start that may have been written (the most pages ever handed out, and what
    /// the block held when the source handed it out), so a free knows what to purge.
    touched: usize,
}

impl Entry {
    const EMPTY: Entry = Entry {
        addr: 0,
        len: 0,
        block: 0,
        touched: 0,
    };

    /// Bytes of address space the allocation takes.
    const fn mapped(&self) -> usize {
        if self.block != 0 {
            self.block
        } else {
            self.len
        }
    }
}

impl Keyed for Entry {
    const EMPTY: Entry = Entry::EMPTY;
    fn addr(&self) -> usize {
        self.addr
    }
}

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
            mapped_bytes += unsafe { (*table.entry(index)).mapped() };
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

    /// Takes a block of `2^order` bytes from the page source for `size` bytes (a medium request); the
    /// slice is the whole pages asked for, and the flag says whether they are known to be zero (always
    /// when `zeroed`).
    pub(crate) fn alloc_medium(
        &self,
        order: u32,
        size: usize,
        zeroed: bool,
    ) -> Result<(NonNull<[u8]>, bool), AllocError> {
        let len = page_round(size).ok_or(AllocError::TooLarge)?;
        let need = if zeroed { Need::Zeroed } else { Need::Any };
        let grant = pages::source()
            .alloc(order, need)
            .ok_or(AllocError::OutOfMemory)?;
        let entry = Entry {
            addr: grant.ptr.as_ptr() as usize,
            len,
            block: 1 << order,
            touched: len.max(grant.dirty),
        };
        if !self.with_table(|table| table.insert(entry)) {
            // SAFETY: just handed out by the source, never given to anyone.
            unsafe { pages::source().free(grant.ptr, order, grant.dirty, Return::Lazy) };
            return Err(AllocError::OutOfMemory);
        }
        self.live_bytes.fetch_add(size, Ordering::Relaxed);
        Ok((NonNull::slice_from_raw_parts(grant.ptr, len), grant.zeroed))
    }

    /// Maps `size` bytes aligned to `align` (a power of two) on their own (a huge request); the slice is the
    /// whole pages mapped.
    pub(crate) fn alloc_huge(
        &self,
        size: usize,
        align: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let len = page_round(size).ok_or(AllocError::TooLarge)?;
        let ptr = os::map_aligned(len, align.max(PAGE_SIZE)).ok_or(AllocError::OutOfMemory)?;
        let entry = Entry {
            addr: ptr.as_ptr() as usize,
            len,
            block: 0,
            touched: 0,
        };
        if !self.with_table(|table| table.insert(entry)) {
            // SAFETY: just mapped, never handed out.
            unsafe { os::unmap(ptr, len) };
            return Err(AllocError::OutOfMemory);
        }
        self.live_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(NonNull::slice_from_raw_parts(ptr, len))
    }

    /// Frees an allocation of `size` bytes of `kind`, after checking that it is one: a pointer this slab
    /// did not hand out (interior, foreign, already freed) or a size or alignment of another length or
    /// block is refused and changes nothing.
    ///
    /// # Safety
    /// If `ptr` is a live allocation of this slab, it is not used afterwards.
    pub(crate) unsafe fn free(
        &self,
        ptr: NonNull<u8>,
        size: usize,
        kind: Kind,
    ) -> Result<(), FreeError> {
        if ptr.as_ptr() as usize % PAGE_SIZE != 0 {
            return Err(FreeError::Misaligned);
        }
        let len = page_round(size).ok_or(FreeError::ClassMismatch)?;
        let undo = self.with_table(|table| {
            let index = table
                .find(ptr.as_ptr() as usize)
                .ok_or(FreeError::NotASlot)?;
            // SAFETY: index was just found in the mapped array.
            let entry = unsafe { *table.entry(index) };
            if entry.len != len || entry.block != kind.block() {
                return Err(FreeError::ClassMismatch);
            }
            let undo = match kind {
                // The source checks the block too (order, start) before anything changes.
                // SAFETY: the registry says the block is this slab's live allocation; the registry's lock
                // keeps any other free of it out until the entry is gone.
                Kind::Medium(order) => Undo::Block(unsafe {
                    pages::source().begin_free(ptr, order, entry.touched, Return::Lazy)
                }?),
                Kind::Huge => Undo::Mapping(len),
            };
            table.remove_at(index);
            Ok(undo)
        })?;
        // SAFETY: the allocation left the registry above; the caller no longer uses it.
        unsafe { undo.run(ptr) };
        self.live_bytes.fetch_sub(size, Ordering::Relaxed);
        Ok(())
    }

    /// Resizes a medium allocation within its block (the caller checked that `new_size` needs a block of
    /// the same order): the pointer stays, the slice is the whole pages now handed out.
    ///
    /// # Safety
    /// `ptr` is a live medium allocation of this slab of `old_size` bytes in a block of `2^order` bytes.
    pub(crate) unsafe fn resize_medium(
        &self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
        order: u32,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old_len = page_round(old_size).ok_or(AllocError::TooLarge)?;
        let new_len = page_round(new_size).ok_or(AllocError::TooLarge)?;
        debug_assert!(new_len <= 1 << order);
        self.with_table(|table| {
            let index = table
                .find(ptr.as_ptr() as usize)
                .ok_or(AllocError::NotAllocated(FreeError::NotASlot))?;
            // SAFETY: index was just found in the mapped array.
            let entry = unsafe { &mut *table.entry(index) };
            if entry.len != old_len || entry.block != 1 << order {
                return Err(AllocError::NotAllocated(FreeError::ClassMismatch));
            }
            entry.len = new_len;
            entry.touched = entry.touched.max(new_len);
            Ok(())
        })?;
        self.live_bytes
            .fetch_add(new_size.wrapping_sub(old_size), Ordering::Relaxed);
        Ok(NonNull::slice_from_raw_parts(ptr, new_len))
    }

    /// Resizes a huge allocation, in place where the OS allows, else by moving its pages (mremap: no copy);
    /// the slice is the whole pages now mapped. Alignments above a page can only be kept in place; the
    /// caller copies otherwise.
    ///
    /// # Safety
    /// `ptr` is a live huge allocation of `old_size` bytes, aligned to `align`.
    pub(crate) unsafe fn resize_huge(
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
            let entry = unsafe { *table.entry(index) };
            if entry.len != old_len || entry.block != 0 {
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
                let inserted = table.insert(Entry {
                    addr: moved.as_ptr() as usize,
                    len: new_len,
                    block: 0,
                    touched: 0,
                });
                debug_assert!(inserted, "room was made above");
                moved
            };
            self.live_bytes
                .fetch_add(new_size.wrapping_sub(old_size), Ordering::Relaxed);
            Ok(NonNull::slice_from_raw_parts(moved, new_len))
        })
    }

    /// Gives back every allocation (medium blocks to the page source, purged at once; huge mappings to the
    /// OS) and unmaps the registry.
    ///
    /// # Safety
    /// None of the allocations is used during or after the call.
    pub(crate) unsafe fn release_all(&self) {
        let table = self.with_table(|table| core::mem::replace(table, Table::EMPTY));
        for index in 0..table.capacity {
            // SAFETY: index < capacity of the mapped array, which nobody else references now.
            let entry = unsafe { *table.entry(index) };
            let Some(addr) = NonNull::new(entry.addr as *mut u8) else {
                continue;
            };
            // SAFETY: per the contract the caller gave up every allocation; each entry is a live block of
            // the page source or a mapping of its own.
            unsafe {
                if entry.block != 0 {
                    let order = entry.block.trailing_zeros();
                    pages::source().free(addr, order, entry.touched, Return::Now);
                } else {
                    os::unmap(addr, entry.len);
                }
            }
        }
        table.unmap();
        self.live_bytes.store(0, Ordering::Relaxed);
    }
}

/// What is left of a free once its allocation is out of the registry, done outside the registry's lock.
enum Undo {
    /// A medium block: the page source's second half of the free.
    Block(Release),
    /// A huge mapping of this many bytes.
    Mapping(usize),
}

impl Undo {
    /// # Safety
    /// `ptr` is the allocation this was made for, out of the registry and no longer used.
    unsafe fn run(self, ptr: NonNull<u8>) {
        match self {
            Undo::Block(release) => pages::source().finish(release),
            // SAFETY: per the contract the mapping is ours and unused.
            Undo::Mapping(len) => unsafe { os::unmap(ptr, len) },
        }
    }
}

impl Drop for Large {
    /// Frees the registry; live allocations stay mapped (their owners may still use them).
    fn drop(&mut self) {
        self.with_table(|table| core::mem::replace(table, Table::EMPTY))
            .unmap();
    }
}
