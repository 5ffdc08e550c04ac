//! The OS refusing memory (issue 7, item 3), through every facade entry point: under an address-space
//! limit (`RLIMIT_AS`) `Global`, the seed's functions, `ClassAlloc`'s calls and its handles give null or an
//! error, never a crash or a bogus pointer; a refused call changes no live count and no live allocation;
//! once memory is available again everything works and all of it can be freed.
//!
//! The limit is process-wide, so the test re-runs this binary as a child process that sets it; the parent
//! checks that the child got to the end.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as ApiVec;
use classalloc::{lifetime_class, AllocError, ClassAlloc, Global, LargeStats, Totals};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use std::process::Command;

const CHILD: &str = "CLASSALLOC_OS_REFUSAL_CHILD";
const DONE: &str = "os-refusal child: every refusal checked";

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Warm,
    Cold,
}
lifetime_class!(Life);

static ALLOC: ClassAlloc<Life> = ClassAlloc::new();

/// The process's mapped address space (what `RLIMIT_AS` limits), from `/proc/self/statm`.
fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

/// Sets the soft address-space limit; returns the previous limits.
fn limit_address_space(bytes: u64) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write plain structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: bytes.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

fn restore(old: &libc::rlimit) {
    // SAFETY: restoring limits read by getrlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, old) }, 0);
}

/// Live objects and bytes of the process-wide slab and of both classes, and pages mapped for large
/// allocations: what a leak would change.
fn counts() -> [(usize, usize, LargeStats); 3] {
    let live = |totals: Totals, large| (totals.live_objects, totals.live_bytes, large);
    [
        live(classalloc::totals(), classalloc::large_stats()),
        live(
            ALLOC.class_totals(Life::Warm),
            ALLOC.table().slab(Life::Warm).large_stats(),
        ),
        live(
            ALLOC.class_totals(Life::Cold),
            ALLOC.table().slab(Life::Cold).large_stats(),
        ),
    ]
}

fn fill(ptr: *mut u8, len: usize, byte: u8) {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { ptr.write_bytes(byte, len) }
}

fn holds(ptr: *const u8, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr, len) }
        .iter()
        .all(|&b| b == byte)
}

/// Allocations made under a loose limit, resized under a tight one, and freed after.
struct Live {
    small: *mut u8,
    large: *mut u8,
    global_small: *mut u8,
    global_large: *mut u8,
    warm_small: NonNull<u8>,
    warm_large: NonNull<u8>,
}

const SMALL: usize = 48;
const LARGE: usize = 1 << 20;
const SMALL_LAYOUT: Layout = Layout::new::<[u64; 6]>();
const LARGE_LAYOUT: Layout = match Layout::from_size_align(LARGE, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("a valid layout"),
};

fn allocate_live() -> Live {
    let global = Global::new();
    // SAFETY: layouts of non-zero size.
    let (global_small, global_large) =
        unsafe { (global.alloc(SMALL_LAYOUT), global.alloc(LARGE_LAYOUT)) };
    let live = Live {
        small: classalloc::malloc(SMALL),
        large: classalloc::malloc(LARGE),
        global_small,
        global_large,
        warm_small: ALLOC.malloc(Life::Warm, SMALL).unwrap(),
        warm_large: ALLOC.alloc(Life::Warm, LARGE_LAYOUT).unwrap().cast(),
    };
    for (p, len, byte) in live.contents() {
        assert!(!p.is_null());
        fill(p, len, byte);
    }
    live
}

impl Live {
    fn contents(&self) -> [(*mut u8, usize, u8); 6] {
        [
            (self.small, SMALL, 1),
            (self.large, LARGE, 2),
            (self.global_small, SMALL, 3),
            (self.global_large, LARGE, 4),
            (self.warm_small.as_ptr(), SMALL, 5),
            (self.warm_large.as_ptr(), LARGE, 6),
        ]
    }

    fn intact(&self) -> bool {
        self.contents()
            .iter()
            .all(|&(p, len, byte)| holds(p, len, byte))
    }

    fn free(self) {
        let global = Global::new();
        // SAFETY: each is live with the size and API it was allocated with.
        unsafe {
            classalloc::free(self.small, SMALL);
            classalloc::free(self.large, LARGE);
            global.dealloc(self.global_small, SMALL_LAYOUT);
            global.dealloc(self.global_large, LARGE_LAYOUT);
            ALLOC
                .free_sized(Life::Warm, self.warm_small, SMALL)
                .unwrap();
            ALLOC
                .free(Life::Warm, self.warm_large, LARGE_LAYOUT)
                .unwrap();
        }
    }
}

