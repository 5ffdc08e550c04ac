//! The multi-thread stress shared by `stress_global.rs` and `stress_classes.rs` (issue 7, item 4), after
//! mimalloc's `test/test-stress.c`: per round, `threads` threads are created; each allocates
//! `10 * scale * (tid % 8 + 1)` objects and retains half as many more, frees two thirds of what it
//! allocates as it goes, resizes some, and swaps a quarter of them through a shared array of slots, so
//! objects are freed by other threads, also by threads of later rounds. Sizes are mostly small, 1% are 100
//! times larger (above 8 KiB: the large path); alignments are mostly 8, some up to a page, a few above it.
//!
//! Every word of an object holds a cookie derived from its address and size, written when it is allocated
//! and checked when it is freed or resized; a mismatch panics with the address. The first word also
//! encodes the size, alignment and the API the object came from, so whichever thread ends up with it can
//! free it. After the last round the slots are emptied, everything is freed, and the allocator's live
//! counts must be back where they were.
//!
//! Environment: `CLASSALLOC_STRESS_SCALE` (objects per thread and round, default 100) and
//! `CLASSALLOC_STRESS_SECONDS` (per configuration: rounds continue until that much time has passed;
//! unset: `DEFAULT_ROUNDS` rounds). `cargo xtask stress --minutes N` sets both.

use core::alloc::Layout;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

/// Rounds per configuration when no duration is given.
const DEFAULT_ROUNDS: usize = 10;
/// Objects per thread and round, in units of `10 * (tid % 8 + 1)`, when no scale is given.
const DEFAULT_SCALE: usize = 100;
/// The shared slots objects are swapped through.
const TRANSFERS: usize = 1000;
/// The thread counts every stress binary runs.
pub const THREAD_COUNTS: [usize; 3] = [2, 4, 8];

/// An allocator interface under stress. A `tag` (below `TAGS`) picks one of its ways to allocate (an
/// API, a lifetime class); an object is freed and resized the way its tag says.
pub trait Api: Sync {
    /// How many tags there are.
    const TAGS: u8;

    /// Allocates for `layout` the way `tag` says (zeroed if asked); null on failure.
    fn alloc(&self, tag: u8, layout: Layout, zeroed: bool) -> *mut u8;

    /// The alignment an allocation of `layout` with `tag` gets at least (the size-only APIs align to the
    /// size's power of two, whatever was asked).
    fn guaranteed_align(&self, tag: u8, layout: Layout) -> usize {
        let _ = tag;
        layout.align()
    }

    /// Frees an object.
    ///
    /// # Safety
    /// `ptr` is live, allocated with `tag` and `layout`, and not used afterwards.
    unsafe fn free(&self, tag: u8, ptr: *mut u8, layout: Layout);

