//! The slab's side of the thread caches: the cached calls (the fast path), refill and flush, and the
//! registry of attached caches that statistics, `release` and `Drop` walk (see `crate::cache` for the
//! invariants). Lock order: registry, then head, then block.

use super::{route_layout, route_size, Route, Slab};
use crate::block::with_block_type;
use crate::cache::{self, state, SlabCache};
use crate::checked;
use crate::class::SizeClass;
use crate::error::{AllocError, FreeError};
use crate::geometry::SlabConfig;
use crate::head::Offer;
use crate::sync::{
    acquire, loom_const_fn, new_lock, read, write, yield_now, Lock, MutexGuard, Ordering,
    UnsafeCell,
};
use core::alloc::Layout;
use core::pin::Pin;
use core::ptr::{self, NonNull};

/// The caches attached to one slab: an intrusive list through the caches' links, under one lock.
pub(super) struct Registry {
    lock: Lock,
    first: UnsafeCell<*const SlabCache>,
}

// SAFETY: the list is only read or changed under `lock`; the caches it points to are Sync.
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}

impl Registry {
    loom_const_fn! {
        pub(super) fn new() -> Self {
            Self {
                lock: new_lock(),
                first: UnsafeCell::new(ptr::null()),
            }
        }
    }

    /// Calls `visit` on every listed cache; `visit` may unlist the cache it is given.
    ///
    /// # Safety
    /// `_guard` holds this registry's lock.
    unsafe fn for_each(&self, _guard: &MutexGuard<'_, ()>, mut visit: impl FnMut(&SlabCache)) {
        // SAFETY: under the lock every listed cache is alive (it unlists itself, under the lock, before
        // its memory goes) and its links are ours to read.
        unsafe {
            let mut cursor = read(&self.first);
            while let Some(cache) = cursor.as_ref() {
                cursor = cache.next();
                visit(cache);
            }
        }
    }

    /// # Safety
    /// The lock is held and `cache` is not listed.
    unsafe fn link(&self, cache: &SlabCache) {
        // SAFETY: per the contract.
        unsafe {
            let first = read(&self.first);
            cache.set_links(ptr::null(), first);
            if let Some(first) = first.as_ref() {
                first.set_prev(cache);
            }
            write(&self.first, cache as *const SlabCache);
        }
    }

    /// # Safety
    /// The lock is held and `cache` is listed.
    unsafe fn unlink(&self, cache: &SlabCache) {
        // SAFETY: per the contract; neighbours are listed, hence alive.
        unsafe {
            let (prev, next) = (cache.prev(), cache.next());
            match prev.as_ref() {
                Some(prev) => prev.set_next(next),
                None => write(&self.first, next),
            }
            if let Some(next) = next.as_ref() {
                next.set_prev(prev);
            }
            cache.set_links(ptr::null(), ptr::null());
        }
    }

    /// The listed caches' net allocations in `class`, with the lock still held so that the caller can read
    /// the head's counters before any cache folds its counts into them.
    pub(super) fn live(&self, class: SizeClass) -> (usize, usize, MutexGuard<'_, ()>) {
        let guard = acquire(&self.lock);
        let (mut objects, mut bytes) = (0usize, 0usize);
        // SAFETY: the lock is held.
        unsafe {
            self.for_each(&guard, |cache| {
                let (o, b) = cache.live(class);
                objects = objects.wrapping_add(o);
                bytes = bytes.wrapping_add(b);
            })
        };
        (objects, bytes, guard)
    }

    /// Makes every listed cache forget its slots and counts (its slab is releasing all its memory); the
    /// lock stays held until the caller drops the guard.
    ///
    /// # Safety
    /// No owner of a listed cache is inside a cached call of the slab (owners that are detaching wait for
    /// the lock).
    pub(super) unsafe fn forget_all(&self) -> MutexGuard<'_, ()> {
        let guard = acquire(&self.lock);
        // SAFETY: the lock is held and, per the contract, no owner touches its bins.
        unsafe {
            self.for_each(&guard, |cache| {
                cache.forget_all();
                cache.clear_live();
            })
        };
        guard
    }
}

impl<C: SlabConfig> Slab<C> {
    #[inline(always)]
    fn address(&self) -> usize {
        self as *const Self as usize
    }

    // ----- the cached Layout API -------------------------------------------------------------------

