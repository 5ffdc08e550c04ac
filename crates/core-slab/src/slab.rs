//! The slab allocator: a head per size class, two APIs over it (Rust `Layout`s with fine classes, the
//! seed's size-only functions with power-of-two classes), and the large path.

use crate::block::{with_block_type, Block, Popped};
use crate::cache::{self, SlabCache};
use crate::checked;
use crate::class::{SizeClass, CLASS_COUNT};
use crate::error::{AllocError, FreeError};
use crate::geometry::{resolve, BlockGeometry, ClassLayout, SeedConfig, SlabConfig};
use crate::head::{Head, TransferBudget};
use crate::large::{medium_order, Kind, Large};
use crate::os::PAGE_SIZE;
use crate::stats::{ClassStats, LargeStats, Totals};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;

mod cached;
use cached::Registry;

/// Where a request is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// A slot of a size class.
    Small(SizeClass),
    /// A block of `2^order` bytes from the page source (naturally aligned).
    Medium { order: u32 },
    /// Whole pages mapped on their own.
    Huge { align: usize },
}

/// A `Layout` from raw numbers, with the reason when there is none.
pub fn checked_layout(size: usize, align: usize) -> Result<Layout, AllocError> {
    if !align.is_power_of_two() {
        return Err(AllocError::BadAlignment);
    }
    Layout::from_size_align(size, align).map_err(|_| AllocError::TooLarge)
}

/// Routes a `Layout`'s size and alignment (alignment already known to be a power of two).
#[inline(always)]
fn route_layout(size: usize, align: usize) -> Result<Route, AllocError> {
    if size == 0 {
        return Err(AllocError::ZeroSize);
    }
    if let Some(class) = SizeClass::for_layout(size, align) {
        return Ok(Route::Small(class));
    }
    match medium_order(size, align) {
        Some(order) => Ok(Route::Medium { order }),
        None if size > isize::MAX as usize - (align - 1) => Err(AllocError::TooLarge),
        None => Ok(Route::Huge { align }),
    }
}

/// Routes a size of the size-only API (power-of-two classes).
#[inline(always)]
fn route_size(size: usize) -> Result<Route, AllocError> {
    if size == 0 {
        return Err(AllocError::ZeroSize);
    }
    if let Some(class) = SizeClass::for_size_pow2(size) {
        return Ok(Route::Small(class));
    }
    match medium_order(size, PAGE_SIZE) {
        Some(order) => Ok(Route::Medium { order }),
        None if size > isize::MAX as usize => Err(AllocError::TooLarge),
        None => Ok(Route::Huge { align: PAGE_SIZE }),
    }
}

/// Routes a free's size-only request; the free-side twin of `route_size`.
#[inline(always)]
fn route_size_for_free(size: usize) -> Result<Route, FreeError> {
    route_size(size).map_err(refused_free)
}

/// Why a free (or the old side of a reallocation) with a size that routes nowhere is refused: size 0, or
/// a size no allocation can have (its rounding overflows), which is another class than the allocation's.
#[cold]
fn refused_free(error: AllocError) -> FreeError {
    match error {
        AllocError::ZeroSize => FreeError::ZeroSize,
        _ => FreeError::ClassMismatch,
    }
}

/// A size-class slab allocator with no per-allocation metadata.
///
/// Every allocation is freed with the size (and, for the `Layout` API, the alignment) it was allocated
/// with; the block header is found by masking the pointer with the class's block size. `C` fixes the block
/// geometry at compile time ([`SeedConfig`] by default).
///
/// ```
/// use classalloc_slab::Slab;
///
/// static SLAB: Slab = Slab::new();
///
/// let p = SLAB.malloc(24).unwrap(); // size-only API: a 32-byte slot, aligned to 32
/// assert_eq!(p.as_ptr() as usize % 32, 0);
/// // SAFETY: p came from SLAB.malloc(24) and is freed once, with the same size.
/// unsafe { SLAB.free(p, 24).unwrap() };
///
/// let layout = core::alloc::Layout::new::<[u64; 3]>(); // Layout API: a 24-byte slot
/// let q = SLAB.alloc(layout).unwrap();
/// assert_eq!(q.len(), 24);
/// // SAFETY: q came from SLAB.alloc(layout).
/// unsafe { SLAB.dealloc(q.cast(), layout).unwrap() };
/// ```
pub struct Slab<C: SlabConfig = SeedConfig> {
    heads: [Head; CLASS_COUNT],
    large: Large,
    /// Written into every block header, so a layer above can tell which slab a pointer belongs to.
    owner: u8,
    /// The thread caches attached to this slab.
    caches: Registry,
    /// What the heads' transfer caches hold together, and may hold.
    transfer: TransferBudget,
    _config: PhantomData<fn() -> C>,
}

