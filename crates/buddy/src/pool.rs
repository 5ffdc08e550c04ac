//! The seed-003 API: `BuddyPool`, a thread-safe buddy pool of `2^k` bytes mapped from the operating system.
//!
//! Sizes follow the seed: a pool of size 0 gets `2^DEFAULT_K` bytes; otherwise `k` is the smallest order that
//! holds the size, raised to `MIN_K`; `k` above `MAX_K` is an error. The smallest block is `2^SMALLEST_K` bytes.
//! The pool and its metadata are anonymous mappings, physically backed only as blocks are touched, so even a
//! large pool costs little until used. Unlike the seed, blocks carry no header (a free reads the block's order from
//! the live bits), so a request for exactly `2^k` bytes gets the whole pool.

use core::fmt;
use core::ptr::NonNull;

use crate::bits::ceil_log2;
use crate::os::{Mapping, OsError};
use crate::region::{Region, RegionFreeError, RegionStats};
use crate::sync::{self, Mutex};

/// Order of the pool made for a size of 0.
pub const DEFAULT_K: u32 = 30;
/// Smallest pool order.
pub const MIN_K: u32 = 20;
/// Largest pool order (inclusive).
pub const MAX_K: u32 = 48;
/// Order of the smallest block.
pub const SMALLEST_K: u32 = 6;

/// What went wrong in a pool operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Zero bytes were asked for.
    ZeroSize,
    /// The requested pool is larger than `2^MAX_K` bytes.
    PoolTooLarge,
    /// No free block is large enough for the request (including requests larger than the pool).
    OutOfMemory,
    /// The operating system refused the memory.
    Os(OsError),
    /// The pointer handed to `free` does not start a live block of this pool.
    InvalidFree(RegionFreeError),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("zero-byte request"),
            Self::PoolTooLarge => write!(f, "pool larger than 2^{MAX_K} bytes"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::Os(error) => write!(f, "the OS refused memory: {error}"),
            Self::InvalidFree(error) => write!(f, "invalid free: {error:?}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// The smallest order `k >= SMALLEST_K` with `2^k >= bytes` (the seed's `btok`). Returns `usize::BITS` for sizes
/// above `2^(usize::BITS - 1)`, where the seed looped forever.
pub const fn bytes_to_order(bytes: usize) -> u32 {
    let order = ceil_log2(bytes);
    if order < SMALLEST_K {
        SMALLEST_K
    } else {
        order
    }
}

/// The order of the pool built for `size` bytes: `DEFAULT_K` for 0, else `bytes_to_order(size)` raised to `MIN_K`,
/// or `PoolTooLarge` above `MAX_K`.
pub const fn pool_order(size: usize) -> Result<u32, PoolError> {
    if size == 0 {
        return Ok(DEFAULT_K);
    }
    let order = bytes_to_order(size);
    if order > MAX_K {
        Err(PoolError::PoolTooLarge)
    } else if order < MIN_K {
        Ok(MIN_K)
    } else {
        Ok(order)
    }
}

/// A thread-safe buddy pool of `2^k` bytes from the operating system, unmapped on drop.
#[derive(Debug)]
pub struct BuddyPool {
    region: Mutex<Region>,
    order: u32,
    // The region points into these two mappings; they are dropped after it (field order) and never moved out.
    _metadata: Mapping,
    memory: Mapping,
}

impl BuddyPool {
    /// Maps a pool for `size` bytes (see [`pool_order`]).
    pub fn new(size: usize) -> Result<Self, PoolError> {
        let order = pool_order(size)?;
        let len = 1usize << order;
        // Aligned to its own size: the whole pool is one block and every block is naturally aligned.
        let memory = Mapping::new_aligned(len, len).map_err(PoolError::Os)?;
        let words = Region::metadata_words(memory.ptr().as_ptr() as usize, len, SMALLEST_K, order)
            .map_err(|_| PoolError::OutOfMemory)?;
        let metadata_bytes = words.checked_mul(8).ok_or(PoolError::OutOfMemory)?;
        let metadata = Mapping::new_aligned(metadata_bytes, 8).map_err(PoolError::Os)?;
        // SAFETY: both mappings are fresh, disjoint, owned by the pool and live as long as the region (they are
        // dropped after it and never moved out of the pool); fresh anonymous mappings read as zero, so the
        // metadata is zeroed and is touched only where blocks are split.
        let region = unsafe {
            Region::with_metadata(
                memory.ptr(),
                len,
                SMALLEST_K,
                order,
                metadata.ptr().cast(),
                words,
                true,
            )
        }
        .map_err(|_| PoolError::OutOfMemory)?;
        Ok(Self {
            region: Mutex::new(region),
            order,
            _metadata: metadata,
            memory,
        })
    }

    /// Allocates a block of at least `size` bytes, aligned to its size.
    pub fn alloc(&self, size: usize) -> Result<NonNull<u8>, PoolError> {
        if size == 0 {
            return Err(PoolError::ZeroSize);
        }
        let order = bytes_to_order(size);
        if order > self.order {
            return Err(PoolError::OutOfMemory);
        }
        sync::lock(&self.region)
            .alloc(order)
            .ok_or(PoolError::OutOfMemory)
    }

    /// Frees the block that starts at `ptr`; its size is looked up.
    pub fn free(&self, ptr: NonNull<u8>) -> Result<(), PoolError> {
        sync::lock(&self.region)
            .free_unsized(ptr)
            .map_err(PoolError::InvalidFree)
    }

    /// Frees the block that starts at `ptr`, allocated for `size` bytes (faster: no lookup of the order).
    pub fn free_sized(&self, ptr: NonNull<u8>, size: usize) -> Result<(), PoolError> {
        let order = bytes_to_order(size);
        if size == 0 || order > self.order {
            return Err(PoolError::InvalidFree(RegionFreeError::BadOrder));
        }
        sync::lock(&self.region)
            .free(ptr, order)
            .map_err(PoolError::InvalidFree)
    }

    /// The pool's order `k` (it holds `2^k` bytes).
    pub const fn order(&self) -> u32 {
        self.order
    }

    /// The pool's size in bytes.
    pub const fn size(&self) -> usize {
        1 << self.order
    }

    /// Start address of the pool.
    pub fn base(&self) -> NonNull<u8> {
        self.memory.ptr()
    }

    /// Current accounting.
    pub fn stats(&self) -> RegionStats {
        sync::lock(&self.region).stats()
    }

    /// Runs the region's invariant checks (slow; for tests).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        sync::lock(&self.region).check_invariants()
    }
}
