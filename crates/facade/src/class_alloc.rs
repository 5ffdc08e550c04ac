//! `ClassAlloc<C>`: lifetime classes as an allocator: explicit-class calls, typed handles, the global
//! allocator with scopes, release, statistics.

use crate::front::{for_each_existing_class_cache, with_class_cache};
use crate::names::ClassNames;
use crate::scope;
use crate::{abort_on_misuse, AllocError, ClassStats, FreeError, LargeStats, Totals};
use classalloc_registry::{ClassTable, LifetimeClass};
use classalloc_slab::{Slab, SlabCache};
use core::alloc::{GlobalAlloc, Layout};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};

/// An allocator whose first dimension is the user's lifetime classes: every class has its own blocks, so
/// objects that live and die together share pages, and a class can be released at once.
///
/// ```
/// use classalloc::{lifetime_class, ClassAlloc};
/// use core::alloc::Layout;
///
/// #[derive(Clone, Copy, strum::EnumCount, strum::IntoStaticStr)]
/// #[repr(u8)]
/// enum Life { Frame, Request, Cache }
/// lifetime_class!(Life);
///
/// static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
///
/// let layout = Layout::new::<[u8; 100]>();
/// let p = ALLOC.alloc(Life::Frame, layout).unwrap();
/// // SAFETY: allocated just above in Frame with `layout`.
/// unsafe { ALLOC.free(Life::Frame, p.cast(), layout).unwrap() };
///
/// // A typed handle is an `Allocator` (allocator-api2, on stable).
/// let mut v = allocator_api2::vec::Vec::new_in(ALLOC.handle(Life::Cache));
/// v.extend_from_slice(&[1, 2, 3]);
/// assert_eq!(ALLOC.class_totals(Life::Cache).live_objects, 1);
/// ```
pub struct ClassAlloc<C: LifetimeClass> {
    table: ClassTable<C>,
    /// The class of global allocations made outside any [`with_class`](crate::with_class) scope.
    default_class: AtomicU8,
    names: ClassNames,
}

impl<C: LifetimeClass> Default for ClassAlloc<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: LifetimeClass> ClassAlloc<C> {
    /// An empty allocator; the default class (for global allocations outside a scope) is the one with
    /// index 0, the enum's first variant.
    pub const fn new() -> Self {
        Self {
            table: ClassTable::new(),
            default_class: AtomicU8::new(0),
            names: ClassNames::new(),
        }
    }

    /// Sets the class of global allocations made outside any [`with_class`](crate::with_class) scope.
    pub fn set_default_class(&self, class: C) {
        self.names.record(class);
        self.default_class
            .store(class.index() as u8, Ordering::Relaxed);
    }

    /// The underlying `[class][size]` table.
    pub fn table(&self) -> &ClassTable<C> {
        &self.table
    }

    // ----- explicit-class Layout API ---------------------------------------------------------------

    /// Allocates for `layout` in `class`; the slice is the usable length.
    #[inline]
    pub fn alloc(&self, class: C, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.names.record(class);
        self.via_cache(
            class.index(),
            |slab, cache| slab.alloc_cached(cache, layout),
            |slab| slab.alloc(layout),
        )
    }

    /// As [`alloc`](Self::alloc), zeroed.
    #[inline]
    pub fn calloc(&self, class: C, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.names.record(class);
        self.via_cache(
            class.index(),
            |slab, cache| slab.alloc_zeroed_cached(cache, layout),
            |slab| slab.alloc_zeroed(layout),
        )
    }

    /// Frees an allocation of `class` made with `layout`; a free sent to another class than the
    /// allocation's is refused ([`FreeError::OwnerMismatch`]) and changes nothing.
    ///
    /// # Safety
    /// `ptr` was allocated by this allocator with `layout` (any size up to the usable length, same
    /// alignment) and is not used afterwards.
    #[inline]
    pub unsafe fn free(&self, class: C, ptr: NonNull<u8>, layout: Layout) -> Result<(), FreeError> {
        // SAFETY: forwarded contract.
        unsafe {
            self.check_owner(class.index(), ptr, layout)?;
            self.via_cache(
                class.index(),
                |slab, cache| slab.dealloc_cached(cache, ptr, layout),
                |slab| slab.dealloc(ptr, layout),
            )
        }
    }

