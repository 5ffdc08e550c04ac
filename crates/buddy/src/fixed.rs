//! The seed-002 API: `BuddyAllocator<HEAP, MIN_BLOCK>`, a heap of `HEAP` bytes split into blocks of at least
//! `MIN_BLOCK` bytes.
//!
//! Unlike the seed, the heap is its own allocation aligned to `HEAP` (so every block is naturally aligned, and
//! `alloc::<T>` honours `T`'s alignment), and the metadata sits beside it, so the whole heap can be handed out as
//! one block and the allocator can be moved freely: nothing points into the struct itself.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use std::alloc;
use std::boxed::Box;
use std::vec;

use crate::bits::ceil_log2;
use crate::region::{Region, RegionFreeError, MIN_ORDER_FLOOR};

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// No free block is large enough (or the request exceeds the heap, or the system refused the heap itself).
    OutOfMemory,
    /// Zero bytes were asked for.
    ZeroAllocation,
}

/// Why a free failed. The allocator is unchanged when a free fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The block is not live: it was already freed (or never handed out).
    DoubleFree,
    /// The pointer lies in the heap but does not start a block.
    UnalignedFree,
    /// The pointer is null.
    NullPtrFree,
    /// The pointer lies outside the heap.
    FreeOutOfBounds,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutOfMemory => "out of memory",
            Self::ZeroAllocation => "zero-byte allocation",
        })
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DoubleFree => "double free",
            Self::UnalignedFree => "pointer does not start a block",
            Self::NullPtrFree => "null pointer freed",
            Self::FreeOutOfBounds => "pointer outside the heap",
        })
    }
}

impl std::error::Error for AllocError {}
impl std::error::Error for FreeError {}

/// A buddy allocator over its own heap of `HEAP` bytes, with blocks of `MIN_BLOCK` bytes and up.
///
/// `HEAP` and `MIN_BLOCK` must be powers of two with `MIN_BLOCK <= HEAP` (checked at compile time). A block holds
/// two links while it is free, so a `MIN_BLOCK` below 16 bytes (on 64-bit targets) is served with 16-byte blocks.
///
/// Sizes that are not powers of two are refused at compile time:
///
/// ```compile_fail
/// let heap = classalloc_buddy::BuddyAllocator::<1000, 8>::new(false);
/// ```
///
/// ```compile_fail
/// let heap = classalloc_buddy::BuddyAllocator::<1024, 24>::new(false);
/// ```
///
/// ```compile_fail
/// let heap = classalloc_buddy::BuddyAllocator::<1024, 2048>::new(false);
/// ```
pub struct BuddyAllocator<const HEAP: usize, const MIN_BLOCK: usize> {
    heap: NonNull<u8>,
    // Owned by `region`'s raw view; kept here so that it is freed with the allocator.
    _metadata: Box<[u64]>,
    region: Region,
    zero_initialized: bool,
    // The allocator owns the heap's bytes.
    _owns: PhantomData<u8>,
}

// SAFETY: the allocator exclusively owns its heap and metadata; nothing in it is tied to a thread.
unsafe impl<const HEAP: usize, const MIN_BLOCK: usize> Send for BuddyAllocator<HEAP, MIN_BLOCK> {}

impl<const HEAP: usize, const MIN_BLOCK: usize> fmt::Debug for BuddyAllocator<HEAP, MIN_BLOCK> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuddyAllocator")
            .field("heap", &self.heap)
            .field("heap_size", &HEAP)
            .field("min_block", &self.min_block_size())
            .field("total_allocated", &self.total_allocated())
            .finish()
    }
}

impl<const HEAP: usize, const MIN_BLOCK: usize> BuddyAllocator<HEAP, MIN_BLOCK> {
    const CHECKS: () = {
        assert!(HEAP.is_power_of_two(), "HEAP must be a power of two");
        assert!(
            MIN_BLOCK.is_power_of_two(),
            "MIN_BLOCK must be a power of two"
        );
        assert!(MIN_BLOCK <= HEAP, "MIN_BLOCK must not exceed HEAP");
        assert!(
            HEAP >= 1 << MIN_ORDER_FLOOR,
            "HEAP must hold at least one 16-byte block"
        );
        assert!(
            HEAP <= 1 << (usize::BITS - 2),
            "HEAP is too large to allocate"
        );
    };

    const MIN_ORDER: u32 = {
        let order = ceil_log2(MIN_BLOCK);
        if order < MIN_ORDER_FLOOR {
            MIN_ORDER_FLOOR
        } else {
            order
        }
    };

    const HEAP_ORDER: u32 = ceil_log2(HEAP);

    /// The heap's layout: `HEAP` bytes aligned to `HEAP`, so blocks are naturally aligned in absolute addresses.
    /// Evaluated at compile time: an impossible layout is a build error, not a runtime one.
    const HEAP_LAYOUT: Layout = match Layout::from_size_align(HEAP, HEAP) {
        Ok(layout) => layout,
        Err(_) => panic!("HEAP bytes aligned to HEAP is not a valid layout"),
    };

    /// A new allocator whose heap is fully free. With `zero_initialized`, the heap starts zeroed and every block
    /// is zeroed again when handed out.
    ///
    /// On allocation failure of the heap itself this calls [`std::alloc::handle_alloc_error`], like `Box::new`;
    /// use [`BuddyAllocator::try_new`] to get an error instead.
    pub fn new(zero_initialized: bool) -> Self {
        match Self::try_new(zero_initialized) {
            Ok(allocator) => allocator,
            Err(_) => alloc::handle_alloc_error(Self::HEAP_LAYOUT),
        }
    }

