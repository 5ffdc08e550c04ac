//! Random alloc/free actions, talc-style, against classalloc-buddy, buddy_system_allocator and talc, all over the
//! same heap: throughput with criterion (`thrpt` is operations per second), then a table of heap efficiency (the
//! share of the heap handed out before the first allocation fails).
//!
//! Run: `cargo bench -p classalloc-benches --bench buddy_random_actions`.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};

use classalloc_buddy::Region;

/// Every allocator gets the same heap: 32 MiB, aligned to its size.
const HEAP_SIZE: usize = 32 << 20;
/// Alignment asked of every allocation.
const ALIGN: usize = 8;
/// Actions per measured batch.
const BATCH: u64 = 10_000;

/// A size distribution: uniform in `1..=max_size`, with at most `max_live` live blocks at a time.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    max_size: usize,
    max_live: usize,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "up_to_200B",
        max_size: 200,
        max_live: 4096,
    },
    Workload {
        name: "up_to_30KB",
        max_size: 30_000,
        max_live: 512,
    },
];

/// The allocators under test, driven through one interface.
trait Heap {
    const NAME: &'static str;
    /// # Safety
    /// `base..base + size` must be valid, unused memory that outlives the heap.
    unsafe fn over(base: NonNull<u8>, size: usize) -> Self;
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>>;
    /// # Safety
    /// `ptr` must come from `alloc(layout)` on this heap and not be freed yet.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
}

struct ClassallocBuddy(Region);

impl Heap for ClassallocBuddy {
    const NAME: &'static str = "classalloc-buddy";
    unsafe fn over(base: NonNull<u8>, size: usize) -> Self {
        // Metadata in place: the same bytes as the peers, metadata included. Blocks of 16 B to 32 MiB.
        // SAFETY: the caller hands over `base..base + size` for the heap's lifetime.
        let region = unsafe { Region::in_place(base, size, 4, 25) };
        Self(region.expect("a 32 MiB region is valid"))
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc_bytes(layout.size(), layout.align())
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let freed = self.0.free_bytes(ptr, layout.size(), layout.align());
        debug_assert!(freed.is_ok());
    }
}

struct BuddySystem(buddy_system_allocator::Heap<32>);

impl Heap for BuddySystem {
    const NAME: &'static str = "buddy_system_allocator";
    unsafe fn over(base: NonNull<u8>, size: usize) -> Self {
        let mut heap = buddy_system_allocator::Heap::<32>::new();
        // SAFETY: the caller hands over `base..base + size` for the heap's lifetime.
        unsafe { heap.init(base.as_ptr() as usize, size) };
        Self(heap)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.0.dealloc(ptr, layout);
    }
}

struct Talc(talc::Talc<talc::ErrOnOom>);

impl Heap for Talc {
    const NAME: &'static str = "talc";
    unsafe fn over(base: NonNull<u8>, size: usize) -> Self {
        let mut talc = talc::Talc::new(talc::ErrOnOom);
        // SAFETY: the caller hands over `base..base + size` for the heap's lifetime.
        let claimed = unsafe { talc.claim(talc::Span::from_base_size(base.as_ptr(), size)) };
        claimed.expect("talc claims a 32 MiB span");
        Self(talc)
    }
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: `layout` has a non-zero size (the workloads never ask for 0 bytes).
        unsafe { self.0.malloc(layout) }.ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller: `ptr` is live and came from `malloc(layout)`.
        unsafe { self.0.free(ptr, layout) }
    }
}

/// The backing memory of one heap, aligned to its size.
struct Arena(NonNull<u8>);

impl Arena {
    fn layout() -> Layout {
        Layout::from_size_align(HEAP_SIZE, HEAP_SIZE).expect("valid arena layout")
    }
    fn new() -> Self {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(Self::layout()) };
        Self(NonNull::new(raw).expect("the arena could be allocated"))
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0.as_ptr(), Self::layout()) }
    }
}

/// xorshift64*: the same seed drives every allocator through the same sequence of requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A heap under random actions: the live blocks and the random source.
struct Driver<H: Heap> {
    heap: H,
    live: Vec<(NonNull<u8>, Layout)>,
    rng: Rng,
    workload: Workload,
    // Declared last: dropped after the heap that points into it.
    _arena: Arena,
}

