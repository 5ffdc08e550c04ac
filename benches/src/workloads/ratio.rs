//! Workload b: memory ratio, resident bytes per requested byte with a fixed amount live.
//!
//! Objects of one size are allocated until `live_bytes` are requested; one byte is written into every
//! page of each object so the memory is resident; the ratio is the growth of the process's resident
//! set divided by the bytes requested. The objects are never freed (the process exits), so no array
//! of pointers is needed: 64 MiB of 1-byte objects would otherwise need 512 MiB of pointers.

use std::alloc::GlobalAlloc;

use super::{alloc_or_die, layout_for, touch_pages};
use crate::rss::resident_bytes;

/// What one ratio run measured.
#[derive(Clone, Copy, Debug)]
pub struct RatioMeasurement {
    /// Objects allocated.
    pub objects: u64,
    /// Bytes requested: `objects * size`.
    pub requested_bytes: u64,
    /// Growth of the resident set over the run.
    pub resident_growth: u64,
}

impl RatioMeasurement {
    /// Resident bytes per requested byte.
    pub fn ratio(&self) -> f64 {
        self.resident_growth as f64 / self.requested_bytes as f64
    }
}

/// Allocates `live_bytes / size` objects of `size` bytes and measures the resident growth.
pub fn run<A: GlobalAlloc>(
    alloc: &A,
    size: usize,
    live_bytes: u64,
) -> std::io::Result<RatioMeasurement> {
    let layout = layout_for(size);
    let objects = live_bytes / size as u64;
    // One allocation and free first, so the allocator's own start-up (arenas, thread heaps, tables)
    // is resident before the baseline: the ratio measures the cost per object, not the fixed cost.
    // SAFETY: layout_for gives a non-zero size; the pointer is freed with the layout that made it.
    unsafe {
        let warm_up = alloc_or_die(alloc, layout);
        touch_pages(warm_up, size);
        alloc.dealloc(warm_up, layout);
    }
    let baseline = resident_bytes()?;
    for _ in 0..objects {
        // SAFETY: non-zero size; the object is `size` bytes, so touching its pages stays inside it.
        unsafe {
            let object = alloc_or_die(alloc, layout);
            touch_pages(object, size);
        }
    }
    let after = resident_bytes()?;
    Ok(RatioMeasurement {
        objects,
        requested_bytes: objects * size as u64,
        resident_growth: after.saturating_sub(baseline),
    })
}
