//! Intrusive free lists: circular, doubly linked, stored inside the free blocks themselves.
//!
//! A free block's first two words hold `next` and `prev`. The list head is a plain pointer (null when empty) owned by
//! whoever owns the list, never a sentinel node, so the owner can be moved freely: no block ever points back at it.

use core::ptr::{self, NonNull};

/// The links written at the start of every free block.
#[repr(C)]
#[derive(Debug)]
pub struct FreeNode {
    next: *mut FreeNode,
    prev: *mut FreeNode,
}

/// Bytes a free block must have to hold its links: the smallest block a buddy region may use.
pub const NODE_SIZE: usize = core::mem::size_of::<FreeNode>();

/// A circular doubly-linked list of free blocks.
#[derive(Debug)]
pub struct FreeList {
    head: *mut FreeNode,
}

impl Default for FreeList {
    fn default() -> Self {
        Self::new()
    }
}

impl FreeList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
        }
    }

    /// Whether the list holds no block.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Puts `block` at the front of the list (the most recently freed block is reused first: it is warm in cache).
    ///
    /// # Safety
    /// `block` must be valid for writes of a [`FreeNode`], aligned for it, not on any list, and not used by anyone
    /// else until it is popped or removed again; every block already on the list must still be valid.
    #[inline]
    pub unsafe fn push(&mut self, block: NonNull<u8>) {
        let node = block.as_ptr().cast::<FreeNode>();
        if self.head.is_null() {
            // SAFETY: the caller guarantees `node` is writable and aligned.
            unsafe {
                node.write(FreeNode {
                    next: node,
                    prev: node,
                })
            };
        } else {
            let head = self.head;
            // SAFETY: `head` is on the list, so valid; its `prev` is the tail, also on the list. `node` is writable.
            unsafe {
                let tail = (*head).prev;
                node.write(FreeNode {
                    next: head,
                    prev: tail,
                });
                (*tail).next = node;
                (*head).prev = node;
            }
        }
        self.head = node;
    }

    /// Unlinks `block` from the list.
    ///
    /// # Safety
    /// `block` must currently be on this list, and every block on the list must be valid.
    #[inline]
    pub unsafe fn remove(&mut self, block: NonNull<u8>) {
        let node = block.as_ptr().cast::<FreeNode>();
        // SAFETY: the caller guarantees `node` is on this list, so it and its neighbours are valid nodes.
        unsafe {
            let next = (*node).next;
            if next == node {
                self.head = ptr::null_mut();
            } else {
                let prev = (*node).prev;
                (*prev).next = next;
                (*next).prev = prev;
                if self.head == node {
                    self.head = next;
                }
            }
        }
    }

    /// Unlinks and returns the front block, or `None` if the list is empty.
    ///
    /// # Safety
    /// Every block on the list must be valid.
    #[inline]
    pub unsafe fn pop(&mut self) -> Option<NonNull<u8>> {
        let head = NonNull::new(self.head)?.cast::<u8>();
        // SAFETY: `head` is on this list, and the caller guarantees the list's blocks are valid.
        unsafe { self.remove(head) };
        Some(head)
    }

    /// Walks the list from the front, at most `limit` blocks (a guard against a corrupted, looping list).
    ///
    /// # Safety
    /// Every block on the list must be valid, and the list must not be changed while the iterator is alive.
    pub unsafe fn iter(&self, limit: usize) -> Iter<'_> {
        Iter {
            list: self,
            current: self.head,
            remaining: limit,
        }
    }
}

/// Iterator over the blocks of a [`FreeList`].
#[derive(Debug)]
pub struct Iter<'a> {
    list: &'a FreeList,
    current: *mut FreeNode,
    remaining: usize,
}