    /// Resizes an allocation of `class` to `new_size`, staying in `class`.
    ///
    /// # Safety
    /// As for [`free`](Self::free); on success the old pointer is not used unless it equals the new one.
    #[inline]
    pub unsafe fn realloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe {
            self.check_owner(class.index(), ptr, layout)
                .map_err(AllocError::NotAllocated)?;
            self.via_cache(
                class.index(),
                |slab, cache| slab.realloc_cached(cache, ptr, layout, new_size),
                |slab| slab.realloc(ptr, layout, new_size),
            )
        }
    }

    // ----- the seed's size-only API with a class ---------------------------------------------------

    /// The seed's `Malloc` in `class`: aligned to `size.next_power_of_two()` (up to 4096).
    #[inline]
    pub fn malloc(&self, class: C, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.names.record(class);
        self.via_cache(
            class.index(),
            |slab, cache| slab.malloc_cached(cache, size),
            |slab| slab.malloc(size),
        )
    }

    /// The seed's `Calloc` in `class`.
    #[inline]
    pub fn calloc_sized(&self, class: C, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.names.record(class);
        self.via_cache(
            class.index(),
            |slab, cache| slab.calloc_cached(cache, size),
            |slab| slab.calloc(size),
        )
    }

    /// The seed's `Free` in `class`.
    ///
    /// # Safety
    /// `ptr` is a live size-only allocation of `class` of `size` bytes, not used afterwards.
    #[inline]
    pub unsafe fn free_sized(
        &self,
        class: C,
        ptr: NonNull<u8>,
        size: usize,
    ) -> Result<(), FreeError> {
        // SAFETY: forwarded contract.
        unsafe { self.table.free(class, ptr, size) }
    }

    /// The seed's `Remalloc` in `class`.
    ///
    /// # Safety
    /// As for [`free_sized`](Self::free_sized) with `old_size`.
    pub unsafe fn remalloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe { self.table.remalloc(class, ptr, old_size, new_size) }
    }

    /// The seed's `Recalloc` in `class`.
    ///
    /// # Safety
    /// As for [`free_sized`](Self::free_sized) with `old_size`.
    pub unsafe fn recalloc(
        &self,
        class: C,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded contract.
        unsafe { self.table.recalloc(class, ptr, old_size, new_size) }
    }

    // ----- handles, release ------------------------------------------------------------------------

    /// A handle that allocates in `class`: an `allocator_api2::alloc::Allocator` (`Copy`, `Send`,
    /// `Sync`) for `Vec::new_in`, `Box::new_in`, hashbrown's `HashMap::new_in`.
    pub fn handle(&self, class: C) -> ClassHandle<'_, C> {
        self.names.record(class);
        ClassHandle { alloc: self, class }
    }

    /// Returns all memory of `class` to the OS at once (every block and large allocation, live or not),
    /// like a heap destroy or an arena reset.
    ///
    /// # Safety
    /// No other thread allocates or frees in `class` during the call, and nothing allocated in `class`
    /// before it is used or freed afterwards (including by a global-allocator scope routed to `class`).
    pub unsafe fn release(&self, class: C) {
        // SAFETY: forwarded contract.
        unsafe { self.table.release(class) }
    }

    /// Gives back the memory the calling thread keeps for reuse in this allocator, like
    /// [`collect`](crate::collect) does for [`Global`](crate::Global): the thread's cached free slots of
    /// every class go back to their blocks (with the transfer caches of the size classes it used), blocks
    /// left empty go back to the page source, and the page source gives every freed block it keeps
    /// resident back to the OS. Other threads' caches are left alone.
    ///
    /// Never needed for correctness: a thread's caches go back when it exits, and the caches give most
    /// of a long run of frees back on their own. Useful after a class's objects died together, when the
    /// thread goes on with other work:
    ///
    /// ```
    /// use classalloc::{lifetime_class, ClassAlloc};
    /// use core::alloc::Layout;
    ///
    /// #[derive(Clone, Copy, strum::EnumCount, strum::IntoStaticStr)]
    /// #[repr(u8)]
    /// enum Life { Session, Request }
    /// lifetime_class!(Life);
    ///
    /// static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    ///
    /// let layout = Layout::new::<[u8; 64]>();
    /// let request: Vec<_> = (0..10_000).map(|_| ALLOC.alloc(Life::Request, layout).unwrap()).collect();
    /// for p in request {
    ///     // SAFETY: allocated above in Request with `layout`, freed once.
    ///     unsafe { ALLOC.free(Life::Request, p.cast(), layout).unwrap() };
    /// }
    /// ALLOC.collect();
    /// assert_eq!(ALLOC.class_totals(Life::Request).blocks, 0);
    /// ```
    pub fn collect(&self) {
        for_each_existing_class_cache(self as *const Self as usize, C::COUNT, |index, cache| {
            if let Err(error) = self.table.slab_at(index).flush_cache(cache) {
                let class = self.names.label(index);
                classalloc_slab::fatal::abort_with(format_args!(
                    "{error}: found when collect() gave this thread's cached slots of class {class} back"
                ));
            }
        });
        classalloc_slab::pages::trim();
    }

    // ----- statistics ------------------------------------------------------------------------------

    /// Totals of `class`: live objects and bytes, blocks, resident bytes.
    pub fn class_totals(&self, class: C) -> Totals {
        self.table.totals(class)
    }

    /// The counters of every size class of `class`.
    pub fn size_stats(&self, class: C) -> impl Iterator<Item = ClassStats> + '_ {
        self.table.size_stats(class)
    }

    /// A report of every class and every `[class][size]` in use; `Display` prints it as a table.
    pub fn report(&self) -> Report {
        let classes = (0..C::COUNT)
            .map(|index| ClassReport {
                index,
                name: self.names.get(index),
                totals: self.table.totals_at(index),
                large: self.table.large_stats_at(index),
                sizes: self
                    .table
                    .slab_at(index)
                    .stats()
                    .filter(|size| size.blocks > 0)
                    .collect(),
            })
            .collect();
        Report { classes }
    }

    /// Aborts on a misuse detected in lifetime class `index`, naming the class:
    /// `classalloc: fatal: <misuse>: <ptr> (class <name>, <size> B)`.
    #[cold]
    #[inline(never)]
    fn abort_misuse(&self, index: usize, what: FreeError, ptr: *mut u8, size: usize) -> ! {
        let class = self.names.label(index);
        classalloc_slab::fatal::abort_with(format_args!(
            "{what}: {ptr:p} (class {class}, {size} B)"
        ))
    }

    /// Runs `cached` on `index`'s slab with this thread's cache for it, or `uncached` when the thread
    /// has none (teardown).
    #[inline(always)]
    fn via_cache<R>(
        &self,
        index: usize,
        cached: impl FnOnce(&Slab, Pin<&SlabCache>) -> R,
        uncached: impl FnOnce(&Slab) -> R,
    ) -> R {
        let slab = self.table.slab_at(index);
        with_class_cache(
            self as *const Self as usize,
            index,
            |cache| cached(slab, cache),
            || uncached(slab),
        )
    }

    /// Refuses a free sent to another class than the one whose block holds `ptr` (read from the block
    /// header; a large allocation is checked by its class's registry when freed).
    ///
    /// # Safety
    /// `ptr` is a live allocation of this allocator made with `layout`, if the caller keeps its contract.
    #[inline]
    unsafe fn check_owner(
        &self,
        index: usize,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> Result<(), FreeError> {
        // SAFETY: forwarded contract.
        match unsafe { self.table.slab_at(index).owner_of(ptr, layout) } {
            Some(owner) if owner as usize != index => Err(FreeError::OwnerMismatch),
            _ => Ok(()),
        }
    }

    /// The class index for a global allocation: the innermost scope's, else the default.
    #[inline]
    fn global_class(&self) -> usize {
        match scope::current() {
            Some(index) if index < C::COUNT => index,
            _ => self.default_class.load(Ordering::Relaxed) as usize,
        }
    }

    /// The class that owns a live global allocation; a pointer no class owns is a misuse.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this allocator made with `layout`, if the caller keeps its contract.
    #[inline]
    unsafe fn owner(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded contract.
        match unsafe { self.table.class_of(ptr, layout) } {
            Some(index) => index,
            None => abort_on_misuse(FreeError::NotASlot, ptr.as_ptr(), layout.size()),
        }
    }
}

