//! Workload d: mixed sizes, random replacement in a table of slots. Each step frees the object in a
//! random slot and puts a new one of random size (8 to 512 bytes) there.

use std::alloc::GlobalAlloc;

use super::{alloc_or_die, layout_for};
use crate::prng::SplitMix64;

/// The smallest object size.
pub const MIN_SIZE: usize = 8;
/// The largest object size.
pub const MAX_SIZE: usize = 512;

/// A table of live objects of random sizes, owned by one allocator.
pub struct MixedTable<'a, A: GlobalAlloc> {
    alloc: &'a A,
    slots: Vec<(*mut u8, usize)>,
    rng: SplitMix64,
}

impl<'a, A: GlobalAlloc> MixedTable<'a, A> {
    /// A table of `slots` live objects, each of a random size.
    pub fn new(alloc: &'a A, slots: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let slots = (0..slots)
            .map(|_| {
                let size = rng.between(MIN_SIZE, MAX_SIZE);
                // SAFETY: size >= 8.
                (unsafe { alloc_or_die(alloc, layout_for(size)) }, size)
            })
            .collect();
        Self { alloc, slots, rng }
    }

    /// `steps` random replacements.
    pub fn replace(&mut self, steps: usize) {
        for _ in 0..steps {
            let index = self.rng.below(self.slots.len());
            let size = self.rng.between(MIN_SIZE, MAX_SIZE);
            let (old, old_size) = self.slots[index];
            // SAFETY: `old` came from this allocator with layout_for(old_size) and leaves the table
            // here, so it is freed once; the new size is >= 8, and its first byte is inside it.
            unsafe {
                self.alloc.dealloc(old, layout_for(old_size));
                let object = alloc_or_die(self.alloc, layout_for(size));
                object.write(1);
                self.slots[index] = (object, size);
            }
        }
    }
}

impl<A: GlobalAlloc> Drop for MixedTable<'_, A> {
    fn drop(&mut self) {
        for &(object, size) in &self.slots {
            // SAFETY: every slot holds a live object allocated with layout_for(size).
            unsafe { self.alloc.dealloc(object, layout_for(size)) };
        }
    }
}