impl<H: Heap> Driver<H> {
    fn new(workload: Workload) -> Self {
        let arena = Arena::new();
        // SAFETY: the arena is fresh, unused, and dropped after the heap (field order).
        let heap = unsafe { H::over(arena.0, HEAP_SIZE) };
        Self {
            heap,
            live: Vec::with_capacity(workload.max_live),
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            workload,
            _arena: arena,
        }
    }

    fn random_layout(&mut self) -> Layout {
        let size = 1 + self.rng.below(self.workload.max_size);
        Layout::from_size_align(size, ALIGN).expect("valid layout")
    }

    /// One action: allocate (touching the block's first byte) or free a random live block. Failed allocations
    /// count as actions too.
    #[inline]
    fn step(&mut self) {
        let allocate = self.live.is_empty()
            || (self.live.len() < self.workload.max_live && self.rng.next() & 1 == 0);
        if allocate {
            let layout = self.random_layout();
            if let Some(ptr) = self.heap.alloc(layout) {
                // SAFETY: the block has at least `layout.size() >= 1` writable bytes.
                unsafe { ptr.as_ptr().write(1) };
                self.live.push((ptr, layout));
            }
        } else {
            let index = self.rng.below(self.live.len());
            let (ptr, layout) = self.live.swap_remove(index);
            // SAFETY: `ptr` is live and was allocated with `layout` by this heap.
            unsafe { self.heap.free(black_box(ptr), layout) };
        }
    }

    /// Allocates until the first failure; returns the bytes requested by the successful allocations.
    fn fill(&mut self) -> usize {
        let mut requested = 0;
        loop {
            let layout = self.random_layout();
            match self.heap.alloc(layout) {
                Some(ptr) => {
                    requested += layout.size();
                    self.live.push((ptr, layout));
                }
                None => return requested,
            }
        }
    }
}

impl<H: Heap> Drop for Driver<H> {
    fn drop(&mut self) {
        for (ptr, layout) in std::mem::take(&mut self.live) {
            // SAFETY: every live block came from this heap with this layout.
            unsafe { self.heap.free(ptr, layout) };
        }
    }
}

fn bench_one<H: Heap>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    w: Workload,
) {
    let mut driver = Driver::<H>::new(w);
    // Warm the heap into a steady state before measuring.
    for _ in 0..BATCH * 10 {
        driver.step();
    }
    group.bench_function(BenchmarkId::new(H::NAME, w.name), |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                driver.step();
            }
        })
    });
}

fn random_actions(c: &mut Criterion) {
    let mut group = c.benchmark_group("buddy_random_actions");
    group.throughput(Throughput::Elements(BATCH));
    for workload in WORKLOADS {
        bench_one::<ClassallocBuddy>(&mut group, workload);
        bench_one::<BuddySystem>(&mut group, workload);
        bench_one::<Talc>(&mut group, workload);
    }
    group.finish();
    print_efficiency();
}

fn efficiency<H: Heap>(workload: Workload) -> f64 {
    let mut driver = Driver::<H>::new(workload);
    driver.fill() as f64 / HEAP_SIZE as f64
}

fn print_efficiency() {
    println!();
    println!("heap efficiency: share of a {} MiB heap allocated (bytes requested) before the first failure", HEAP_SIZE >> 20);
    println!(
        "{:<24} {:>12} {:>12}",
        "allocator", WORKLOADS[0].name, WORKLOADS[1].name
    );
    fn row<H: Heap>() {
        println!(
            "{:<24} {:>11.1}% {:>11.1}%",
            H::NAME,
            100.0 * efficiency::<H>(WORKLOADS[0]),
            100.0 * efficiency::<H>(WORKLOADS[1])
        );
    }
    row::<ClassallocBuddy>();
    row::<BuddySystem>();
    row::<Talc>();
}

mod group {
    // `criterion_group!` generates an undocumented public function.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::random_actions);
}
criterion_main!(group::benches);
