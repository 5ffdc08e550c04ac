//! Counters, readable at any time without stopping the allocator (each figure is exact when no
//! allocation races with the read).

use crate::class::SizeClass;
use crate::geometry::BlockGeometry;

/// One size class's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// The class.
    pub class: SizeClass,
    /// Its block geometry.
    pub geometry: BlockGeometry,
    /// Live allocations.
    pub live_objects: usize,
    /// Bytes the callers asked for, summed over live allocations: each allocation adds its size and each
    /// free subtracts the size it states. Exact when frees state the allocated size (as `GlobalAlloc`
    /// guarantees); a free that uses the `Allocator` "fits" rule with a larger size lowers it by the
    /// difference (the counter wraps rather than failing).
    pub live_bytes: usize,
    /// Mapped blocks.
    pub blocks: usize,
    /// Bytes made resident by the allocator: each block's header page and the pages of every slot it has
    /// handed out since the block was mapped (an upper bound of the class's share of the RSS).
    pub resident_bytes: usize,
}

impl ClassStats {
    /// Resident bytes per requested byte (`None` with nothing live).
    pub fn ratio(&self) -> Option<f64> {
        (self.live_bytes > 0).then(|| self.resident_bytes as f64 / self.live_bytes as f64)
    }
}

/// Counters of the allocations mapped directly from the OS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LargeStats {
    /// Live allocations.
    pub live_objects: usize,
    /// Bytes the callers asked for.
    pub live_bytes: usize,
    /// Address space set aside for them: the whole pages of a huge allocation, the power-of-two block of a
    /// medium one (of which only the pages handed out are ever touched).
    pub mapped_bytes: usize,
}

/// Totals over every class and the large path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Live allocations.
    pub live_objects: usize,
    /// Bytes the callers asked for.
    pub live_bytes: usize,
    /// Slab blocks mapped.
    pub blocks: usize,
    /// Resident bytes of slab blocks plus mapped bytes of large allocations.
    pub resident_bytes: usize,
}