impl Slab<SeedConfig> {
    /// An empty slab with the seed's geometry: no memory is mapped until the first allocation.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_config()
    }
}

impl Default for Slab<SeedConfig> {
    fn default() -> Self {
        Self::with_config()
    }
}

impl<C: SlabConfig> Slab<C> {
    /// The resolved geometry; evaluating it runs the compile-time checks of `C::GEOMETRY`.
    const LAYOUTS: [ClassLayout; CLASS_COUNT] = resolve(&C::GEOMETRY);

    /// An empty slab with `C`'s geometry (checked at compile time); nothing is mapped until needed.
    #[cfg(not(loom))]
    pub const fn with_config() -> Self {
        let _checked = Self::LAYOUTS;
        Self {
            heads: [const { Head::new() }; CLASS_COUNT],
            large: Large::new(),
            owner: 0,
            caches: Registry::new(),
            transfer: TransferBudget::new(),
            _config: PhantomData,
        }
    }

    /// An empty slab with `C`'s geometry (loom build: not `const`).
    #[cfg(loom)]
    pub fn with_config() -> Self {
        let _checked = Self::LAYOUTS;
        Self {
            heads: core::array::from_fn(|_| Head::new()),
            large: Large::new(),
            owner: 0,
            caches: Registry::new(),
            transfer: TransferBudget::new(),
            _config: PhantomData,
        }
    }

    /// Sets the owner tag written into every block this slab maps (0 by default); see
    /// [`owner_of`](Self::owner_of).
    pub const fn owned_by(mut self, owner: u8) -> Self {
        self.owner = owner;
        self
    }

    /// Sets the owner tag in place (for building tables of slabs in `const` code).
    pub const fn set_owner(&mut self, owner: u8) {
        self.owner = owner;
    }

    /// This slab's owner tag.
    pub const fn owner(&self) -> u8 {
        self.owner
    }

    // ----- the Layout API --------------------------------------------------------------------------

    /// Allocates memory for `layout`; the returned slice is the usable length (the class's slot size, or
    /// the whole pages of a large allocation), every byte of which may be used.
    #[inline]
    pub fn alloc(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let route = route_layout(layout.size(), layout.align())?;
        self.alloc_routed(route, layout.size(), false)
            .map(|(ptr, _)| ptr)
    }

