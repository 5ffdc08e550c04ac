//! The region's invariant checker: a slow, complete walk of lists and bitmaps, for tests and debugging.

use super::{Region, ORDER_LIMIT};
use crate::list;

impl Region {
    /// Checks every structural invariant, returning the first one found broken. For tests and debugging: it walks
    /// all free lists and bitmaps, so it is slow.
    ///
    /// Checked: list links are consistent and blocks aligned and inside the span; each list's non-empty bit; pair
    /// bits equal `free(A) XOR free(B)`; no free block is live or overlaps another block; the free and live blocks
    /// add up to the managed bytes.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut free_bytes = 0usize;
        for order in 0..ORDER_LIMIT {
            let list = &self.lists[order as usize];
            let in_range = order >= self.min_order && order <= self.max_order;
            if !in_range && !list.is_empty() {
                return Err("a list outside min_order..=max_order holds blocks");
            }
            if (self.nonempty >> order) & 1 != u64::from(!list.is_empty()) {
                return Err("a non-empty bit disagrees with its list");
            }
            // SAFETY: the list's blocks are valid free blocks, and `&self` keeps the list unchanged.
            for block in unsafe { list.iter(usize::MAX) } {
                let addr = block.as_ptr() as usize;
                if addr & ((1usize << order) - 1) != 0 {
                    return Err("a free block is not aligned to its size");
                }
                if addr < self.usable_start || self.usable_end - addr < 1usize << order {
                    return Err("a free block lies outside the usable span");
                }
                // SAFETY: `block` is on a list whose blocks are all valid.
                let (next, prev) = unsafe { list::links(block) };
                // SAFETY: as above; `next` and `prev` are on the same list.
                let (next_prev, prev_next) = unsafe { (list::links(next).1, list::links(prev).0) };
                if next_prev != block || prev_next != block {
                    return Err("free list links are inconsistent");
                }
                if self.bits.get(self.live_bit(order, addr)) {
                    return Err("a free block is also live");
                }
                if order < self.max_order {
                    let buddy = addr ^ (1usize << order);
                    let buddy_free = self.is_on_list(buddy, order);
                    if self.bits.get(self.pair_bit(order, addr)) == buddy_free {
                        return Err("a pair bit disagrees with the free lists");
                    }
                    if buddy_free {
                        return Err("two free buddies were not merged");
                    }
                }
                if self.overlaps_other_block(addr, order) {
                    return Err("a free block overlaps another block");
                }
                free_bytes += 1usize << order;
            }
        }
        if free_bytes != self.available_bytes() {
            return Err("free lists do not add up to the free byte count");
        }
        let mut live_bytes = 0usize;
        let mut live_blocks = 0usize;
        self.for_each_block(|block| {
            if block.allocated {
                live_bytes += 1usize << block.order;
                live_blocks += 1;
            }
        });
        if live_bytes != self.allocated_bytes || live_blocks != self.live_blocks {
            return Err("live bits do not add up to the allocated byte count");
        }
        // Pair bits of pairs with neither block free must be clear.
        for order in self.min_order..self.max_order {
            let next_segment = if order + 1 < self.max_order {
                self.pair_base[order as usize + 1]
            } else {
                self.live_base[self.min_order as usize]
            };
            let pairs = next_segment - self.pair_base[order as usize];
            for pair in 0..pairs {
                let bit = self.pair_base[order as usize] + pair;
                if self.bits.get(bit) {
                    let lower = self.arena_base + (pair << (order + 1));
                    let upper = lower + (1usize << order);
                    if !self.is_on_list(lower, order) && !self.is_on_list(upper, order) {
                        return Err("a pair bit is set but neither buddy is free");
                    }
                }
            }
        }
        Ok(())
    }

    fn is_on_list(&self, addr: usize, order: u32) -> bool {
        // SAFETY: the list's blocks are valid free blocks, and `&self` keeps the list unchanged.
        unsafe { self.lists[order as usize].iter(usize::MAX) }.any(|b| b.as_ptr() as usize == addr)
    }

    fn overlaps_other_block(&self, addr: usize, order: u32) -> bool {
        let end = addr + (1usize << order);
        let mut overlap = false;
        self.for_each_block(|other| {
            let other_end = other.addr + (1usize << other.order);
            let same = other.addr == addr && other.order == order && !other.allocated;
            if !same && other.addr < end && addr < other_end {
                overlap = true;
            }
        });
        overlap
    }
}