    /// Resizes an object, keeping its tag and alignment; null on failure (the object stays).
    ///
    /// # Safety
    /// As for `free`; after a non-null return `ptr` is not used (unless equal).
    unsafe fn realloc(&self, tag: u8, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8;

    /// The live counts (objects, bytes) that must come back when everything is freed; unused entries
    /// are 0. An array: taking the counts must not allocate.
    fn live_counts(&self) -> [(usize, usize); 4];
}

/// xorshift64*.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with `percent` percent probability.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// A 64-bit mix (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Word `index` of the cookie of an object of `size` bytes at `addr`.
fn cookie(addr: usize, size: usize, index: usize) -> u64 {
    mix((addr as u64) ^ ((size as u64) << 20) ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// The first word: size, alignment and tag, masked by the address.
fn header(addr: usize, layout: Layout, tag: u8) -> u64 {
    let fields = ((layout.size() as u64) << 24)
        | ((layout.align().trailing_zeros() as u64) << 8)
        | tag as u64;
    fields ^ mix(addr as u64 ^ 0x5555_AAAA_5555_AAAA)
}

/// Decodes the first word of the object at `ptr`, panicking when it cannot be one of ours.
///
/// # Safety
/// `ptr` is a live object of this module (at least 8 bytes).
unsafe fn decode<A: Api>(ptr: *mut u8) -> (Layout, u8) {
    // SAFETY: per the contract the object holds at least one word, aligned to at least 8.
    let word = unsafe { ptr.cast::<u64>().read() };
    let fields = word ^ mix(ptr as u64 ^ 0x5555_AAAA_5555_AAAA);
    let size = (fields >> 24) as usize;
    let align_shift = (fields >> 8) & 0xFFFF;
    let tag = (fields & 0xFF) as u8;
    let layout = ((8..=MAX_OBJECT).contains(&size) && align_shift <= 16 && tag < A::TAGS)
        .then(|| Layout::from_size_align(size, 1 << align_shift).ok())
        .flatten();
    match layout {
        Some(layout) => (layout, tag),
        None => panic!("cookie mismatch: the header word of {ptr:p} is {word:#x}"),
    }
}

/// The largest object: 64 words, 100 times, and 7 extra bytes.
const MAX_OBJECT: usize = 64 * 8 * 100 + 7;

/// Writes the cookie of an object of `layout` with `tag` at `ptr`.
///
/// # Safety
/// `ptr` is live with at least `layout.size()` bytes, aligned to at least 8.
unsafe fn write_cookie(ptr: *mut u8, layout: Layout, tag: u8) {
    let addr = ptr as usize;
    let words = layout.size() / 8;
    // SAFETY: per the contract the object holds `words` words and the tail bytes.
    unsafe {
        let base = ptr.cast::<u64>();
        base.write(header(addr, layout, tag));
        for index in 1..words {
            base.add(index).write(cookie(addr, layout.size(), index));
        }
        let tail = cookie(addr, layout.size(), words).to_le_bytes();
        for (offset, byte) in tail.iter().enumerate().take(layout.size() % 8) {
            ptr.add(words * 8 + offset).write(*byte);
        }
    }
}

/// Checks the cookie of the first `len` bytes of an object of `size` bytes that was written at `addr`
/// (now at `ptr`: a resize may have moved it); panics with the address on a mismatch.
///
/// # Safety
/// `ptr` is live with at least `len` bytes, aligned to at least 8.
unsafe fn check_cookie(ptr: *mut u8, addr: usize, size: usize, len: usize) {
    let words = len / 8;
    // SAFETY: per the contract `len` bytes are readable.
    unsafe {
        let base = ptr.cast::<u64>();
        for index in 1..words {
            let word = base.add(index).read();
            if word != cookie(addr, size, index) {
                panic!(
                    "cookie mismatch at {:p} (object {ptr:p} of {size} bytes, word {index}): {word:#x}",
                    base.add(index)
                );
            }
        }
        if words * 8 < len && words * 8 < size {
            let tail = cookie(addr, size, words).to_le_bytes();
            for (offset, &expected) in tail.iter().enumerate().take(len - words * 8) {
                let byte = ptr.add(words * 8 + offset).read();
                if byte != expected {
                    panic!(
                        "cookie mismatch at {:p} (object {ptr:p} of {size} bytes, tail): {byte:#x}",
                        ptr.add(words * 8 + offset)
                    );
                }
            }
        }
    }
}

/// One configuration's shared state.
struct Shared<'a, A: Api> {
    api: &'a A,
    transfer: Vec<AtomicPtr<u8>>,
    scale: usize,
}

/// What a thread did in a round.
#[derive(Clone, Copy, Default)]
struct Work {
    operations: u64,
    /// Allocations and resizes the allocator refused (there is no memory pressure: each is a finding).
    refusals: u64,
}

impl<A: Api> Shared<'_, A> {
    /// Allocates an object of `items` words (1% of them 100 times larger), with a random tag and
    /// alignment, and writes its cookie; null when the allocator refused.
    fn alloc_items(&self, items: usize, rng: &mut Rng) -> *mut u8 {
        let items = if rng.chance(1) { items * 100 } else { items };
        let layout = random_layout(items, rng);
        let tag = rng.below(A::TAGS as usize) as u8;
        let zeroed = rng.chance(10);
        let ptr = self.api.alloc(tag, layout, zeroed);
        if ptr.is_null() {
            return ptr;
        }
        let align = self.api.guaranteed_align(tag, layout);
        assert_eq!(ptr as usize % align, 0, "{ptr:p} misaligned for {layout:?}");
        if zeroed {
            // SAFETY: a fresh zeroed allocation of `layout.size()` bytes.
            let bytes = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
            if let Some(offset) = bytes.iter().position(|&b| b != 0) {
                panic!("zeroed allocation {ptr:p} ({layout:?}) holds a non-zero byte at {offset}");
            }
        }
        // SAFETY: a fresh allocation of `layout`.
        unsafe { write_cookie(ptr, layout, tag) };
        ptr
    }

    /// Checks an object's cookie and frees it; null is ignored.
    fn free_items(&self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: every non-null pointer this module holds is a live object it wrote.
        unsafe {
            let (layout, tag) = decode::<A>(ptr);
            check_cookie(ptr, ptr as usize, layout.size(), layout.size());
            self.api.free(tag, ptr, layout);
        }
    }

    /// Checks an object's cookie, resizes it, checks the kept part moved intact, and writes the new
    /// cookie. Returns the object (the old one when the allocator refused) and whether it refused.
    fn resize_items(&self, ptr: *mut u8, rng: &mut Rng) -> (*mut u8, bool) {
        // SAFETY: a live object this module wrote.
        unsafe {
            let (layout, tag) = decode::<A>(ptr);
            check_cookie(ptr, ptr as usize, layout.size(), layout.size());
            let items = 1 << rng.below(6);
            let new_size =
                random_layout(if rng.chance(2) { items * 100 } else { items }, rng).size();
            let moved = self.api.realloc(tag, ptr, layout, new_size);
            if moved.is_null() {
                return (ptr, true);
            }
            let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
            assert_eq!(
                moved as usize % self.api.guaranteed_align(tag, new_layout),
                0
            );
            // The first min(old, new) bytes moved as they were (the header word is the old one too).
            let kept = layout.size().min(new_size);
            let old_header = header(ptr as usize, layout, tag);
            if moved.cast::<u64>().read() != old_header {
                panic!("resize of {ptr:p} to {moved:p} lost the header word");
            }
            check_cookie(moved, ptr as usize, layout.size(), kept);
            write_cookie(moved, new_layout, tag);
            (moved, false)
        }
    }

    /// One thread's round, as mimalloc's `stress(tid)`.
    fn stress(&self, tid: usize, rng: &mut Rng) -> Work {
        let mut work = Work::default();
        let mut allocs = 10 * self.scale * (tid % 8 + 1);
        let mut retain = allocs / 2;
        let mut data: Vec<*mut u8> = Vec::new();
        let mut retained: Vec<*mut u8> = Vec::with_capacity(retain);
        while allocs > 0 || retain > 0 {
            if retain == 0 || (rng.chance(50) && allocs > 0) {
                allocs -= 1;
                let p = self.alloc_items(1 << rng.below(5), rng);
                work.refusals += p.is_null() as u64;
                data.push(p);
            } else {
                let p = self.alloc_items(1 << rng.below(7), rng);
                work.refusals += p.is_null() as u64;
                retained.push(p);
                retain -= 1;
            }
            work.operations += 1;
            if rng.chance(66) && !data.is_empty() {
                let index = rng.below(data.len());
                self.free_items(core::mem::replace(&mut data[index], core::ptr::null_mut()));
                work.operations += 1;
            }
            if rng.chance(25) && !data.is_empty() {
                // Hand an object to whichever thread takes this slot next; take what was there.
                let index = rng.below(data.len());
                let slot = &self.transfer[rng.below(TRANSFERS)];
                data[index] = slot.swap(data[index], Ordering::AcqRel);
                work.operations += 1;
            }
            if rng.chance(5) && !data.is_empty() {
                let index = rng.below(data.len());
                if !data[index].is_null() {
                    let (p, refused) = self.resize_items(data[index], rng);
                    data[index] = p;
                    work.refusals += refused as u64;
                    work.operations += 1;
                }
            }
        }
        work.operations += (data.len() + retained.len()) as u64;
        for p in retained.into_iter().chain(data) {
            self.free_items(p);
        }
        work
    }
}

/// A layout of `items` words and 0 to 7 extra bytes: aligned to 8 mostly, up to a page sometimes, above
/// it rarely.
fn random_layout(items: usize, rng: &mut Rng) -> Layout {
    let size = items * 8 + rng.below(8);
    let align = match rng.below(1000) {
        0..=899 => 8,
        900..=994 => 16 << rng.below(9),
        _ => 8192 << rng.below(4),
    };
    Layout::from_size_align(size, align).unwrap()
}

/// The summary of one configuration, as printed.
pub struct Summary {
    pub threads: usize,
    pub rounds: usize,
    pub operations: u64,
    pub duration: Duration,
    pub findings: u64,
}

/// The scale and duration from the environment.
fn settings() -> (usize, Option<Duration>) {
    let scale = std::env::var("CLASSALLOC_STRESS_SCALE")
        .ok()
        .map(|value| {
            value
                .parse()
                .expect("CLASSALLOC_STRESS_SCALE: a whole number")
        })
        .unwrap_or(DEFAULT_SCALE);
    let seconds = std::env::var("CLASSALLOC_STRESS_SECONDS")
        .ok()
        .map(|value| {
            Duration::from_secs_f64(value.parse().expect("CLASSALLOC_STRESS_SECONDS: a number"))
        });
    (scale, seconds)
}

/// Runs one configuration: rounds of `threads` fresh threads until the rounds or the time are done, then
/// frees what is left in the slots and compares the live counts.
fn run_configuration<A: Api>(api: &A, name: &str, threads: usize, seed: u64) -> Summary {
    let (scale, seconds) = settings();
    let before = api.live_counts();
    let shared = Shared {
        api,
        transfer: (0..TRANSFERS)
            .map(|_| AtomicPtr::new(core::ptr::null_mut()))
            .collect(),
        scale,
    };
    let start = Instant::now();
    let mut rounds = 0;
    let mut work = Work::default();
    loop {
        let finished = match seconds {
            Some(limit) => rounds > 0 && start.elapsed() >= limit,
            None => rounds == DEFAULT_ROUNDS,
        };
        if finished {
            break;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|tid| {
                    let shared = &shared;
                    let seed = seed ^ ((rounds as u64) << 32) ^ tid as u64;
                    scope.spawn(move || shared.stress(tid, &mut Rng::new(seed)))
                })
                .collect();
            for handle in handles {
                let done = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                work.operations += done.operations;
                work.refusals += done.refusals;
            }
        });
        rounds += 1;
    }
    // Empty the slots on a thread of its own too: a thread's exit is part of what is tested.
    // Joined explicitly: only a join waits for the thread's exit (its thread-local destructors).
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                for slot in &shared.transfer {
                    shared.free_items(slot.swap(core::ptr::null_mut(), Ordering::AcqRel));
                    work.operations += 1;
                }
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
    drop(shared);
    let after = api.live_counts();
    let summary = Summary {
        threads,
        rounds,
        operations: work.operations,
        duration: start.elapsed(),
        findings: work.refusals + (after != before) as u64,
    };
    println!(
        "stress: {name} threads={} rounds={} operations={} duration={:.1}s findings={}",
        summary.threads,
        summary.rounds,
        summary.operations,
        summary.duration.as_secs_f64(),
        summary.findings
    );
    assert_eq!(
        work.refusals, 0,
        "{name}: allocations refused without memory pressure"
    );
    assert_eq!(
        after, before,
        "{name}: live counts (objects, bytes) did not come back"
    );
    summary
}

/// Runs every configuration (2, 4 and 8 threads) in turn.
pub fn run<A: Api>(api: &A, name: &str) {
    // A first thread's start and exit may leave lasting allocations behind in std (thread bookkeeping):
    // let them happen before the counts are taken.
    std::thread::spawn(|| {}).join().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    for (index, threads) in THREAD_COUNTS.into_iter().enumerate() {
        run_configuration(api, name, threads, 0xC1A5_5A11 + index as u64);
    }
}