    /// As [`alloc`](Self::alloc), with the memory zeroed (slots known to be fresh are not cleared again).
    #[inline]
    pub fn alloc_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let route = route_layout(layout.size(), layout.align())?;
        self.alloc_routed(route, layout.size(), true)
            .map(|(ptr, _)| ptr)
    }

    /// Frees memory allocated for `layout`.
    ///
    /// # Safety
    /// `ptr` was returned by an allocation of this slab with a layout of the same alignment and a size
    /// between the requested size and the usable length returned, and is not used afterwards.
    #[inline]
    pub unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) -> Result<(), FreeError> {
        let route = route_layout(layout.size(), layout.align()).map_err(refused_free)?;
        // SAFETY: forwarded contract.
        unsafe { self.free_routed(ptr, route, layout.size()) }
    }

    /// Resizes an allocation to `new_size` bytes with `layout`'s alignment. Within the same class the
    /// pointer stays; a large allocation is resized in place or moved by the OS; otherwise the first
    /// `min(old, new)` bytes are copied. On error the old allocation is untouched.
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc) with `layout`; on success the old pointer is no longer used
    /// (unless it equals the new one).
    pub unsafe fn realloc(
        &self,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old = route_layout(layout.size(), layout.align())
            .map_err(|error| AllocError::NotAllocated(refused_free(error)))?;
        let new = route_layout(new_size, layout.align())?;
        // SAFETY: forwarded contract.
        unsafe { self.realloc_routed(None, ptr, old, layout.size(), new, new_size) }
    }

    /// Allocates `size` bytes aligned to `align`, given as raw numbers (as C's `aligned_alloc` gets them):
    /// [`AllocError::BadAlignment`] unless `align` is a power of two. Free with [`dealloc`](Self::dealloc)
    /// and the same size and alignment.
    pub fn alloc_aligned(&self, size: usize, align: usize) -> Result<NonNull<[u8]>, AllocError> {
        self.alloc(checked_layout(size, align)?)
    }

    // ----- the seed's size-only API ----------------------------------------------------------------

    /// Allocates `size` bytes aligned to `size.next_power_of_two()` (at most 4096; large sizes are page
    /// aligned), as the seed's `Malloc`.
    #[inline]
    pub fn malloc(&self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let route = route_size(size)?;
        self.alloc_routed(route, size, false)
            .map(|(ptr, _)| ptr.cast())
    }

    /// As [`malloc`](Self::malloc), zeroed (fresh memory is not cleared again).
    #[inline]
    pub fn calloc(&self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let route = route_size(size)?;
        self.alloc_routed(route, size, true)
            .map(|(ptr, _)| ptr.cast())
    }

    /// Frees `ptr`, allocated by [`malloc`](Self::malloc) (or `calloc`, `remalloc`, `recalloc`) with
    /// `size`.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this slab's size-only API of exactly `size` bytes (any size of the
    /// same power-of-two class is accepted), not used afterwards.
    #[inline]
    pub unsafe fn free(&self, ptr: NonNull<u8>, size: usize) -> Result<(), FreeError> {
        let route = route_size_for_free(size)?;
        // SAFETY: forwarded contract.
        unsafe { self.free_routed(ptr, route, size) }
    }

    /// Resizes a size-only allocation from `old_size` to `new_size` (the seed's `Remalloc`): same pointer
    /// within a class, else a copy of `min(old, new)` bytes. On error the old allocation is untouched.
    ///
    /// # Safety
    /// As for [`free`](Self::free) with `old_size`; on success the old pointer is no longer used (unless
    /// it equals the new one).
    pub unsafe fn remalloc(
        &self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let old =
            route_size(old_size).map_err(|error| AllocError::NotAllocated(refused_free(error)))?;
        let new = route_size(new_size)?;
        // SAFETY: forwarded contract.
        unsafe { self.realloc_routed(None, ptr, old, old_size, new, new_size) }.map(|p| p.cast())
    }

    /// As [`remalloc`](Self::remalloc), zeroing the grown tail `old_size .. new_size`.
    ///
    /// # Safety
    /// As for [`remalloc`](Self::remalloc).
    pub unsafe fn recalloc(
        &self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded contract.
        let new = unsafe { self.remalloc(ptr, old_size, new_size) }?;
        if new_size > old_size {
            // SAFETY: the allocation holds new_size bytes.
            unsafe {
                new.as_ptr()
                    .add(old_size)
                    .write_bytes(0, new_size - old_size)
            };
        }
        Ok(new)
    }

    // ----- ownership and release ----------------------------------------------------------------

    /// The owner tag of the slab that allocated `ptr` with `layout`, read from the block header found by
    /// masking; `None` for a large allocation (no header: ask each slab's
    /// [`owns_large`](Self::owns_large)). Every slab with the same configuration agrees on the answer.
    ///
    /// # Safety
    /// `ptr` is a live allocation, made with `layout` by a slab with this configuration.
    pub unsafe fn owner_of(&self, ptr: NonNull<u8>, layout: Layout) -> Option<u8> {
        match route_layout(layout.size(), layout.align()).ok()? {
            Route::Small(class) => {
                let geometry = &Self::LAYOUTS[class.index()];
                let base = ptr.as_ptr() as usize & !(geometry.block_size() - 1);
                if checked::CHECKED {
                    // A stale or foreign pointer's block may be unmapped: ask the registry instead.
                    return checked::owner_of(base);
                }
                let base = NonNull::new(base as *mut u8)?;
                // SAFETY: per the contract the block holding the live slot is mapped and initialised.
                Some(with_block_type!(geometry.kind, B => unsafe { B::at(base).owner() }))
            }
            Route::Medium { .. } | Route::Huge { .. } => None,
        }
    }

    /// Whether `ptr` is a live large allocation of this slab (a registry look-up under a lock).
    pub fn owns_large(&self, ptr: NonNull<u8>) -> bool {
        self.large.owns(ptr)
    }

    /// Returns every block and large allocation of this slab to the OS at once, live or not, and zeroes
    /// its live counts (like a heap destroy or an arena reset). The slab stays usable.
    ///
    /// # Safety
    /// No other thread allocates from or frees into this slab during the call, and no allocation made by
    /// it before the call is used or freed afterwards.
    pub unsafe fn release(&self) {
        // Thread caches hold slots of the blocks about to go: they forget them (the contract keeps their
        // owners out of this slab's calls; an owner exiting waits for the registry lock held here).
        // SAFETY: per the contract no other thread uses the slab, so no owner is in a cached call.
        let _registry = unsafe { self.caches.forget_all() };
        for class in SizeClass::all() {
            let layout = &Self::LAYOUTS[class.index()];
            let head = &self.heads[class.index()];
            // SAFETY: per the contract nothing uses the slab's memory any more.
            with_block_type!(layout.kind, B => unsafe { head.release_all::<B>(layout, &self.transfer) });
        }
        // SAFETY: as above.
        unsafe { self.large.release_all() };
    }

    // ----- statistics ------------------------------------------------------------------------------

    /// The geometry of `class`.
    pub fn geometry(&self, class: SizeClass) -> BlockGeometry {
        BlockGeometry::from(&Self::LAYOUTS[class.index()])
    }

    /// The counters of `class`.
    pub fn class_stats(&self, class: SizeClass) -> ClassStats {
        // Caches first: objects move from a cache's count to the head's only under the registry lock, so
        // taking it keeps them from being counted twice or missed.
        let (cached_objects, cached_bytes, _registry) = self.caches.live(class);
        let counts = self.heads[class.index()].counts();
        ClassStats {
            class,
            geometry: self.geometry(class),
            live_objects: counts.live_objects.wrapping_add(cached_objects),
            live_bytes: counts.live_bytes.wrapping_add(cached_bytes),
            blocks: counts.blocks,
            resident_bytes: counts.resident_bytes,
        }
    }

    /// The counters of every class, smallest first.
    pub fn stats(&self) -> impl Iterator<Item = ClassStats> + '_ {
        SizeClass::all().map(|class| self.class_stats(class))
    }

    /// The counters of the large path.
    pub fn large_stats(&self) -> LargeStats {
        self.large.stats()
    }

    /// Totals over every class and the large path.
    pub fn totals(&self) -> Totals {
        let large = self.large_stats();
        self.stats().fold(
            Totals {
                live_objects: large.live_objects,
                live_bytes: large.live_bytes,
                blocks: 0,
                resident_bytes: large.mapped_bytes,
            },
            // Wrapping: per-class byte counts follow what frees state (see `ClassStats::live_bytes`).
            |totals, class| Totals {
                live_objects: totals.live_objects.wrapping_add(class.live_objects),
                live_bytes: totals.live_bytes.wrapping_add(class.live_bytes),
                blocks: totals.blocks + class.blocks,
                resident_bytes: totals.resident_bytes + class.resident_bytes,
            },
        )
    }

    // ----- the shared paths ------------------------------------------------------------------------

    /// Every class's block size, for checked mode's diagnosis of a wrong size.
    const BLOCK_SIZES: [usize; CLASS_COUNT] = {
        let mut sizes = [0; CLASS_COUNT];
        let mut index = 0;
        while index < CLASS_COUNT {
            sizes[index] = Self::LAYOUTS[index].block_size();
            index += 1;
        }
        sizes
    };

    /// Checked mode: verifies a free of a slot of `class` before anything changes.
    #[cold]
    #[inline(never)]
    pub(crate) fn check_free(&self, ptr: NonNull<u8>, class: SizeClass) -> Result<(), FreeError> {
        let layout = &Self::LAYOUTS[class.index()];
        let is_slot_start =
            |offset| with_block_type!(layout.kind, B => B::is_slot_start(offset, layout));
        let base = ptr.as_ptr() as usize & !(layout.block_size() - 1);
        let was_handed_out = |offset| {
            with_block_type!(layout.kind, B => {
                // SAFETY: called only once the block at `base` is known registered (mapped, of this
                // class, so of type B) under the registry lock, which keeps it mapped; its own lock is
                // taken (registry before block: no path takes them in the other order).
                unsafe {
                    let block = B::at(NonNull::new_unchecked(base as *mut u8));
                    let _guard = crate::sync::acquire(block.lock());
                    block.was_handed_out(offset, layout)
                }
            })
        };
        checked::on_free(
            ptr,
            &checked::Claim {
                class: class.index() as u8,
                owner: self.owner,
                block_size: layout.block_size(),
                block_sizes: &Self::BLOCK_SIZES,
                is_slot_start: &is_slot_start,
                was_handed_out: &was_handed_out,
            },
        )
    }

    /// Checked mode: records that a slot of `class` was handed out.
    #[cold]
    #[inline(never)]
    pub(crate) fn check_alloc(&self, slot: NonNull<u8>, class: SizeClass) {
        let base = slot.as_ptr() as usize & !(Self::LAYOUTS[class.index()].block_size() - 1);
        checked::on_alloc(base, slot);
    }

    /// Allocates; returns the usable slice and whether its memory is known to be zero.
    #[inline]
    fn alloc_routed(
        &self,
        route: Route,
        size: usize,
        zeroed: bool,
    ) -> Result<(NonNull<[u8]>, bool), AllocError> {
        match route {
            Route::Small(class) => {
                let layout = &Self::LAYOUTS[class.index()];
                let head = &self.heads[class.index()];
                let tag = class.index() as u8;
                let popped: Popped = with_block_type!(layout.kind, B => {
                    head.alloc::<B>(tag, self.owner, layout, size)
                })?;
                cache::unpoison_slot(popped.slot, class);
                if checked::CHECKED {
                    self.check_alloc(popped.slot, class);
                }
                let slot_size = layout.slot_size as usize;
                if zeroed && !popped.fresh {
                    // SAFETY: the slot is ours and slot_size bytes long.
                    unsafe { popped.slot.as_ptr().write_bytes(0, slot_size) };
                }
                Ok((
                    NonNull::slice_from_raw_parts(popped.slot, slot_size),
                    popped.fresh,
                ))
            }
            Route::Medium { order } => self.large.alloc_medium(order, size, zeroed),
            Route::Huge { align } => Ok((self.large.alloc_huge(size, align)?, true)),
        }
    }

    /// # Safety
    /// `ptr` is a live allocation routed to `route` with `size` bytes, not used afterwards.
    #[inline]
    unsafe fn free_routed(
        &self,
        ptr: NonNull<u8>,
        route: Route,
        size: usize,
    ) -> Result<(), FreeError> {
        match route {
            Route::Small(class) => {
                if checked::CHECKED {
                    self.check_free(ptr, class)?;
                }
                // SAFETY: forwarded contract.
                unsafe { self.free_small_locked(ptr, class, size) }
            }
            // SAFETY: per the contract ptr is a live medium allocation of `size` bytes.
            Route::Medium { order } => unsafe { self.large.free(ptr, size, Kind::Medium(order)) },
            // SAFETY: per the contract ptr is a live huge allocation of `size` bytes.
            Route::Huge { .. } => unsafe { self.large.free(ptr, size, Kind::Huge) },
        }
    }

    /// Returns a slot of `class` to its block under the locks (no checked-mode check: done by callers).
    ///
    /// # Safety
    /// `ptr` is a live slot of `class` of this slab with `size` requested bytes, not used afterwards.
    pub(crate) unsafe fn free_small_locked(
        &self,
        ptr: NonNull<u8>,
        class: SizeClass,
        size: usize,
    ) -> Result<(), FreeError> {
        let layout = &Self::LAYOUTS[class.index()];
        let head = &self.heads[class.index()];
        let base_addr = ptr.as_ptr() as usize & !(layout.block_size() - 1);
        let base = NonNull::new(base_addr as *mut u8).ok_or(FreeError::NotASlot)?;
        let tag = class.index() as u8;
        // Poisoned while still ours: once pushed, another thread may hand the slot out again.
        cache::poison_slot(ptr, class);
        // SAFETY: per the contract ptr is a live slot of this class, so `base` is its mapped block.
        let freed = with_block_type!(layout.kind, B => unsafe {
            head.free::<B>(base, ptr, tag, self.owner, layout)
        });
        if freed.is_err() {
            cache::unpoison_slot(ptr, class);
        }
        freed?;
        head.count_free(size);
        Ok(())
    }

    /// # Safety
    /// `ptr` is a live allocation routed to `old` with `old_size` bytes.
    unsafe fn realloc_routed(
        &self,
        cache: Option<Pin<&SlabCache>>,
        ptr: NonNull<u8>,
        old: Route,
        old_size: usize,
        new: Route,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match (old, new) {
            (Route::Small(old_class), Route::Small(new_class)) if old_class == new_class => {
                // The free's tag checks, for a resize that stays in its slot: a pointer of another
                // class or another slab (lifetime class) is refused, not counted here.
                let layout = &Self::LAYOUTS[old_class.index()];
                let base_addr = ptr.as_ptr() as usize & !(layout.block_size() - 1);
                let base = NonNull::new(base_addr as *mut u8)
                    .ok_or(AllocError::NotAllocated(FreeError::NotASlot))?;
                // SAFETY: per the contract ptr is a live slot of this class, so `base` is its mapped
                // block; the tags are written when the block is mapped and never change.
                let (class, owner) = with_block_type!(layout.kind, B => unsafe {
                    let block = B::at(base);
                    (block.class(), block.owner())
                });
                if class != old_class.index() as u8 {
                    return Err(AllocError::NotAllocated(FreeError::ClassMismatch));
                }
                if owner != self.owner {
                    return Err(AllocError::NotAllocated(FreeError::OwnerMismatch));
                }
                self.count_resize_via(cache, old_class, old_size, new_size);
                Ok(NonNull::slice_from_raw_parts(ptr, old_class.slot_size()))
            }
            (Route::Medium { order }, Route::Medium { order: new_order }) if order == new_order => {
                // SAFETY: per the contract ptr is a live medium allocation of old_size bytes.
                unsafe { self.large.resize_medium(ptr, old_size, new_size, order) }
            }
            (Route::Huge { align }, Route::Huge { .. }) if align <= PAGE_SIZE => {
                // SAFETY: per the contract ptr is a live huge allocation of old_size bytes.
                unsafe { self.large.resize_huge(ptr, old_size, new_size, align) }
            }
            _ => {
                let fresh = self.alloc_via(cache, new, new_size, false)?;
                // SAFETY: both allocations are live and distinct; min(old, new) bytes fit in both.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        ptr.as_ptr(),
                        fresh.cast::<u8>().as_ptr(),
                        old_size.min(new_size),
                    );
                }
                // SAFETY: per the contract; on failure the new block is given back and the error reported.
                if let Err(error) = unsafe { self.free_via(cache, ptr, old, old_size) } {
                    // SAFETY: `fresh` was just allocated with this route and size.
                    let _ = unsafe { self.free_via(cache, fresh.cast(), new, new_size) };
                    return Err(AllocError::NotAllocated(error));
                }
                Ok(fresh)
            }
        }
    }
}

impl<C: SlabConfig> Drop for Slab<C> {
    /// Unmaps every block that holds no live allocation. Blocks that still hold live allocations stay
    /// mapped: their slots are in use by whoever allocated them.
    fn drop(&mut self) {
        self.orphan_caches();
        for class in SizeClass::all() {
            if let Err((error, ptr)) = self.drain_transfer(class) {
                crate::fatal::abort_with(format_args!(
                    "{error}: {ptr:p} ({} B class), found when a dropped slab took its slots back",
                    class.slot_size()
                ));
            }
            let layout = &Self::LAYOUTS[class.index()];
            let head = &self.heads[class.index()];
            // SAFETY: `&mut self`: no other thread uses the heads.
            with_block_type!(layout.kind, B => unsafe { head.release_empty::<B>(layout) });
        }
    }
}
