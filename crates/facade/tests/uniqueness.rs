//! Uniqueness (issue 7, item 5, in the manner of snmalloc's test): random allocations and frees over
//! 10,000 slots with mixed sizes and alignments. No live address is handed out twice (a hash set of live
//! starts), no two live allocations overlap (an ordered map of start -> end over the usable lengths), and
//! every live allocation keeps what was written into it. Through `Slab`, a `ClassAlloc` with three classes
//! at once (explicit calls and handles), `Global` and the size-only functions.

use allocator_api2::alloc::Allocator;
use classalloc::{lifetime_class, ClassAlloc, Global, LifetimeClass};
use classalloc_slab::Slab;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use std::collections::{BTreeMap, HashSet};

const SLOTS: usize = 10_000;
const STEPS: usize = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Frame,
    Request,
    Cache,
}
lifetime_class!(Life);
const CLASSES: [Life; 3] = [Life::Frame, Life::Request, Life::Cache];

/// xorshift64*: deterministic, seeded per test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Mostly small sizes, some up to the largest class, 2% large (above 8 KiB).
    fn size(&mut self) -> usize {
        match self.below(100) {
            0..=69 => 1 + self.below(256),
            70..=97 => 1 + self.below(8192),
            _ => 8193 + self.below(120_000),
        }
    }

    /// Mostly the natural alignments, some up to a page, a few above it.
    fn align(&mut self) -> usize {
        match self.below(200) {
            0..=139 => 1 << self.below(4),
            140..=197 => 1 << self.below(13),
            _ => 1 << (13 + self.below(4)),
        }
    }
}

/// A live allocation in a slot.
#[derive(Clone, Copy)]
struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    /// What the allocator says may be used (the requested size where it says nothing).
    usable: usize,
    /// Which lifetime class, for the class-aware allocators.
    class: usize,
    byte: u8,
}

/// The bytes a content check reads: all of a small allocation, the ends of a large one.
fn marked_ranges(live: &Live) -> [(usize, usize); 2] {
    let size = live.layout.size();
    if size <= 4096 {
        [(0, size), (0, 0)]
    } else {
        [(0, 256), (size - 256, 256)]
    }
}

fn mark(live: &Live) {
    for (offset, len) in marked_ranges(live) {
        // SAFETY: the ranges lie within the live allocation's size.
        unsafe { live.ptr.as_ptr().add(offset).write_bytes(live.byte, len) };
    }
}

fn check_marks(live: &Live) {
    for (offset, len) in marked_ranges(live) {
        // SAFETY: as in `mark`.
        let bytes = unsafe { core::slice::from_raw_parts(live.ptr.as_ptr().add(offset), len) };
        assert!(
            bytes.iter().all(|&b| b == live.byte),
            "{:?} ({:?}) was overwritten while live",
            live.ptr,
            live.layout
        );
    }
}

/// The live allocations: slots, the set of live starts, the map of live ranges.
struct Heap {
    slots: Vec<Option<Live>>,
    starts: HashSet<usize>,
    ranges: BTreeMap<usize, usize>,
}

impl Heap {
    fn new() -> Self {
        Self {
            slots: vec![None; SLOTS],
            starts: HashSet::new(),
            ranges: BTreeMap::new(),
        }
    }

    fn insert(&mut self, index: usize, live: Live) {
        let start = live.ptr.as_ptr() as usize;
        let end = start + live.usable.max(1);
        assert!(self.starts.insert(start), "{start:#x} handed out twice");
        if let Some((&below, &below_end)) = self.ranges.range(..start).next_back() {
            assert!(
                below_end <= start,
                "{start:#x}..{end:#x} overlaps live {below:#x}..{below_end:#x}"
            );
        }
        if let Some((&above, &above_end)) = self.ranges.range(start..).next() {
            assert!(
                end <= above,
                "{start:#x}..{end:#x} overlaps live {above:#x}..{above_end:#x}"
            );
        }
        self.ranges.insert(start, end);
        mark(&live);
        self.slots[index] = Some(live);
    }

