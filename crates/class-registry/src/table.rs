//! The `[class][size]` table: one slab per lifetime class, each tagging its blocks with the class index.

use crate::LifetimeClass;
use classalloc_slab::{
    AllocError, ClassStats, FreeError, LargeStats, SeedConfig, Slab, SlabConfig, Totals,
};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The most lifetime classes a table holds (checked at compile time against the enum's `COUNT`). Each
/// class costs about 11 KiB of zero-initialised static memory (no resident memory until used).
#[cfg(not(loom))]
pub const MAX_CLASSES: usize = 16;
/// The most lifetime classes a table holds (loom builds: small models).
#[cfg(loom)]
pub const MAX_CLASSES: usize = 2;

/// A slab per lifetime class `C`: two classes never share a block.
///
/// Every block header carries its class index, so [`class_of`](Self::class_of) tells the class of any
/// small pointer without a look-up, and a free sent to the wrong class is refused
/// ([`FreeError::OwnerMismatch`]) instead of corrupting another class's lists.
pub struct ClassTable<C: LifetimeClass, Cfg: SlabConfig = SeedConfig> {
    slabs: [Slab<Cfg>; MAX_CLASSES],
    _class: PhantomData<fn() -> C>,
}

impl<C: LifetimeClass> ClassTable<C, SeedConfig> {
    /// An empty table with the seed's block geometry; nothing is mapped until used.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_config()
    }
}

impl<C: LifetimeClass> Default for ClassTable<C, SeedConfig> {
    fn default() -> Self {
        Self::with_config()
    }
}

impl<C: LifetimeClass, Cfg: SlabConfig> ClassTable<C, Cfg> {
    /// Evaluated by every constructor: a compile error when the enum has more classes than the table.
    const CLASSES_FIT: () = assert!(
        C::COUNT >= 1 && C::COUNT <= MAX_CLASSES,
        "classalloc: a lifetime class enum has 1 to MAX_CLASSES (16) variants"
    );

    /// An empty table with `Cfg`'s block geometry.
    #[cfg(not(loom))]
    pub const fn with_config() -> Self {
        let () = Self::CLASSES_FIT;
        let mut slabs = [const { Slab::<Cfg>::with_config() }; MAX_CLASSES];
        let mut index = 0;
        while index < MAX_CLASSES {
            slabs[index].set_owner(index as u8);
            index += 1;
        }
        Self {
            slabs,
            _class: PhantomData,
        }
    }

    /// An empty table with `Cfg`'s block geometry (loom build: not `const`).
    #[cfg(loom)]
    pub fn with_config() -> Self {
        let () = Self::CLASSES_FIT;
        Self {
            slabs: core::array::from_fn(|index| Slab::<Cfg>::with_config().owned_by(index as u8)),
            _class: PhantomData,
        }
    }

    /// The slab of `class`.
    #[inline(always)]
    pub fn slab(&self, class: C) -> &Slab<Cfg> {
        self.slab_at(class.index())
    }

    /// The slab of the class with index `index` (`0 .. C::COUNT`).
    #[inline(always)]
    pub fn slab_at(&self, index: usize) -> &Slab<Cfg> {
        if index >= C::COUNT {
            class_out_of_range(index, C::COUNT);
        }
        &self.slabs[index]
    }

    /// Allocates for `layout` in `class`; the slice is the usable length.
    #[inline]
    pub fn alloc(&self, class: C, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.slab(class).alloc(layout)
    }

    /// As [`alloc`](Self::alloc), zeroed.
    #[inline]
    pub fn alloc_zeroed(&self, class: C, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.slab(class).alloc_zeroed(layout)
    }

    /// Frees an allocation of `class` made with `layout`.
    ///
    /// # Safety
    /// `ptr` was allocated by this table with `layout` (see `Slab::dealloc`) and is not used afterwards.
    #[inline]
    pub unsafe fn dealloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> Result<(), FreeError> {
        // SAFETY: forwarded contract; a pointer of another class is refused by the owner check.
        unsafe { self.slab(class).dealloc(ptr, layout) }
    }

    /// Resizes an allocation of `class`, staying in that class.
    ///
    /// # Safety
    /// As for `Slab::realloc`, with an allocation of `class`.
    #[inline]
    pub unsafe fn realloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe { self.slab(class).realloc(ptr, layout, new_size) }
    }

    /// The seed's `Malloc` in `class`: `size` bytes aligned to `size.next_power_of_two()` (up to 4096).
    #[inline]
    pub fn malloc(&self, class: C, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.slab(class).malloc(size)
    }

    /// The seed's `Calloc` in `class`.
    #[inline]
    pub fn calloc(&self, class: C, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.slab(class).calloc(size)
    }

    /// The seed's `Free` in `class`.
    ///
    /// # Safety
    /// As for `Slab::free`, with an allocation of `class`.
    #[inline]
    pub unsafe fn free(&self, class: C, ptr: NonNull<u8>, size: usize) -> Result<(), FreeError> {
        // SAFETY: forwarded contract.
        unsafe { self.slab(class).free(ptr, size) }
    }

    /// The seed's `Remalloc` in `class`.
    ///
    /// # Safety
    /// As for `Slab::remalloc`, with an allocation of `class`.
    pub unsafe fn remalloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe { self.slab(class).remalloc(ptr, old_size, new_size) }
    }

    /// The seed's `Recalloc` in `class`.
    ///
    /// # Safety
    /// As for `Slab::recalloc`, with an allocation of `class`.
    pub unsafe fn recalloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe { self.slab(class).recalloc(ptr, old_size, new_size) }
    }

    /// The index of the class that allocated `ptr` with `layout`: read from the block header for small
    /// allocations, looked up in each class's registry for large ones. `None` if no class owns it.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this table made with `layout`.
    pub unsafe fn class_of(&self, ptr: NonNull<u8>, layout: Layout) -> Option<usize> {
        // SAFETY: forwarded contract; every slab of the table shares the geometry, so any reads the header.
        match unsafe { self.slabs[0].owner_of(ptr, layout) } {
            Some(owner) => Some(owner as usize).filter(|&index| index < C::COUNT),
            None => (0..C::COUNT).find(|&index| self.slabs[index].owns_large(ptr)),
        }
    }

    /// Returns all memory of `class` to the OS at once: every block and large allocation, live or not.
    ///
    /// # Safety
    /// No other thread allocates or frees in `class` during the call, and no allocation of `class` made
    /// before it is used or freed afterwards.
    pub unsafe fn release(&self, class: C) {
        // SAFETY: forwarded contract.
        unsafe { self.slab(class).release() }
    }

    /// The counters of every size class of `class`.
    pub fn size_stats(&self, class: C) -> impl Iterator<Item = ClassStats> + '_ {
        self.slab(class).stats()
    }

    /// Totals of `class`.
    pub fn totals(&self, class: C) -> Totals {
        self.slab(class).totals()
    }

    /// Totals of the class with index `index`.
    pub fn totals_at(&self, index: usize) -> Totals {
        self.slab_at(index).totals()
    }

    /// The large allocations of the class with index `index`.
    pub fn large_stats_at(&self, index: usize) -> LargeStats {
        self.slab_at(index).large_stats()
    }
}

#[cold]
#[inline(never)]
fn class_out_of_range(index: usize, count: usize) -> ! {
    classalloc_slab::fatal::abort_with(format_args!(
        "lifetime class index {index} is not below the enum's COUNT {count}: variants must keep their \
         default discriminants"
    ))
}