    /// As [`alloc`](Self::alloc), through `cache`: the common case pops a slot from the cache's bin and
    /// takes no lock. The cache attaches to this slab on first use; a cache attached to another slab
    /// still works (the call takes the locked path).
    #[inline(always)]
    pub fn alloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // The fast path is written out here, small enough to inline into a global allocator's `alloc`
        // without a stack frame; everything else (routing errors, large sizes, refills) is outlined.
        // The outlined call routes again and tries the bin once more before refilling: calling the
        // refill from here instead keeps more values live in the inlined code, and measured slower
        // (churn of 16 B 5.2 -> 6.3 ns, mixed 35 -> 39 ns), so the repeat stays in the cold path.
        if let Some((slot, class)) = self.pop_for_layout(cache, layout) {
            return Ok(NonNull::slice_from_raw_parts(slot, class.slot_size()));
        }
        self.alloc_cached_outlined(cache, layout)
    }

    /// The fast path shared by `alloc_cached` and `alloc_cached_ptr`: a slot from the bin of the layout's
    /// class, with that class.
    #[inline(always)]
    fn pop_for_layout(
        &self,
        cache: Pin<&SlabCache>,
        layout: Layout,
    ) -> Option<(NonNull<u8>, SizeClass)> {
        let class = SizeClass::for_layout(layout.size(), layout.align())?;
        let slot = self.pop_cached(cache, class, layout.size())?;
        Some((slot, class))
    }

    /// As [`alloc_cached`](Self::alloc_cached), returning only the address, `None` on every error: what a
    /// `GlobalAlloc` returns. The fast path then carries neither the slot size nor an error value out.
    #[inline(always)]
    pub fn alloc_cached_ptr(&self, cache: Pin<&SlabCache>, layout: Layout) -> Option<NonNull<u8>> {
        if let Some((slot, _)) = self.pop_for_layout(cache, layout) {
            return Some(slot);
        }
        self.alloc_cached_outlined(cache, layout)
            .ok()
            .map(NonNull::cast)
    }

    #[inline(never)]
    fn alloc_cached_outlined(
        &self,
        cache: Pin<&SlabCache>,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let route = route_layout(layout.size(), layout.align())?;
        self.alloc_via(Some(cache), route, layout.size(), false)
    }

    /// As [`alloc_zeroed`](Self::alloc_zeroed), through `cache`.
    #[inline]
    pub fn alloc_zeroed_cached(
        &self,
        cache: Pin<&SlabCache>,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let route = route_layout(layout.size(), layout.align())?;
        self.alloc_via(Some(cache), route, layout.size(), true)
    }

    /// As [`dealloc`](Self::dealloc), through `cache`: the common case pushes the slot on the cache's bin
    /// without reading any metadata (the layout gives the class) and takes no lock. A slot freed by
    /// another thread than the one that allocated it simply joins this thread's cache.
    ///
    /// In this fast path a free that does not match its allocation is not detected at once: it is found
    /// (and reported by the free that triggered the flush) when the cache gives the slot back to its block.
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    #[inline(always)]
    pub unsafe fn dealloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> Result<(), FreeError> {
        if !checked::CHECKED {
            if let Some(class) = SizeClass::for_layout(layout.size(), layout.align()) {
                // SAFETY: the caller's contract: `ptr` is a live slot of `class` of this slab.
                if unsafe { self.push_cached(cache, ptr, class, layout.size()) } {
                    return Ok(());
                }
            }
        }
        // SAFETY: forwarded contract.
        unsafe { self.dealloc_cached_outlined(cache, ptr, layout) }
    }

    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    #[inline(never)]
    unsafe fn dealloc_cached_outlined(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        layout: Layout,
    ) -> Result<(), FreeError> {
        let route = route_layout(layout.size(), layout.align()).map_err(|_| FreeError::ZeroSize)?;
        // SAFETY: forwarded contract.
        unsafe { self.free_via(Some(cache), ptr, route, layout.size()) }
    }

    /// As [`realloc`](Self::realloc), through `cache`.
    ///
    /// # Safety
    /// As for [`realloc`](Self::realloc).
    pub unsafe fn realloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old = route_layout(layout.size(), layout.align())
            .map_err(|_| AllocError::NotAllocated(FreeError::ZeroSize))?;
        let new = route_layout(new_size, layout.align())?;
        // SAFETY: forwarded contract.
        unsafe { self.realloc_routed(Some(cache), ptr, old, layout.size(), new, new_size) }
    }

    // ----- the cached size-only API ----------------------------------------------------------------

    /// As [`malloc`](Self::malloc), through `cache`.
    #[inline]
    pub fn malloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let route = route_size(size)?;
        self.alloc_via(Some(cache), route, size, false)
            .map(|block| block.cast())
    }

    /// As [`calloc`](Self::calloc), through `cache`.
    #[inline]
    pub fn calloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let route = route_size(size)?;
        self.alloc_via(Some(cache), route, size, true)
            .map(|block| block.cast())
    }

    /// As [`free`](Self::free), through `cache`.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    #[inline]
    pub unsafe fn free_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        size: usize,
    ) -> Result<(), FreeError> {
        let route = route_size(size).map_err(|_| FreeError::ZeroSize)?;
        // SAFETY: forwarded contract.
        unsafe { self.free_via(Some(cache), ptr, route, size) }
    }

    /// As [`remalloc`](Self::remalloc), through `cache`.
    ///
    /// # Safety
    /// As for [`remalloc`](Self::remalloc).
    pub unsafe fn remalloc_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let old =
            route_size(old_size).map_err(|_| AllocError::NotAllocated(FreeError::ZeroSize))?;
        let new = route_size(new_size)?;
        // SAFETY: forwarded contract.
        unsafe { self.realloc_routed(Some(cache), ptr, old, old_size, new, new_size) }
            .map(|block| block.cast())
    }

    /// Gives every slot cached in `cache` back to its block now (it stays attached), and so do the
    /// transfer caches of the classes it touched, so that empty blocks can go back to the OS; a cache
    /// attached to another slab is left alone.
    pub fn flush_cache(&self, cache: Pin<&SlabCache>) -> Result<(), FreeError> {
        let cache = cache.get_ref();
        if !cache.serves(self.address()) {
            return Ok(());
        }
        let mut outcome = Ok(());
        // SAFETY: the owner calls this with its own cache.
        for class in unsafe { cache.touched_classes() } {
            // SAFETY: the owner (the only caller that can hold a pinned reference it is allowed to use
            // for cached calls) touches its bins; the slots are this slab's slots of `class`.
            if let Err((error, _)) = unsafe { self.flush_class(cache, class) } {
                outcome = outcome.and(Err(error));
            }
            if let Err((error, _)) = self.drain_transfer(class) {
                outcome = outcome.and(Err(error));
            }
        }
        outcome
    }

    // ----- the shared cached paths -----------------------------------------------------------------

    /// Allocates for `route`, through `cache` if given.
    #[inline(always)]
    pub(super) fn alloc_via(
        &self,
        cache: Option<Pin<&SlabCache>>,
        route: Route,
        size: usize,
        zeroed: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match (cache, route) {
            (Some(cache), Route::Small(class)) => {
                let slot = self.alloc_small_cached(cache, class, size, zeroed)?;
                Ok(NonNull::slice_from_raw_parts(slot, class.slot_size()))
            }
            _ => self
                .alloc_routed(route, size, zeroed)
                .map(|(block, _)| block),
        }
    }

    /// Frees for `route`, through `cache` if given.
    ///
    /// # Safety
    /// `ptr` is a live allocation of this slab routed to `route` with `size` bytes, not used afterwards.
    #[inline(always)]
    pub(super) unsafe fn free_via(
        &self,
        cache: Option<Pin<&SlabCache>>,
        ptr: NonNull<u8>,
        route: Route,
        size: usize,
    ) -> Result<(), FreeError> {
        match (cache, route) {
            // SAFETY: forwarded contract.
            (Some(cache), Route::Small(class)) => unsafe {
                self.free_small_cached(cache, ptr, class, size)
            },
            // SAFETY: forwarded contract.
            _ => unsafe { self.free_routed(ptr, route, size) },
        }
    }

    /// Records an in-place resize within `class`, on the cache if it serves this slab.
    pub(super) fn count_resize_via(
        &self,
        cache: Option<Pin<&SlabCache>>,
        class: SizeClass,
        old: usize,
        new: usize,
    ) {
        match cache {
            Some(cache) if cache.serves(self.address()) => cache.count_resize(class, old, new),
            _ => self.heads[class.index()].count_resize(old, new),
        }
    }

    /// The fast path of an allocation: a slot from the bin, no lock; `None` when the cache does not serve
    /// this slab yet or the bin is empty.
    #[inline(always)]
    fn pop_cached(
        &self,
        cache: Pin<&SlabCache>,
        class: SizeClass,
        size: usize,
    ) -> Option<NonNull<u8>> {
        if !cache.serves(self.address()) {
            return None;
        }
        // SAFETY: the cache serves this slab and we are inside its cached call, on its owner's thread
        // (a pinned cache is only passed by its owner).
        let slot = unsafe { cache.get_ref().pop(class, size) }?;
        if checked::CHECKED {
            self.check_alloc(slot, class);
        }
        Some(slot)
    }

    /// The fast path of a free: the slot joins the bin, no lock, no metadata read; `false` (nothing done)
    /// when the cache does not serve this slab yet or the bin is full. Does not check the free.
    ///
    /// # Safety
    /// `ptr` is a live slot of `class` of this slab, not used afterwards.
    #[inline(always)]
    unsafe fn push_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        class: SizeClass,
        size: usize,
    ) -> bool {
        // SAFETY: the cache serves this slab and its owner is calling; capacity 0 classes never push
        // (the bin is "full" at 0 slots).
        cache.serves(self.address()) && unsafe { cache.get_ref().push(class, ptr, size) }
    }

    /// An allocation through the cache: a slot from the bin, else a refill.
    #[inline(always)]
    fn alloc_small_cached(
        &self,
        cache: Pin<&SlabCache>,
        class: SizeClass,
        size: usize,
        zeroed: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        if let Some(slot) = self.pop_cached(cache, class, size) {
            if zeroed {
                // SAFETY: the slot is ours and slot_size bytes long.
                unsafe { slot.as_ptr().write_bytes(0, class.slot_size()) };
            }
            return Ok(slot);
        }
        self.alloc_cached_slow(cache, class, size, zeroed)
    }

    /// The bin is empty (refill it under the locks), or the cache cannot serve this class or slab.
    #[cold]
    #[inline(never)]
    fn alloc_cached_slow(
        &self,
        cache: Pin<&SlabCache>,
        class: SizeClass,
        size: usize,
        zeroed: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        if cache::capacity(class) == 0 || !self.attach(cache) {
            return self
                .alloc_routed(Route::Small(class), size, zeroed)
                .map(|(block, _)| block.cast());
        }
        let layout = &Self::LAYOUTS[class.index()];
        let head = &self.heads[class.index()];
        let tag = class.index() as u8;
        let batch = cache::refill_batch(class);
        let (first, count) = with_block_type!(layout.kind, B => head.refill::<B>(tag, self.owner, layout, batch, &self.transfer))?;
        let cache = cache.get_ref();
        // SAFETY: we are the owner inside a cached call; the list holds `count` fresh or freed slots of
        // `class` just taken for this cache, and the bin was empty.
        unsafe {
            cache.fill(class, first.as_ptr(), count);
            let slot = cache
                .pop(class, size)
                .expect("a refill takes at least one slot");
            if checked::CHECKED {
                self.check_alloc(slot, class);
            }
            if zeroed {
                slot.as_ptr().write_bytes(0, class.slot_size());
            }
            Ok(slot)
        }
    }

    /// A free through the cache: checked (in checked builds), then into the bin, else a spill.
    ///
    /// # Safety
    /// `ptr` is a live slot of `class` of this slab, not used afterwards.
    #[inline(always)]
    unsafe fn free_small_cached(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        class: SizeClass,
        size: usize,
    ) -> Result<(), FreeError> {
        if checked::CHECKED {
            self.check_free(ptr, class)?;
        }
        // SAFETY: forwarded contract.
        if unsafe { self.push_cached(cache, ptr, class, size) } {
            return Ok(());
        }
        // SAFETY: forwarded contract.
        unsafe { self.free_cached_slow(cache, ptr, class, size) }
    }

    /// The bin is full (give it away, then cache the slot), or the cache cannot serve this class or slab.
    /// The whole bin goes: detaching it costs no walk, and the next refill from the blocks takes at most half
    /// a bin, so a thread hovering at the boundary does not flush and refill on every call.
    ///
    /// # Safety
    /// As for `free_small_cached`.
    #[cold]
    #[inline(never)]
    unsafe fn free_cached_slow(
        &self,
        cache: Pin<&SlabCache>,
        ptr: NonNull<u8>,
        class: SizeClass,
        size: usize,
    ) -> Result<(), FreeError> {
        if cache::capacity(class) == 0 || !self.attach(cache) {
            // SAFETY: forwarded contract; the free was already checked.
            return unsafe { self.free_small_locked(ptr, class, size) };
        }
        let cache = cache.get_ref();
        // SAFETY: the owner inside a cached call; the bin holds this slab's slots of `class`. After the
        // spill the bin is empty, so the push succeeds.
        unsafe {
            let flushed = self.spill_class(cache, class);
            let pushed = cache.push(class, ptr, size);
            debug_assert!(pushed);
            flushed.map_err(|(error, _)| error)
        }
    }

    /// Gives `class`'s whole bin away: to the head's transfer cache if it has room (one step, no walk),
    /// else back to the blocks. When the bins refused for lack of room add up to several times the limit
    /// (the slab's, or the class's own when lower), frees are outrunning allocations by far (see
    /// [`TransferBudget`](crate::head::TransferBudget)): every transfer cache of the slab is drained too.
    ///
    /// # Safety
    /// As for `flush_class`.
    unsafe fn spill_class(
        &self,
        cache: &SlabCache,
        class: SizeClass,
    ) -> Result<(), (FreeError, NonNull<u8>)> {
        // SAFETY: per the contract.
        let (first, taken) = unsafe { cache.take_all(class) };
        let Some(first) = NonNull::new(first) else {
            return Ok(());
        };
        let layout = &Self::LAYOUTS[class.index()];
        // SAFETY: the list holds `taken` free slots of this slab's class `class`, which we give up.
        let offer =
            unsafe { self.heads[class.index()].give_batch(first, taken, layout, &self.transfer) };
        match offer {
            Offer::Kept => Ok(()),
            // SAFETY: as above; the offer left the slots with us.
            Offer::NotABatch => unsafe { self.return_to_blocks(class, first.as_ptr()) },
            Offer::NoRoom { drain_all } => {
                // SAFETY: as above.
                let returned = unsafe { self.return_to_blocks(class, first.as_ptr()) };
                if drain_all {
                    returned.and(self.drain_all_transfers())
                } else {
                    returned
                }
            }
        }
    }

    /// Gives the slots of every transfer cache of the slab back to their blocks; the first error found.
    fn drain_all_transfers(&self) -> Result<(), (FreeError, NonNull<u8>)> {
        let mut outcome = Ok(());
        for class in SizeClass::all() {
            if self.transfer.held() == 0 {
                break;
            }
            outcome = outcome.and(self.drain_transfer(class));
        }
        outcome
    }

    /// Gives the slots of `class`'s transfer cache back to their blocks.
    pub(super) fn drain_transfer(&self, class: SizeClass) -> Result<(), (FreeError, NonNull<u8>)> {
        // Most calls find every transfer cache empty: no head lock then. (A batch left concurrently may
        // be missed; the callers only need what was left before they began.)
        if self.transfer.held() == 0 {
            return Ok(());
        }
        let layout = &Self::LAYOUTS[class.index()];
        let head = &self.heads[class.index()];
        let tag = class.index() as u8;
        // SAFETY: the layout is the class's.
        with_block_type!(layout.kind, B => unsafe {
            head.drain_transfer::<B>(tag, self.owner, layout, &self.transfer)
        })
    }

    /// Gives every slot of `class`'s bin back to its block.
    ///
    /// # Safety
    /// The caller may touch the bins (see `SlabCache::take_all`), which hold slots of this slab.
    unsafe fn flush_class(
        &self,
        cache: &SlabCache,
        class: SizeClass,
    ) -> Result<(), (FreeError, NonNull<u8>)> {
        // SAFETY: per the contract; the list holds slots of this slab's class `class`, freed by their
        // users.
        unsafe {
            let (first, taken) = cache.take_all(class);
            if taken == 0 {
                return Ok(());
            }
            self.return_to_blocks(class, first)
        }
    }

    /// Returns a list of free slots (linked through their first words, null-terminated) to their blocks.
    ///
    /// # Safety
    /// Every listed slot is a slot of this slab's class `class`, freed by its user and given up.
    unsafe fn return_to_blocks(
        &self,
        class: SizeClass,
        first: *mut u8,
    ) -> Result<(), (FreeError, NonNull<u8>)> {
        let layout = &Self::LAYOUTS[class.index()];
        let head = &self.heads[class.index()];
        let tag = class.index() as u8;
        // SAFETY: per the contract.
        with_block_type!(layout.kind, B => unsafe { head.flush::<B>(first, tag, self.owner, layout) })
    }

    // ----- attach, detach, orphan ------------------------------------------------------------------

    /// Makes `cache` serve this slab if it serves none; whether it now serves this slab.
    #[cold]
    #[inline(never)]
    fn attach(&self, cache: Pin<&SlabCache>) -> bool {
        let cache = cache.get_ref();
        if cache.serves(self.address()) {
            return true;
        }
        // Acquire: a slab that orphaned the cache has finished with its bins and links.
        if cache.state().load(Ordering::Acquire) != state::DETACHED {
            return false;
        }
        // Before any lock: the check may register a thread-local destructor, which may allocate.
        if !cache.may_attach() {
            return false;
        }
        let _registry = acquire(&self.caches.lock);
        // SAFETY: the registry lock is held and the cache is unlisted (DETACHED); the cache is pinned, so
        // it stays at this address until its drop detaches it.
        unsafe {
            self.caches.link(cache);
            cache.set_detach(Some(Self::detach_routine));
        }
        cache
            .slab_address()
            .store(self.address(), Ordering::Relaxed);
        cache.state().store(state::ATTACHED, Ordering::Release);
        true
    }

    /// A cache's owner leaving: its slots go back, its counts fold into the heads, it is unlisted.
    ///
    /// # Safety
    /// `slab` is the address of a live `Slab<C>` that `cache` is attached to, and the cache is DETACHING.
    unsafe fn detach_routine(slab: usize, cache: &SlabCache) {
        // SAFETY: per the contract the slab is alive: its drop waits for DETACHING caches to unlist.
        let slab = unsafe { &*(slab as *const Self) };
        let _registry = acquire(&slab.caches.lock);
        // SAFETY: the registry lock is held, the cache is listed, and only its owner (us) uses its bins.
        unsafe {
            slab.take_back(cache);
            slab.caches.unlink(cache);
        }
        cache.slab_address().store(0, Ordering::Relaxed);
        cache.state().store(state::DETACHED, Ordering::Release);
    }

    /// Empties `cache` into this slab and folds its counts into the heads.
    ///
    /// # Safety
    /// The registry lock is held, `cache` is listed, and its owner is not using it.
    unsafe fn take_back(&self, cache: &SlabCache) {
        // SAFETY: per the contract.
        for class in unsafe { cache.touched_classes() } {
            if cache::capacity(class) > 0 {
                // SAFETY: per the contract.
                // A thread leaving (or a slab dropped) gives back what its bins and the transfer cache
                // hold, so that a program whose threads freed everything gets its memory back.
                let flushed = unsafe { self.flush_class(cache, class) }
                    .and_then(|()| self.drain_transfer(class));
                if let Err((error, ptr)) = flushed {
                    // No caller to return the error to (a thread is exiting or a slab is dropped).
                    crate::fatal::abort_with(format_args!(
                        "{error}: {ptr:p} ({} B class), found when a thread cache gave its slots back",
                        class.slot_size()
                    ));
                }
            }
            let (objects, bytes) = cache.live(class);
            if (objects, bytes) != (0, 0) {
                self.heads[class.index()].absorb(objects, bytes);
            }
        }
        // SAFETY: per the contract.
        unsafe { cache.clear_live() };
    }

    /// Takes back the slots of every attached cache before the slab goes; owners that are detaching at
    /// that moment are waited for.
    pub(super) fn orphan_caches(&mut self) {
        loop {
            let registry = acquire(&self.caches.lock);
            let mut waiting = false;
            // SAFETY: the lock is held; `&mut self` keeps every owner out of this slab's cached calls, and a
            // cache we move to ORPHANING is one whose owner cannot start detaching until we are done.
            unsafe {
                self.caches.for_each(&registry, |cache| {
                    let claimed = cache.state().compare_exchange(
                        state::ATTACHED,
                        state::ORPHANING,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    );
                    if claimed.is_err() {
                        // DETACHING: its owner waits for this lock to unlist itself.
                        waiting = true;
                        return;
                    }
                    self.take_back(cache);
                    self.caches.unlink(cache);
                    cache.slab_address().store(0, Ordering::Relaxed);
                    cache.state().store(state::DETACHED, Ordering::Release);
                })
            };
            drop(registry);
            if !waiting {
                return;
            }
            yield_now();
        }
    }
}
