//! Mixed lifetimes (the lifetime-classes workload): long-lived objects allocated interleaved with
//! short-lived ones of the same sizes, then the short-lived ones freed. What stays resident afterwards,
//! per long-lived byte, is the figure: an allocator that mixes lifetimes in its pages keeps every page that
//! holds a long-lived object, however many short-lived neighbours it lost.
//!
//! The long-lived and short-lived objects go to `long` and `short`: the same allocator for an allocator
//! without lifetime classes, two classes of one `ClassAlloc` for classalloc with classes.

use super::{alloc_or_die, layout_for};
use crate::prng::SplitMix64;
use crate::rss::resident_bytes;
use std::alloc::GlobalAlloc;

/// Object sizes, drawn uniformly for both lifetimes.
pub const SIZES: [usize; 8] = [16, 24, 32, 48, 64, 96, 128, 256];

/// What a run measured.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Bytes requested by the long-lived objects (still live at the end).
    pub long_bytes: u64,
    /// Bytes requested by the short-lived objects (all freed).
    pub short_bytes: u64,
    /// Resident growth with everything allocated.
    pub peak_growth: u64,
    /// Resident growth after the short-lived objects were freed.
    pub after_growth: u64,
}

impl Lifetimes {
    /// Resident bytes per long-lived byte after the short-lived objects are gone.
    pub fn ratio_after(&self) -> f64 {
        self.after_growth as f64 / self.long_bytes as f64
    }
}

/// Allocates `long_objects` long-lived objects, each followed by `short_per_long` short-lived ones,
/// writing every object; frees the short-lived ones; measures resident memory; frees the rest.
pub fn run<L: GlobalAlloc, S: GlobalAlloc>(
    long: &L,
    short: &S,
    long_objects: usize,
    short_per_long: usize,
    seed: u64,
) -> std::io::Result<Lifetimes> {
    let mut rng = SplitMix64::new(seed);
    // Bookkeeping comes from the process's own allocator, and is faulted in before the baseline.
    let mut longs: Vec<(*mut u8, usize)> = vec![(core::ptr::null_mut(), 0); long_objects];
    let mut shorts: Vec<(*mut u8, usize)> =
        vec![(core::ptr::null_mut(), 0); long_objects * short_per_long];
    let baseline = resident_bytes()?;
    let (mut long_bytes, mut short_bytes) = (0u64, 0u64);
    for i in 0..long_objects {
        let size = SIZES[rng.below(SIZES.len())];
        // SAFETY: sizes are non-zero; each object is written within its size.
        unsafe {
            let ptr = alloc_or_die(long, layout_for(size));
            ptr.write_bytes(0x4C, size);
            longs[i] = (ptr, size);
        }
        long_bytes += size as u64;
        for j in 0..short_per_long {
            let size = SIZES[rng.below(SIZES.len())];
            // SAFETY: as above.
            unsafe {
                let ptr = alloc_or_die(short, layout_for(size));
                ptr.write_bytes(0x53, size);
                shorts[i * short_per_long + j] = (ptr, size);
            }
            short_bytes += size as u64;
        }
    }
    let peak = resident_bytes()?;
    for &(ptr, size) in &shorts {
        // SAFETY: each short-lived object is live and freed once, with its layout.
        unsafe { short.dealloc(ptr, layout_for(size)) };
    }
    let after = resident_bytes()?;
    for &(ptr, size) in &longs {
        // SAFETY: each long-lived object is live, unchanged, and freed once, with its layout.
        unsafe {
            assert_eq!(ptr.read(), 0x4C, "a long-lived object was overwritten");
            long.dealloc(ptr, layout_for(size));
        }
    }
    Ok(Lifetimes {
        long_bytes,
        short_bytes,
        peak_growth: peak.saturating_sub(baseline),
        after_growth: after.saturating_sub(baseline),
    })
}
