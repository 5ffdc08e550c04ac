//! The seed-004 API: page allocation a la Linux. `alloc_pages(order)` hands out `2^order` pages of 4 KiB
//! (orders 0 to 10 by default); when every chunk is exhausted the heap grows by another chunk of `2^max_order`
//! pages, each chunk its own buddy region (the seed's planned, unbuilt next step).

use core::fmt;
use core::ptr::NonNull;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use crate::os::{Mapping, OsError};
use crate::region::{BlockInfo, Region, RegionFreeError};

/// Log2 of the default page size (4 KiB).
pub const DEFAULT_PAGE_SHIFT: u32 = 12;
/// Default largest order: blocks of up to `2^10` pages (4 MiB chunks).
pub const DEFAULT_MAX_ORDER: u32 = 10;

/// What went wrong in a page operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// The order is above the heap's maximum order.
    OrderTooLarge,
    /// The configuration is unusable (page size below 16 bytes or chunk size overflowing the address space).
    BadConfig,
    /// The heap reached its chunk limit and every chunk is exhausted.
    ChunkLimitReached,
    /// The operating system refused a new chunk.
    Os(OsError),
    /// The pointer does not lie in any chunk of this heap.
    ForeignPointer,
    /// The pointer lies in a chunk but does not start a live block of the given order.
    InvalidFree(RegionFreeError),
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OrderTooLarge => f.write_str("order above the heap's maximum"),
            Self::BadConfig => f.write_str("unusable page heap configuration"),
            Self::ChunkLimitReached => f.write_str("chunk limit reached"),
            Self::Os(error) => write!(f, "the OS refused a chunk: {error}"),
            Self::ForeignPointer => f.write_str("pointer not from this heap"),
            Self::InvalidFree(error) => write!(f, "invalid free: {error:?}"),
        }
    }
}

impl std::error::Error for PageError {}

/// One chunk: `2^max_order` pages, aligned to their size, with the region managing them.
#[derive(Debug)]
struct Chunk {
    region: Region,
    // The region points into both; they are dropped after it and their storage never moves.
    _metadata: Box<[u64]>,
    memory: Mapping,
}

impl Chunk {
    fn base(&self) -> usize {
        self.memory.ptr().as_ptr() as usize
    }
}

/// A page allocator that grows by whole chunks.
#[derive(Debug)]
pub struct PageHeap {
    page_shift: u32,
    max_order: u32,
    chunk_limit: usize,
    /// Sorted by base address, so a free finds its chunk by binary search.
    chunks: Vec<Chunk>,
    /// Index (in `chunks`) of the chunk that served the last allocation: it is tried first.
    last_used: usize,
}

/// Statistics of a page heap, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageStats {
    /// Number of chunks mapped.
    pub chunks: usize,
    /// Pages in all chunks.
    pub total_pages: usize,
    /// Pages handed out.
    pub allocated_pages: usize,
    /// Pages free.
    pub free_pages: usize,
}

impl Default for PageHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl PageHeap {
    /// A heap of 4 KiB pages, orders 0 to 10, growing without limit. No memory is mapped until the first
    /// allocation.
    pub const fn new() -> Self {
        Self {
            page_shift: DEFAULT_PAGE_SHIFT,
            max_order: DEFAULT_MAX_ORDER,
            chunk_limit: usize::MAX,
            chunks: Vec::new(),
            last_used: 0,
        }
    }

    /// A heap of `2^page_shift`-byte pages, orders `0..=max_order`, with at most `chunk_limit` chunks.
    pub fn with_config(
        page_shift: u32,
        max_order: u32,
        chunk_limit: usize,
    ) -> Result<Self, PageError> {
        let chunk_shift = page_shift
            .checked_add(max_order)
            .filter(|&shift| shift < usize::BITS - 2)
            .ok_or(PageError::BadConfig)?;
        if page_shift < crate::region::MIN_ORDER_FLOOR || chunk_shift >= crate::region::ORDER_LIMIT
        {
            return Err(PageError::BadConfig);
        }
        Ok(Self {
            page_shift,
            max_order,
            chunk_limit,
            chunks: Vec::new(),
            last_used: 0,
        })
    }

    /// Bytes per page.
    pub const fn page_size(&self) -> usize {
        1 << self.page_shift
    }

    /// Largest order.
    pub const fn max_order(&self) -> u32 {
        self.max_order
    }

    /// Bytes per chunk.
    pub const fn chunk_size(&self) -> usize {
        1 << (self.page_shift + self.max_order)
    }