    /// A new allocator whose heap is fully free, or `OutOfMemory` if the heap cannot be obtained.
    pub fn try_new(zero_initialized: bool) -> Result<Self, AllocError> {
        let () = Self::CHECKS;
        let layout = Self::HEAP_LAYOUT;
        // SAFETY: `layout` has a non-zero size (`HEAP >= 1`).
        let raw = unsafe {
            if zero_initialized {
                alloc::alloc_zeroed(layout)
            } else {
                alloc::alloc(layout)
            }
        };
        let heap = NonNull::new(raw).ok_or(AllocError::OutOfMemory)?;
        let words = Region::metadata_words(
            heap.as_ptr() as usize,
            HEAP,
            Self::MIN_ORDER,
            Self::HEAP_ORDER,
        );
        let built = words.and_then(|words| {
            let mut metadata = vec![0u64; words].into_boxed_slice();
            let metadata_ptr = NonNull::from(&mut metadata[..]).cast::<u64>();
            // SAFETY: `heap` is a fresh allocation of `HEAP` bytes owned by the allocator being built and freed
            // only in `Drop`; `metadata` is a separate, zeroed, owned buffer of `words` words whose heap storage
            // does not move when the box is moved into the struct.
            let region = unsafe {
                Region::with_metadata(
                    heap,
                    HEAP,
                    Self::MIN_ORDER,
                    Self::HEAP_ORDER,
                    metadata_ptr,
                    words,
                    true,
                )
            }?;
            Ok((metadata, region))
        });
        match built {
            Ok((metadata, region)) => Ok(Self {
                heap,
                _metadata: metadata,
                region,
                zero_initialized,
                _owns: PhantomData,
            }),
            Err(_) => {
                // No region was built, so nothing in the heap was poisoned.
                // SAFETY: `heap` was allocated above with `layout` and nothing refers to it.
                unsafe { alloc::dealloc(heap.as_ptr(), layout) };
                Err(AllocError::OutOfMemory)
            }
        }
    }

    /// Allocates a block of at least `size` bytes, aligned to its own size.
    pub fn alloc_bytes(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.alloc_aligned(size, 1)
    }

    /// Allocates a block that fits a `T`, aligned for `T`. Zero-sized types get `ZeroAllocation`.
    pub fn alloc<T>(&mut self) -> Result<NonNull<T>, AllocError> {
        self.alloc_aligned(size_of::<T>(), align_of::<T>())
            .map(NonNull::cast)
    }

    fn alloc_aligned(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        if size == 0 {
            return Err(AllocError::ZeroAllocation);
        }
        // Blocks are aligned to their size in absolute addresses, so a block of at least `align` bytes is aligned.
        let block = self
            .region
            .alloc_bytes(size, align)
            .ok_or(AllocError::OutOfMemory)?;
        if self.zero_initialized {
            let order = self
                .region
                .order_for(size, align)
                .unwrap_or(Self::HEAP_ORDER);
            // SAFETY: the block is `2^order` bytes of the heap, just handed out and used by no one else yet.
            unsafe { block.as_ptr().write_bytes(0, 1usize << order) };
        }
        Ok(block)
    }

    /// Frees the block that starts at `ptr`.
    pub fn free<T>(&mut self, ptr: *mut T) -> Result<(), FreeError> {
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(FreeError::NullPtrFree)?;
        self.region.free_unsized(ptr).map_err(|error| match error {
            RegionFreeError::OutOfBounds => FreeError::FreeOutOfBounds,
            RegionFreeError::Misaligned | RegionFreeError::InteriorPointer { .. } => {
                FreeError::UnalignedFree
            }
            RegionFreeError::NotAllocated
            | RegionFreeError::BadOrder
            | RegionFreeError::WrongOrder { .. } => FreeError::DoubleFree,
        })
    }

    /// Frees the block that starts at `ptr`.
    pub fn free_nonnull<T>(&mut self, ptr: NonNull<T>) -> Result<(), FreeError> {
        self.free(ptr.as_ptr())
    }

    /// Frees every block at once.
    pub fn free_all(&mut self) {
        if self.zero_initialized {
            // Free blocks may be poisoned for AddressSanitizer; the heap is about to be all free anyway.
            self.region.unpoison_all();
            // SAFETY: every block is being freed; the heap is owned by the allocator, and `&mut self` means no
            // borrow of it is alive.
            unsafe { self.heap.as_ptr().write_bytes(0, HEAP) };
        }
        self.region.reset();
    }

    /// Bytes in free blocks.
    pub fn total_free(&self) -> usize {
        self.region.available_bytes()
    }

    /// Bytes in live blocks (whole blocks, so a 9-byte request on 8-byte blocks counts 16).
    pub fn total_allocated(&self) -> usize {
        self.region.allocated_bytes()
    }

    /// The heap's size, `HEAP`.
    pub const fn heap_size(&self) -> usize {
        HEAP
    }

    /// The smallest block actually used (`MIN_BLOCK`, or 16 bytes if `MIN_BLOCK` is smaller).
    pub const fn min_block_size(&self) -> usize {
        1 << Self::MIN_ORDER
    }

    /// The core region underneath, for inspection.
    pub fn region(&self) -> &Region {
        &self.region
    }
}

impl<const HEAP: usize, const MIN_BLOCK: usize> Drop for BuddyAllocator<HEAP, MIN_BLOCK> {
    fn drop(&mut self) {
        self.region.unpoison_all();
        // SAFETY: `heap` was allocated in `try_new` with this layout and is freed only here.
        unsafe { alloc::dealloc(self.heap.as_ptr(), Self::HEAP_LAYOUT) };
    }
}