// SAFETY: blocks fit their layouts and are never handed out twice while live; frees and reallocations are
// routed to the class that owns the pointer (read from its block header or its class's large registry),
// whatever scope is current, so freeing in another scope than the allocation's is sound.
unsafe impl<C: LifetimeClass> GlobalAlloc for ClassAlloc<C> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = self.via_cache(
            self.global_class(),
            |slab, cache| slab.alloc_cached(cache, layout),
            |slab| slab.alloc(layout),
        );
        match block {
            Ok(block) => block.as_ptr().cast(),
            Err(_) => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let block = self.via_cache(
            self.global_class(),
            |slab, cache| slab.alloc_zeroed_cached(cache, layout),
            |slab| slab.alloc_zeroed(layout),
        );
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
        // SAFETY: GlobalAlloc's contract: a live allocation of this allocator with `layout`.
        unsafe {
            let owner = self.owner(nonnull, layout);
            let freed = self.via_cache(
                owner,
                |slab, cache| slab.dealloc_cached(cache, nonnull, layout),
                |slab| slab.dealloc(nonnull, layout),
            );
            if let Err(error) = freed {
                self.abort_misuse(owner, error, ptr, layout.size());
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(nonnull) = NonNull::new(ptr) else {
            return ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's contract; the allocation stays in the class that owns it.
        unsafe {
            let owner = self.owner(nonnull, layout);
            let block = self.via_cache(
                owner,
                |slab, cache| slab.realloc_cached(cache, nonnull, layout, new_size),
                |slab| slab.realloc(nonnull, layout, new_size),
            );
            match block {
                Ok(block) => block.as_ptr().cast(),
                Err(AllocError::NotAllocated(error)) => {
                    self.abort_misuse(owner, error, ptr, layout.size())
                }
                Err(_) => ptr::null_mut(),
            }
        }
    }
}

/// Allocates in one lifetime class of a [`ClassAlloc`]; an `allocator_api2::alloc::Allocator`.
pub struct ClassHandle<'a, C: LifetimeClass> {
    alloc: &'a ClassAlloc<C>,
    class: C,
}

impl<C: LifetimeClass> Clone for ClassHandle<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C: LifetimeClass> Copy for ClassHandle<'_, C> {}

impl<C: LifetimeClass> ClassHandle<'_, C> {
    /// The class this handle allocates in.
    pub fn class(&self) -> C {
        self.class
    }
}