    /// Hands out `2^order` contiguous pages, aligned to their size, growing the heap if every chunk is full.
    pub fn alloc_pages(&mut self, order: u32) -> Result<NonNull<u8>, PageError> {
        if order > self.max_order {
            return Err(PageError::OrderTooLarge);
        }
        let block_order = order + self.page_shift;
        if let Some(chunk) = self.chunks.get_mut(self.last_used) {
            if let Some(block) = chunk.region.alloc(block_order) {
                return Ok(block);
            }
        }
        for (index, chunk) in self.chunks.iter_mut().enumerate() {
            if let Some(block) = chunk.region.alloc(block_order) {
                self.last_used = index;
                return Ok(block);
            }
        }
        let index = self.grow()?;
        self.last_used = index;
        // A fresh chunk is one free block of the maximum order, so any order up to it fits.
        self.chunks[index]
            .region
            .alloc(block_order)
            .ok_or(PageError::ChunkLimitReached)
    }

    /// Maps one more chunk and returns its index.
    #[cold]
    fn grow(&mut self) -> Result<usize, PageError> {
        if self.chunks.len() >= self.chunk_limit {
            return Err(PageError::ChunkLimitReached);
        }
        let size = self.chunk_size();
        let memory = Mapping::new_aligned(size, size).map_err(PageError::Os)?;
        let base = memory.ptr();
        let max = self.page_shift + self.max_order;
        let words = Region::metadata_words(base.as_ptr() as usize, size, self.page_shift, max)
            .map_err(|_| PageError::BadConfig)?;
        let mut metadata = vec![0u64; words].into_boxed_slice();
        let metadata_ptr = NonNull::from(&mut metadata[..]).cast::<u64>();
        // SAFETY: the mapping is fresh and owned by the chunk; the zeroed metadata box is owned by it too and its
        // storage does not move when the box moves; both outlive the region, which is dropped with them.
        let region = unsafe {
            Region::with_metadata(base, size, self.page_shift, max, metadata_ptr, words, true)
        }
        .map_err(|_| PageError::BadConfig)?;
        let chunk = Chunk {
            region,
            _metadata: metadata,
            memory,
        };
        let index = self
            .chunks
            .partition_point(|other| other.base() < chunk.base());
        self.chunks.insert(index, chunk);
        Ok(index)
    }

    /// Index of the chunk that contains `addr`.
    fn chunk_index(&self, addr: usize) -> Option<usize> {
        let after = self.chunks.partition_point(|chunk| chunk.base() <= addr);
        let index = after.checked_sub(1)?;
        self.chunks[index].memory.contains(addr).then_some(index)
    }

    /// Frees `2^order` pages handed out by `alloc_pages(order)`.
    pub fn free_pages(&mut self, ptr: NonNull<u8>, order: u32) -> Result<(), PageError> {
        if order > self.max_order {
            return Err(PageError::OrderTooLarge);
        }
        let index = self
            .chunk_index(ptr.as_ptr() as usize)
            .ok_or(PageError::ForeignPointer)?;
        self.chunks[index]
            .region
            .free(ptr, order + self.page_shift)
            .map_err(PageError::InvalidFree)
    }

    /// Frees a block of pages without being told its order; returns the order it had.
    pub fn free_pages_unsized(&mut self, ptr: NonNull<u8>) -> Result<u32, PageError> {
        let index = self
            .chunk_index(ptr.as_ptr() as usize)
            .ok_or(PageError::ForeignPointer)?;
        let region = &mut self.chunks[index].region;
        let order = region.live_order(ptr).map_err(PageError::InvalidFree)?;
        region.free(ptr, order).map_err(PageError::InvalidFree)?;
        Ok(order - self.page_shift)
    }

    /// Page counts over all chunks.
    pub fn stats(&self) -> PageStats {
        let pages_per_chunk = 1usize << self.max_order;
        let allocated_bytes: usize = self.chunks.iter().map(|c| c.region.allocated_bytes()).sum();
        let total_pages = self.chunks.len() * pages_per_chunk;
        let allocated_pages = allocated_bytes >> self.page_shift;
        PageStats {
            chunks: self.chunks.len(),
            total_pages,
            allocated_pages,
            free_pages: total_pages - allocated_pages,
        }
    }

    /// Number of free blocks of each order (index = order in pages) over all chunks.
    pub fn free_blocks_per_order(&self) -> Vec<usize> {
        (0..=self.max_order)
            .map(|order| {
                self.chunks
                    .iter()
                    .map(|c| c.region.free_block_count(order + self.page_shift))
                    .sum()
            })
            .collect()
    }

    /// Every block of every chunk, sorted by address, with orders in pages: `(chunk index, block)`.
    pub fn blocks(&self) -> Vec<(usize, BlockInfo)> {
        let mut blocks = Vec::new();
        for (index, chunk) in self.chunks.iter().enumerate() {
            chunk.region.for_each_block(|mut block| {
                block.order -= self.page_shift;
                blocks.push((index, block));
            });
        }
        blocks.sort_by_key(|(_, block)| block.addr);
        blocks
    }

    /// Base address of each chunk, in address order.
    pub fn chunk_bases(&self) -> Vec<usize> {
        self.chunks.iter().map(Chunk::base).collect()
    }

    /// Runs every chunk's invariant checks (slow; for tests).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.chunks
            .iter()
            .try_for_each(|chunk| chunk.region.check_invariants())
    }
}