    fn remove(&mut self, index: usize) -> Option<Live> {
        let live = self.slots[index].take()?;
        check_marks(&live);
        let start = live.ptr.as_ptr() as usize;
        assert!(self.starts.remove(&start));
        assert!(self.ranges.remove(&start).is_some());
        Some(live)
    }

    fn drain(&mut self) -> Vec<Live> {
        (0..SLOTS).filter_map(|index| self.remove(index)).collect()
    }
}

/// Runs the random walk: an empty slot is filled by `alloc`, a full one freed by `free`. Returns how many
/// allocations it made.
fn walk(
    seed: u64,
    mut alloc: impl FnMut(&mut Rng) -> Live,
    // SAFETY (of calls): a live allocation made by `alloc`, freed once.
    mut free: impl FnMut(Live),
) -> usize {
    let mut rng = Rng(seed);
    let mut heap = Heap::new();
    let mut allocations = 0;
    for _ in 0..STEPS {
        let index = rng.below(SLOTS);
        match heap.remove(index) {
            Some(live) => free(live),
            None => {
                let mut live = alloc(&mut rng);
                live.byte = (index % 251) as u8 + 1;
                heap.insert(index, live);
                allocations += 1;
            }
        }
    }
    for live in heap.drain() {
        free(live);
    }
    allocations
}

fn layout(rng: &mut Rng) -> Layout {
    Layout::from_size_align(rng.size(), rng.align()).unwrap()
}

fn live(block: NonNull<[u8]>, layout: Layout, class: usize) -> Live {
    assert_eq!(block.cast::<u8>().as_ptr() as usize % layout.align(), 0);
    assert!(block.len() >= layout.size());
    Live {
        ptr: block.cast(),
        layout,
        usable: block.len(),
        class,
        byte: 0,
    }
}

#[test]
fn slab_never_hands_out_a_live_address_twice() {
    let slab = Slab::new();
    let made = walk(
        1,
        |rng| {
            let layout = layout(rng);
            live(slab.alloc(layout).unwrap(), layout, 0)
        },
        // SAFETY: `walk` frees each live allocation once, with its layout.
        |live| unsafe { slab.dealloc(live.ptr, live.layout).unwrap() },
    );
    assert!(made > STEPS / 3);
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn three_classes_at_once_never_share_or_repeat_an_address() {
    let alloc = ClassAlloc::<Life>::new();
    let made = walk(
        2,
        |rng| {
            let class = CLASSES[rng.below(3)];
            let layout = layout(rng);
            // Explicit calls and handles alternate; both free through the class.
            let block = if rng.below(2) == 0 {
                alloc.alloc(class, layout).unwrap()
            } else {
                alloc.handle(class).allocate(layout).unwrap()
            };
            live(block, layout, class.index())
        },
        |live| {
            let class = CLASSES[live.class];
            // SAFETY: `walk` frees each live allocation once, in its class, with its layout.
            unsafe { alloc.free(class, live.ptr, live.layout).unwrap() };
        },
    );
    assert!(made > STEPS / 3);
    for class in CLASSES {
        assert_eq!(alloc.class_totals(class).live_objects, 0);
    }
}

#[test]
fn global_and_the_size_only_functions_never_hand_out_a_live_address_twice() {
    let global = Global::new();
    let made = walk(
        3,
        |rng| {
            // Both APIs share the process-wide slab: class 1 marks a size-only allocation.
            if rng.below(4) == 0 {
                let size = rng.size();
                let p = NonNull::new(classalloc::malloc(size)).unwrap();
                let layout = Layout::from_size_align(size, 1).unwrap();
                live(NonNull::slice_from_raw_parts(p, size), layout, 1)
            } else {
                let layout = layout(rng);
                // SAFETY: a layout of non-zero size.
                let p = NonNull::new(unsafe { global.alloc(layout) }).unwrap();
                live(NonNull::slice_from_raw_parts(p, layout.size()), layout, 0)
            }
        },
        // SAFETY: `walk` frees each live allocation once, with the API and size it was made with.
        |live| unsafe {
            if live.class == 1 {
                classalloc::free(live.ptr.as_ptr(), live.layout.size());
            } else {
                global.dealloc(live.ptr.as_ptr(), live.layout);
            }
        },
    );
    assert!(made > STEPS / 3);
}