/// A well-aligned dangling pointer for zero-sized allocations, which take no memory.
fn dangling(layout: Layout) -> NonNull<[u8]> {
    // An address equal to the alignment is non-null and aligned; it is never dereferenced.
    let ptr = ptr::without_provenance_mut::<u8>(layout.align());
    // SAFETY: `align` is never 0.
    NonNull::slice_from_raw_parts(unsafe { NonNull::new_unchecked(ptr) }, 0)
}

// SAFETY: memory blocks are valid for their layout until deallocated, whichever copy of the handle frees
// them (all copies allocate from the same class of the same allocator); zero-sized layouts get dangling,
// aligned pointers and are never passed on to the slab.
unsafe impl<C: LifetimeClass> allocator_api2::alloc::Allocator for ClassHandle<'_, C> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        self.allocate_in_class(layout, false)
    }

    #[inline]
    fn allocate_zeroed(
        &self,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        self.allocate_in_class(layout, true)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        // SAFETY: Allocator's contract: `ptr` is currently allocated by this allocator and `layout` fits.
        if let Err(error) = unsafe { self.alloc.free(self.class, ptr, layout) } {
            self.alloc
                .abort_misuse(self.class.index(), error, ptr.as_ptr(), layout.size());
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: Allocator's contract for grow.
        unsafe { self.resize(ptr, old, new) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: Allocator's contract for grow; the bytes past the old size are ours to zero.
        unsafe {
            let block = self.resize(ptr, old, new)?;
            let start = block.cast::<u8>().as_ptr().add(old.size());
            start.write_bytes(0, block.len() - old.size());
            Ok(block)
        }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: Allocator's contract for shrink.
        unsafe { self.resize(ptr, old, new) }
    }
}

impl<C: LifetimeClass> ClassHandle<'_, C> {
    /// Allocates in the handle's class; zero-sized layouts take no memory.
    #[inline]
    fn allocate_in_class(
        &self,
        layout: Layout,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        let block = if zeroed {
            self.alloc.calloc(self.class, layout)
        } else {
            self.alloc.alloc(self.class, layout)
        };
        block.map_err(|_| allocator_api2::alloc::AllocError)
    }

    /// Grow or shrink: in place within a size class, else a move (alignment changes always move).
    ///
    /// # Safety
    /// Allocator's contract for grow and shrink.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        use allocator_api2::alloc::{AllocError as ApiError, Allocator};
        if old.size() == 0 {
            return self.allocate(new);
        }
        if new.size() == 0 {
            // SAFETY: `ptr` is live with `old`.
            unsafe { self.deallocate(ptr, old) };
            return Ok(dangling(new));
        }
        if old.align() == new.align() {
            // SAFETY: `ptr` is live in this class with `old`.
            return match unsafe { self.alloc.realloc(self.class, ptr, old, new.size()) } {
                Ok(block) => Ok(block),
                Err(AllocError::NotAllocated(error)) => {
                    self.alloc
                        .abort_misuse(self.class.index(), error, ptr.as_ptr(), old.size())
                }
                Err(_) => Err(ApiError),
            };
        }
        let block = self.allocate(new)?;
        // SAFETY: both live and distinct; min(old, new) bytes fit both; then the old one is freed.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                block.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
            self.deallocate(ptr, old);
        }
        Ok(block)
    }
}

