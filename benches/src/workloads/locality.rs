//! Workload e: locality. A linked list of 16-byte nodes is built while short-lived "noise" objects of
//! other sizes are allocated and freed between the nodes, as in a real program; walking the list then
//! shows whether the allocator kept the nodes close together.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::VecDeque;
use std::hint::black_box;

use super::{alloc_or_die, layout_for};
use crate::prng::SplitMix64;

/// A 16-byte list node.
#[repr(C)]
struct Node {
    next: *mut Node,
    value: u64,
}

/// How many noise objects stay alive at once: they are freed in allocation order.
const NOISE_LIVE: usize = 64;

/// A singly linked list of `Node`s owned by one allocator.
pub struct NoisyList<'a, A: GlobalAlloc> {
    alloc: &'a A,
    head: *mut Node,
    len: usize,
}

impl<'a, A: GlobalAlloc> NoisyList<'a, A> {
    /// Builds a list of `nodes` nodes, with one to three noise objects of 8 to 256 bytes allocated
    /// before each node and freed `NOISE_LIVE` noise allocations later.
    pub fn build(alloc: &'a A, nodes: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let node_layout = Layout::new::<Node>();
        let mut noise: VecDeque<(*mut u8, usize)> = VecDeque::with_capacity(NOISE_LIVE + 4);
        let mut head: *mut Node = std::ptr::null_mut();
        let mut tail: *mut Node = std::ptr::null_mut();
        for index in 0..nodes {
            for _ in 0..rng.between(1, 3) {
                let size = rng.between(8, 256);
                // SAFETY: size >= 8; the first byte is inside the object.
                let object = unsafe { alloc_or_die(alloc, layout_for(size)) };
                // SAFETY: as above.
                unsafe { object.write(1) };
                noise.push_back((object, size));
                if noise.len() > NOISE_LIVE {
                    let (old, old_size) = noise.pop_front().expect("more than NOISE_LIVE");
                    // SAFETY: allocated above with layout_for(old_size), freed once.
                    unsafe { alloc.dealloc(old, layout_for(old_size)) };
                }
            }
            // SAFETY: Node's layout is non-zero; the pointer is suitably aligned for a Node.
            let node = unsafe { alloc_or_die(alloc, node_layout) }.cast::<Node>();
            // SAFETY: `node` is valid for a write of a Node; `tail` is the previous live node.
            unsafe {
                node.write(Node {
                    next: std::ptr::null_mut(),
                    value: index as u64,
                });
                if tail.is_null() {
                    head = node;
                } else {
                    (*tail).next = node;
                }
            }
            tail = node;
        }
        for (object, size) in noise {
            // SAFETY: each remaining noise object is live, allocated with layout_for(size).
            unsafe { alloc.dealloc(object, layout_for(size)) };
        }
        Self {
            alloc,
            head,
            len: nodes,
        }
    }

    /// Nodes in the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Walks the whole list, summing the nodes' values.
    pub fn walk(&self) -> u64 {
        let mut sum = 0u64;
        let mut node = black_box(self.head);
        while !node.is_null() {
            // SAFETY: every node reachable from head is live until drop.
            unsafe {
                sum = sum.wrapping_add((*node).value);
                node = (*node).next;
            }
        }
        sum
    }
}

impl<A: GlobalAlloc> Drop for NoisyList<'_, A> {
    fn drop(&mut self) {
        let mut node = self.head;
        while !node.is_null() {
            // SAFETY: each node is live, reached once, and was allocated with Node's layout.
            unsafe {
                let next = (*node).next;
                self.alloc.dealloc(node.cast(), Layout::new::<Node>());
                node = next;
            }
        }
    }
}
