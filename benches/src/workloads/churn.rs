//! Workload c: churn, allocate `n` objects of one size then free all `n`, in allocation order.

use std::alloc::GlobalAlloc;
use std::hint::black_box;

use super::{alloc_or_die, layout_for};

/// Reusable state of the churn workload: the pointer array is allocated once, outside the timing.
pub struct Churn {
    objects: Vec<*mut u8>,
    size: usize,
}

impl Churn {
    /// Churn of `count` objects of `size` bytes per round.
    pub fn new(size: usize, count: usize) -> Self {
        Self {
            objects: vec![std::ptr::null_mut(); count],
            size,
        }
    }

    /// Objects per round; each is allocated once and freed once.
    pub fn objects_per_round(&self) -> u64 {
        self.objects.len() as u64
    }

    /// One round: allocate every object (writing its first byte), then free them all.
    pub fn round<A: GlobalAlloc>(&mut self, alloc: &A) {
        let layout = layout_for(self.size);
        for slot in self.objects.iter_mut() {
            // SAFETY: layout_for gives a non-zero size, so writing the first byte stays inside.
            unsafe {
                let object = alloc_or_die(alloc, layout);
                object.write(1);
                *slot = object;
            }
        }
        black_box(self.objects.as_ptr());
        for &object in &self.objects {
            // SAFETY: allocated above from `alloc` with `layout`, freed once.
            unsafe { alloc.dealloc(object, layout) };
        }
    }
}