/// One lifetime class in a [`Report`].
#[derive(Clone, Debug)]
pub struct ClassReport {
    /// The class's index (its discriminant).
    pub index: usize,
    /// The variant's name, once a call that took the enum value has named it (reports show `#index`
    /// for classes only reached through the default class).
    pub name: Option<&'static str>,
    /// Totals over its size classes and large allocations.
    pub totals: Totals,
    /// Its large allocations.
    pub large: LargeStats,
    /// Its `[class][size]` entries that hold blocks.
    pub sizes: Vec<ClassStats>,
}

/// Statistics of every lifetime class; printable as a table.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per class, by index.
    pub classes: Vec<ClassReport>,
}

impl core::fmt::Display for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "{:<12} {:>8} {:>12} {:>14} {:>8} {:>14} {:>8}",
            "class", "size", "live objs", "live bytes", "blocks", "resident", "ratio"
        )?;
        for class in &self.classes {
            let name = match class.name {
                Some(name) => name.to_string(),
                None => format!("#{}", class.index),
            };
            let row = |f: &mut core::fmt::Formatter<'_>,
                       size: &str,
                       objects,
                       bytes,
                       blocks,
                       resident| {
                let ratio = if bytes > 0 {
                    format!("{:.4}", resident as f64 / bytes as f64)
                } else {
                    "-".into()
                };
                writeln!(
                    f,
                    "{name:<12} {size:>8} {objects:>12} {bytes:>14} {blocks:>8} {resident:>14} {ratio:>8}"
                )
            };
            for size in &class.sizes {
                let slot = size.geometry.slot_size.to_string();
                row(
                    f,
                    &slot,
                    size.live_objects,
                    size.live_bytes,
                    size.blocks,
                    size.resident_bytes,
                )?;
            }
            if class.large.live_objects > 0 {
                let large = &class.large;
                row(
                    f,
                    "large",
                    large.live_objects,
                    large.live_bytes,
                    0,
                    large.mapped_bytes,
                )?;
            }
            let totals = &class.totals;
            row(
                f,
                "all",
                totals.live_objects,
                totals.live_bytes,
                totals.blocks,
                totals.resident_bytes,
            )?;
        }
        Ok(())
    }
}