/// Under a limit no new mapping fits in: every call that needs one is refused, and changes nothing.
fn every_entry_point_refuses(live: &Live) {
    let global = Global::new();
    let cold = ALLOC.handle(Life::Cold);
    let before = counts();
    // Sizes whose class has no block yet, large sizes, over-aligned layouts: each needs a new mapping.
    for size in [100, 3000, 8192, 20_000, 1 << 20, 64 << 20] {
        assert!(classalloc::malloc(size).is_null(), "malloc {size}");
        assert!(classalloc::calloc(size).is_null(), "calloc {size}");
        assert!(classalloc::aligned_alloc(size, 1 << 16).is_null());
        assert_eq!(
            ALLOC.malloc(Life::Cold, size),
            Err(AllocError::OutOfMemory),
            "class malloc {size}"
        );
        assert_eq!(
            ALLOC.calloc_sized(Life::Warm, size),
            Err(AllocError::OutOfMemory)
        );
        for align in [8, 4096, 1 << 16] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: layouts of non-zero size.
            unsafe {
                assert!(global.alloc(layout).is_null(), "{layout:?}");
                assert!(global.alloc_zeroed(layout).is_null(), "{layout:?}");
            }
            assert_eq!(
                ALLOC.alloc(Life::Cold, layout),
                Err(AllocError::OutOfMemory)
            );
            assert_eq!(
                ALLOC.calloc(Life::Warm, layout),
                Err(AllocError::OutOfMemory)
            );
            assert!(cold.allocate(layout).is_err() && cold.allocate_zeroed(layout).is_err());
            // SAFETY: as above (the default class, Warm, has no block of these sizes).
            unsafe {
                assert!(GlobalAlloc::alloc(&ALLOC, layout).is_null(), "{layout:?}");
                assert!(GlobalAlloc::alloc_zeroed(&ALLOC, layout).is_null());
            }
        }
    }
    // Collections in a handle: the growth fails, the collection is left as it was.
    let mut v: ApiVec<u64, _> = ApiVec::new_in(cold);
    assert!(v.try_reserve(1000).is_err());
    assert!(v.try_reserve(1 << 30).is_err());
    // Resizes that need a new mapping: into a class with no block, or a large allocation that grows
    // (mremap cannot extend the address space either). The old allocation stays.
    // SAFETY: every allocation is live with the stated size and class; the resizes fail.
    unsafe {
        for new_size in [3000, 64 << 20] {
            assert!(classalloc::realloc(live.small, SMALL, new_size).is_null());
            assert!(classalloc::recalloc(live.small, SMALL, new_size).is_null());
            assert!(global
                .realloc(live.global_small, SMALL_LAYOUT, new_size)
                .is_null());
            assert!(ALLOC
                .remalloc(Life::Warm, live.warm_small, SMALL, new_size)
                .is_err());
        }
        for new_size in [3000, 4 << 20, 64 << 20] {
            assert!(classalloc::realloc(live.large, LARGE, new_size).is_null());
            assert!(global
                .realloc(live.global_large, LARGE_LAYOUT, new_size)
                .is_null());
            assert!(ALLOC
                .realloc(Life::Warm, live.warm_large, LARGE_LAYOUT, new_size)
                .is_err());
            let grown = Layout::from_size_align(new_size, 8).unwrap();
            assert!(cold
                .grow(NonNull::dangling(), Layout::new::<()>(), grown)
                .is_err());
        }
    }
    assert_eq!(counts(), before);
    assert!(live.intact(), "a refused call changed a live allocation");
}

/// Runs in the child: allocates, limits the address space, checks every refusal, lifts the limit, frees.
fn under_the_limit() {
    let start = counts();
    let mut objects: Vec<*mut u8> = Vec::with_capacity(1 << 20);
    // A limit with some room, set before the first allocation: a page source that reserves address
    // space ahead of use finds no room for a reservation, so the limit bites block by block. The
    // 64-byte class then runs until a new block is refused.
    let old = limit_address_space(address_space() + (16 << 20));
    let live = allocate_live();
    while objects.len() < objects.capacity() {
        let p = classalloc::malloc(64);
        if p.is_null() {
            break;
        }
        fill(p, 64, 0x40);
        objects.push(p);
    }
    assert!(
        !objects.is_empty() && objects.len() < objects.capacity(),
        "{} objects: the limit never bit",
        objects.len()
    );
    // No room at all: every new mapping is refused.
    limit_address_space(address_space());
    every_entry_point_refuses(&live);
    restore(&old);
    assert!(objects.iter().all(|&p| holds(p, 64, 0x40)));
    // Memory is back: the same calls succeed, and everything returns.
    let p = classalloc::malloc(64 << 20);
    assert!(!p.is_null());
    // SAFETY: live, 64 MiB.
    unsafe { classalloc::free(p, 64 << 20) };
    let q = ALLOC.malloc(Life::Cold, 3000).unwrap();
    // SAFETY: live in Cold, 3000 bytes.
    unsafe { ALLOC.free_sized(Life::Cold, q, 3000).unwrap() };
    for p in objects {
        // SAFETY: live, 64 bytes.
        unsafe { classalloc::free(p, 64) };
    }
    live.free();
    assert_eq!(counts(), start);
    println!("{DONE}");
}

#[test]
fn every_entry_point_gives_null_or_an_error_when_the_os_refuses_memory() {
    if std::env::var_os(CHILD).is_some() {
        under_the_limit();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "every_entry_point_gives_null_or_an_error_when_the_os_refuses_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(DONE),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