impl Iterator for Iter<'_> {
    type Item = NonNull<u8>;

    fn next(&mut self) -> Option<NonNull<u8>> {
        if self.remaining == 0 {
            return None;
        }
        let node = NonNull::new(self.current)?;
        self.remaining -= 1;
        // SAFETY: `FreeList::iter`'s contract: the blocks are valid and the list is not changed meanwhile.
        let next = unsafe { (*node.as_ptr()).next };
        self.current = if next == self.list.head {
            ptr::null_mut()
        } else {
            next
        };
        Some(node.cast())
    }
}

/// Reads the links of a block, for invariant checks.
///
/// # Safety
/// `block` must be on a list whose blocks are all valid.
pub unsafe fn links(block: NonNull<u8>) -> (NonNull<u8>, NonNull<u8>) {
    let node = block.as_ptr().cast::<FreeNode>();
    // SAFETY: the caller guarantees `node` is a valid list node; the links of a node on a list are never null.
    unsafe {
        (
            NonNull::new_unchecked((*node).next.cast()),
            NonNull::new_unchecked((*node).prev.cast()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four node-sized, node-aligned slots standing in for free blocks.
    fn slots() -> [FreeNode; 4] {
        core::array::from_fn(|_| FreeNode {
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
        })
    }

    fn block(slots: &mut [FreeNode; 4], index: usize) -> NonNull<u8> {
        NonNull::from(&mut slots[index]).cast()
    }

    fn collect(list: &FreeList) -> std::vec::Vec<NonNull<u8>> {
        // SAFETY: the test's slots outlive the list and the list is not changed while iterating.
        unsafe { list.iter(16).collect() }
    }

    fn assert_circular(list: &FreeList) {
        let blocks = collect(list);
        for (i, &b) in blocks.iter().enumerate() {
            // SAFETY: `b` is on the list and the slots are alive.
            let (next, prev) = unsafe { links(b) };
            assert_eq!(next, blocks[(i + 1) % blocks.len()]);
            assert_eq!(prev, blocks[(i + blocks.len() - 1) % blocks.len()]);
        }
    }

    #[test]
    fn push_pop_is_last_in_first_out_and_circular() {
        let mut s = slots();
        let (a, b, c) = (block(&mut s, 0), block(&mut s, 1), block(&mut s, 2));
        let mut list = FreeList::new();
        assert!(list.is_empty());
        // SAFETY: the slots are valid, aligned, distinct and outlive the list.
        unsafe {
            list.push(a);
            list.push(b);
            list.push(c);
        }
        assert_eq!(collect(&list), [c, b, a]);
        assert_circular(&list);
        // SAFETY: as above.
        unsafe {
            assert_eq!(list.pop(), Some(c));
            assert_circular(&list);
            assert_eq!(list.pop(), Some(b));
            assert_eq!(list.pop(), Some(a));
            assert_eq!(list.pop(), None);
        }
        assert!(list.is_empty());
    }

    #[test]
    fn remove_head_middle_tail_and_only_node() {
        let mut s = slots();
        let blocks = [0, 1, 2, 3].map(|i| block(&mut s, i));
        let mut list = FreeList::new();
        // SAFETY: the slots are valid, aligned, distinct and outlive the list.
        unsafe {
            for &b in &blocks {
                list.push(b);
            }
            // Order is now 3, 2, 1, 0.
            list.remove(blocks[1]);
            assert_eq!(collect(&list), [blocks[3], blocks[2], blocks[0]]);
            assert_circular(&list);
            list.remove(blocks[3]);
            assert_eq!(collect(&list), [blocks[2], blocks[0]]);
            assert_circular(&list);
            list.remove(blocks[0]);
            assert_eq!(collect(&list), [blocks[2]]);
            assert_circular(&list);
            list.remove(blocks[2]);
        }
        assert!(list.is_empty());
        assert!(collect(&list).is_empty());
    }

    #[test]
    fn iteration_limit_stops_a_walk() {
        let mut s = slots();
        let mut list = FreeList::new();
        // SAFETY: the slots are valid, aligned, distinct and outlive the list.
        unsafe {
            for i in 0..4 {
                list.push(block(&mut s, i));
            }
            assert_eq!(list.iter(2).count(), 2);
        }
    }
}
