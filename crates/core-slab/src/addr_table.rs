//! An address-keyed hash table in memory taken from the page source (the allocator cannot allocate its own
//! bookkeeping): the large path's registry of live allocations and checked mode's block registry.

use crate::os::PAGE_SIZE;
use crate::pages::{self, Need, Return};
use core::ptr::{self, NonNull};

/// An entry keyed by an address; the all-zero entry (address 0) marks an empty place, since nothing
/// starts at address 0.
pub(crate) trait Keyed: Copy {
    /// The empty entry: all zero, so that zeroed memory is an empty table.
    const EMPTY: Self;
    /// The address the entry is found by.
    fn addr(&self) -> usize;
}

/// An open-addressing hash table (linear probing, backward-shift deletion) of entries keyed by address;
/// not locked itself (its users hold a lock around it).
pub(crate) struct AddrTable<E> {
    entries: *mut E,
    pub(crate) capacity: usize,
    pub(crate) len: usize,
}

impl<E> Clone for AddrTable<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for AddrTable<E> {}

impl<E: Keyed> AddrTable<E> {
    pub(crate) const EMPTY: AddrTable<E> = AddrTable {
        entries: ptr::null_mut(),
        capacity: 0,
        len: 0,
    };
    const MIN_CAPACITY: usize = PAGE_SIZE / core::mem::size_of::<E>();

    #[inline]
    fn home(&self, addr: usize) -> usize {
        // Fibonacci hashing of the page number; capacity is a power of two.
        let hash = ((addr >> 12) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (hash >> (64 - self.capacity.trailing_zeros())) as usize
    }

    /// # Safety
    /// `index < capacity` and the table is mapped.
    pub(crate) unsafe fn entry(&self, index: usize) -> *mut E {
        // SAFETY: per the contract the index is within the mapped array.
        unsafe { self.entries.add(index) }
    }

    pub(crate) fn find(&self, addr: usize) -> Option<usize> {
        if self.capacity == 0 {
            return None;
        }
        let mask = self.capacity - 1;
        let mut index = self.home(addr);
        loop {
            // SAFETY: index is masked to the capacity of the mapped array.
            let entry = unsafe { *self.entry(index) };
            if entry.addr() == addr {
                return Some(index);
            }
            if entry.addr() == 0 {
                return None;
            }
            index = (index + 1) & mask;
        }
    }

    /// Inserts a new entry; false when the table could not grow (the OS refused memory).
    pub(crate) fn insert(&mut self, new: E) -> bool {
        if (self.len + 1) * 2 > self.capacity && !self.grow() {
            return false;
        }
        let mask = self.capacity - 1;
        let mut index = self.home(new.addr());
        // SAFETY: indices are masked to the capacity; the load factor stays below 1/2, so an empty
        // entry exists.
        unsafe {
            while (*self.entry(index)).addr() != 0 {
                index = (index + 1) & mask;
            }
            *self.entry(index) = new;
        }
        self.len += 1;
        true
    }

    pub(crate) fn remove_at(&mut self, mut hole: usize) {
        let mask = self.capacity - 1;
        // SAFETY: all indices are masked to the capacity of the mapped array.
        unsafe {
            *self.entry(hole) = E::EMPTY;
            // Backward shift: pull later entries of the probe run into the hole when their home allows.
            let mut index = (hole + 1) & mask;
            loop {
                let entry = *self.entry(index);
                if entry.addr() == 0 {
                    break;
                }
                let home = self.home(entry.addr());
                let distance_home = index.wrapping_sub(home) & mask;
                let distance_hole = index.wrapping_sub(hole) & mask;
                if distance_home >= distance_hole {
                    *self.entry(hole) = entry;
                    *self.entry(index) = E::EMPTY;
                    hole = index;
                }
                index = (index + 1) & mask;
            }
        }
        self.len -= 1;
    }

    /// Room for twice the entries; false when the source refused memory (the table is unchanged).
    pub(crate) fn grow(&mut self) -> bool {
        let capacity = (self.capacity * 2).max(Self::MIN_CAPACITY);
        let bytes = capacity * core::mem::size_of::<E>();
        // From the page source (zeroed: an empty entry is all zero), like the memory it indexes.
        let Some(grant) = pages::source().alloc(bytes.trailing_zeros(), Need::Zeroed) else {
            return false;
        };
        let old = *self;
        *self = AddrTable {
            entries: grant.ptr.as_ptr().cast(),
            capacity,
            len: 0,
        };
        for index in 0..old.capacity {
            // SAFETY: index < old.capacity of the old mapped array.
            let entry = unsafe { *old.entry(index) };
            if entry.addr() != 0 {
                self.insert(entry);
            }
        }
        old.unmap();
        true
    }

    /// Gives the table's memory back to the page source.
    pub(crate) fn unmap(self) {
        if let Some(entries) = NonNull::new(self.entries) {
            let bytes = self.capacity * core::mem::size_of::<E>();
            // SAFETY: the array came from the source in `grow` with this size and is no longer
            // referenced.
            unsafe {
                pages::source().free(entries.cast(), bytes.trailing_zeros(), bytes, Return::Lazy)
            };
        }
    }
}
