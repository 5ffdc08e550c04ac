//! Bad input on every public entry point of the facade (issue 7, item 3): `Global` as a `GlobalAlloc`, the
//! seed's functions, `ClassAlloc<C>`'s explicit calls and its handles as `Allocator`s. Size 0, sizes near
//! `usize::MAX`, alignments that are not powers of two or lie above the page size, reallocation to 0 and
//! to sizes the OS cannot give: an error, a null pointer or (for an `Allocator` and size 0) a dangling one,
//! never a crash or a misaligned pointer; a refused call leaves the allocation it was given and the live
//! counts as they were. The OS refusing memory is in `os_refusal.rs`.
//!
//! This binary keeps the system allocator as its global allocator, so `classalloc::totals()` counts only
//! what the tests allocate; the tests that use the process-wide slab take `SERIAL` so their counts do not
//! mix.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as ApiVec;
use classalloc::{lifetime_class, AllocError, ClassAlloc, FreeError, Global, LargeStats, Totals};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Short,
    Long,
}
lifetime_class!(Life);

/// Sizes whose rounding overflows or exceeds `isize::MAX`: refused before any system call.
const OVERFLOWING: [usize; 5] = [
    usize::MAX,
    usize::MAX - 4095,
    usize::MAX / 2 + 1,
    isize::MAX as usize,
    isize::MAX as usize - 4094,
];
/// Sizes that round fine but exceed any address space: the OS refuses them.
const UNMAPPABLE: [usize; 3] = [1 << 62, 1 << 56, isize::MAX as usize - 4095];
/// Every size above that no allocation can be resized to or made with, and 0.
const HOPELESS: [usize; 9] = [
    0,
    usize::MAX,
    usize::MAX - 4095,
    usize::MAX / 2 + 1,
    isize::MAX as usize,
    isize::MAX as usize - 4094,
    1 << 62,
    1 << 56,
    isize::MAX as usize - 4095,
];
/// Alignments that are not powers of two.
const NOT_POWERS_OF_TWO: [usize; 6] = [0, 3, 24, 4097, usize::MAX, (1 << 20) + 4096];
/// Alignments above the page size, up to ones no address space can honour.
const ABOVE_PAGE: [usize; 7] = [8192, 1 << 16, 1 << 20, 1 << 21, 1 << 40, 1 << 56, 1 << 62];
/// Sizes to try with each alignment: small, the largest small class, large.
const SIZES: [usize; 5] = [1, 100, 8192, 8193, 3 << 20];

/// Serialises the tests that use the process-wide slab (`Global` and the seed's functions).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a leak would change: live objects and bytes, and the pages mapped for large allocations (blocks
/// are left out: an emptied block may stay mapped as its class's spare).
fn live(totals: Totals, large: LargeStats) -> (usize, usize, LargeStats) {
    (totals.live_objects, totals.live_bytes, large)
}

fn global_counts() -> (usize, usize, LargeStats) {
    live(classalloc::totals(), classalloc::large_stats())
}

fn class_counts(alloc: &ClassAlloc<Life>, class: Life) -> (usize, usize, LargeStats) {
    live(
        alloc.class_totals(class),
        alloc.table().slab(class).large_stats(),
    )
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

/// An alignment this process may fail to get: more than the address space can spare.
fn may_be_refused(align: usize) -> bool {
    align >= 1 << 40
}

// ----- the seed's functions --------------------------------------------------------------------------

#[test]
fn seed_functions_give_null_for_bad_sizes() {
    let _serial = serial();
    let before = global_counts();
    for size in HOPELESS {
        assert!(classalloc::malloc(size).is_null(), "{size:#x}");
        assert!(classalloc::calloc(size).is_null(), "{size:#x}");
        assert!(classalloc::aligned_alloc(size, 8).is_null(), "{size:#x}");
        assert!(
            classalloc::aligned_alloc(size, 1 << 16).is_null(),
            "{size:#x}"
        );
        // SAFETY: a null pointer allocates.
        unsafe {
            assert!(classalloc::realloc(ptr::null_mut(), 0, size).is_null());
            assert!(classalloc::recalloc(ptr::null_mut(), 0, size).is_null());
        }
    }
    // Null is ignored by every free.
    // SAFETY: null pointers.
    unsafe {
        classalloc::free(ptr::null_mut(), 0);
        classalloc::free(ptr::null_mut(), usize::MAX);
        classalloc::aligned_free(ptr::null_mut(), 0, 3);
        assert_eq!(classalloc::try_free(ptr::null_mut(), 0), Ok(()));
    }
    assert_eq!(global_counts(), before);
}

#[test]
fn aligned_alloc_refuses_non_powers_of_two_and_honours_or_refuses_large_alignments() {
    let _serial = serial();
    let before = global_counts();
    for align in NOT_POWERS_OF_TWO {
        for size in SIZES {
            assert!(
                classalloc::aligned_alloc(size, align).is_null(),
                "{size} / {align:#x}"
            );
        }
    }
    assert_eq!(global_counts(), before);
    for align in ABOVE_PAGE {
        for size in SIZES {
            let p = classalloc::aligned_alloc(size, align);
            if p.is_null() {
                assert!(may_be_refused(align), "{size} / {align:#x} refused");
                continue;
            }
            assert_eq!(p as usize % align, 0, "{size} / {align:#x} misaligned");
            fill(p, size, 0x5A);
            // SAFETY: allocated just above with (size, align).
            unsafe { classalloc::aligned_free(p, size, align) };
        }
    }
    assert_eq!(global_counts(), before);
}

#[test]
fn seed_realloc_to_0_or_to_an_impossible_size_gives_null_and_keeps_the_allocation() {
    let _serial = serial();
    let before = global_counts();
    for size in [24, 4096, 100_000] {
        let p = classalloc::malloc(size);
        let z = classalloc::calloc(size);
        assert!(!p.is_null() && !z.is_null());
        fill(p, size, 0x11);
        fill(z, size, 0x22);
        let during = global_counts();
        for new_size in HOPELESS {
            // SAFETY: live allocations of `size` bytes; a null return leaves them allocated.
            unsafe {
                assert!(
                    classalloc::realloc(p, size, new_size).is_null(),
                    "{new_size:#x}"
                );
                assert!(
                    classalloc::recalloc(z, size, new_size).is_null(),
                    "{new_size:#x}"
                );
            }
        }
        assert_eq!(global_counts(), during, "size {size}");
        assert!(holds(p, size, 0x11) && holds(z, size, 0x22), "size {size}");
        // SAFETY: still live with `size` bytes.
        unsafe {
            classalloc::free(p, size);
            classalloc::free(z, size);
        }
    }
    assert_eq!(global_counts(), before);
}

#[test]
fn try_free_refuses_sizes_no_allocation_has_and_changes_nothing() {
    let _serial = serial();
    let p = classalloc::malloc(64);
    let large = classalloc::malloc(50_000);
    let during = global_counts();
    // SAFETY: refused frees leave both allocations live.
    unsafe {
        for q in [p, large] {
            assert_eq!(classalloc::try_free(q, 0), Err(FreeError::ZeroSize));
            assert_eq!(
                classalloc::try_free(q, usize::MAX),
                Err(FreeError::ClassMismatch)
            );
            assert_eq!(
                classalloc::try_free(q, usize::MAX / 2 + 1),
                Err(FreeError::ClassMismatch)
            );
        }
    }
    assert_eq!(global_counts(), during);
    // SAFETY: live with these sizes.
    unsafe {
        classalloc::free(p, 64);
        classalloc::free(large, 50_000);
    }
}

// ----- Global as a GlobalAlloc -----------------------------------------------------------------------

#[test]
fn global_gives_null_for_bad_layouts_and_honours_large_alignments() {
    let _serial = serial();
    let before = global_counts();
    let global = Global::new();
    let mut bad: Vec<Layout> = OVERFLOWING
        .iter()
        .chain(&UNMAPPABLE)
        .filter_map(|&size| Layout::from_size_align(size, 1).ok())
        .collect();
    // A zero size breaks GlobalAlloc's contract; the allocator still answers null, not a pointer.
    bad.push(Layout::from_size_align(0, 8).unwrap());
    bad.push(Layout::from_size_align(isize::MAX as usize - (1 << 20), 1 << 20).unwrap());
    for layout in bad {
        // SAFETY: the calls only ask; a null return is expected.
        unsafe {
            assert!(global.alloc(layout).is_null(), "{layout:?}");
            assert!(global.alloc_zeroed(layout).is_null(), "{layout:?}");
        }
    }
    assert_eq!(global_counts(), before);
    for align in ABOVE_PAGE {
        for size in SIZES {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            for zeroed in [false, true] {
                // SAFETY: a valid layout of non-zero size.
                let p = unsafe {
                    if zeroed {
                        global.alloc_zeroed(layout)
                    } else {
                        global.alloc(layout)
                    }
                };
                if p.is_null() {
                    assert!(may_be_refused(align), "{layout:?} refused");
                    continue;
                }
                assert_eq!(p as usize % align, 0, "{layout:?} misaligned");
                if zeroed {
                    assert!(holds(p, size, 0), "{layout:?}");
                }
                fill(p, size, 0xC3);
                // SAFETY: allocated above with `layout`.
                unsafe { global.dealloc(p, layout) };
            }
        }
    }
    // SAFETY: null is ignored.
    unsafe { global.dealloc(ptr::null_mut(), Layout::new::<u64>()) };
    assert_eq!(global_counts(), before);
}

#[test]
fn global_realloc_failures_keep_the_allocation() {
    let _serial = serial();
    let before = global_counts();
    let global = Global::new();
    for (size, align) in [(24, 8), (4096, 4096), (100_000, 8), (100, 1 << 16)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a valid layout of non-zero size.
        let p = unsafe { global.alloc(layout) };
        assert!(!p.is_null());
        fill(p, size, 0x99);
        let during = global_counts();
        for new_size in HOPELESS {
            // SAFETY: `p` is live with `layout`. New sizes of 0 or whose rounding overflows break
            // GlobalAlloc's contract; the allocator still refuses them with null.
            let q = unsafe { global.realloc(p, layout, new_size) };
            assert!(q.is_null(), "{layout:?} -> {new_size:#x}");
        }
        // SAFETY: null reallocates nothing.
        assert!(unsafe { global.realloc(ptr::null_mut(), layout, 64) }.is_null());
        assert_eq!(global_counts(), during, "{layout:?}");
        assert!(holds(p, size, 0x99), "{layout:?}");
        // SAFETY: still live with `layout`.
        unsafe { global.dealloc(p, layout) };
    }
    assert_eq!(global_counts(), before);
}

// ----- ClassAlloc: explicit classes -------------------------------------------------------------------

#[test]
fn explicit_class_calls_refuse_bad_sizes_and_alignments() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    let before = class_counts(&ALLOC, Life::Short);
    for size in HOPELESS {
        assert!(ALLOC.malloc(Life::Short, size).is_err(), "{size:#x}");
        assert!(ALLOC.calloc_sized(Life::Short, size).is_err(), "{size:#x}");
        if let Ok(layout) = Layout::from_size_align(size, 8) {
            assert!(ALLOC.alloc(Life::Short, layout).is_err(), "{size:#x}");
            assert!(ALLOC.calloc(Life::Short, layout).is_err(), "{size:#x}");
        }
    }
    assert_eq!(ALLOC.malloc(Life::Short, 0), Err(AllocError::ZeroSize));
    assert_eq!(
        ALLOC.malloc(Life::Short, usize::MAX),
        Err(AllocError::TooLarge)
    );
    assert_eq!(
        ALLOC.malloc(Life::Short, 1 << 62),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
    for align in ABOVE_PAGE {
        for size in SIZES {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            match ALLOC.calloc(Life::Short, layout) {
                Ok(block) => {
                    let p = block.cast::<u8>();
                    assert_eq!(p.as_ptr() as usize % align, 0, "{layout:?} misaligned");
                    assert!(block.len() >= size && holds(p.as_ptr(), size, 0));
                    // SAFETY: allocated above in Short with `layout`.
                    unsafe { ALLOC.free(Life::Short, p, layout).unwrap() };
                }
                Err(error) => assert!(may_be_refused(align), "{layout:?}: {error}"),
            }
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
}

#[test]
fn explicit_class_resizes_and_frees_that_fail_change_nothing() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    let before = [Life::Short, Life::Long].map(|class| class_counts(&ALLOC, class));
    for size in [24, 4096, 100_000] {
        let p = ALLOC.malloc(Life::Short, size).unwrap();
        fill(p.as_ptr(), size, 0x31);
        let layout = Layout::from_size_align(size, 64).unwrap();
        let q = ALLOC.alloc(Life::Short, layout).unwrap().cast::<u8>();
        fill(q.as_ptr(), size, 0x32);
        let during = [Life::Short, Life::Long].map(|class| class_counts(&ALLOC, class));
        // SAFETY: every call below fails and leaves `p` and `q` live in Short.
        unsafe {
            for new_size in HOPELESS {
                assert!(ALLOC.remalloc(Life::Short, p, size, new_size).is_err());
                assert!(ALLOC.recalloc(Life::Short, p, size, new_size).is_err());
                assert!(ALLOC.realloc(Life::Short, q, layout, new_size).is_err());
            }
            // Frees with sizes no allocation has, or into the other class.
            assert_eq!(
                ALLOC.free_sized(Life::Short, p, 0),
                Err(FreeError::ZeroSize)
            );
            assert_eq!(
                ALLOC.free_sized(Life::Short, p, usize::MAX),
                Err(FreeError::ClassMismatch)
            );
            assert_eq!(
                ALLOC.free(Life::Short, q, Layout::from_size_align(0, 64).unwrap()),
                Err(FreeError::ZeroSize)
            );
            assert!(ALLOC.free_sized(Life::Long, p, size).is_err());
            assert!(ALLOC.free(Life::Long, q, layout).is_err());
            // Resizes sent to the other class are refused too, in place (same size class) or not.
            for new_size in [size + 1, size * 2] {
                assert!(
                    matches!(
                        ALLOC.realloc(Life::Long, q, layout, new_size),
                        Err(AllocError::NotAllocated(_))
                    ),
                    "{size} -> {new_size}"
                );
                assert!(
                    matches!(
                        ALLOC.remalloc(Life::Long, p, size, new_size),
                        Err(AllocError::NotAllocated(_))
                    ),
                    "{size} -> {new_size}"
                );
            }
        }
        assert_eq!(
            [Life::Short, Life::Long].map(|class| class_counts(&ALLOC, class)),
            during,
            "size {size}"
        );
        assert!(holds(p.as_ptr(), size, 0x31) && holds(q.as_ptr(), size, 0x32));
        // SAFETY: live in Short with these sizes.
        unsafe {
            ALLOC.free_sized(Life::Short, p, size).unwrap();
            ALLOC.free(Life::Short, q, layout).unwrap();
        }
    }
    assert_eq!(
        [Life::Short, Life::Long].map(|class| class_counts(&ALLOC, class)),
        before
    );
}

#[test]
fn class_alloc_as_a_global_alloc_gives_null_for_bad_layouts_and_keeps_what_it_was_given() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    // Outside any scope, global allocations go to the default class, Short.
    let before = class_counts(&ALLOC, Life::Short);
    let mut bad: Vec<Layout> = OVERFLOWING
        .iter()
        .chain(&UNMAPPABLE)
        .filter_map(|&size| Layout::from_size_align(size, 1).ok())
        .collect();
    // A zero size breaks GlobalAlloc's contract; the allocator still answers null.
    bad.push(Layout::from_size_align(0, 8).unwrap());
    for layout in bad {
        // SAFETY: the calls only ask; a null return is expected.
        unsafe {
            assert!(GlobalAlloc::alloc(&ALLOC, layout).is_null(), "{layout:?}");
            assert!(GlobalAlloc::alloc_zeroed(&ALLOC, layout).is_null());
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
    for align in ABOVE_PAGE {
        for size in SIZES {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            // SAFETY: a valid layout of non-zero size.
            let p = unsafe { GlobalAlloc::alloc_zeroed(&ALLOC, layout) };
            if p.is_null() {
                assert!(may_be_refused(align), "{layout:?} refused");
                continue;
            }
            assert_eq!(p as usize % align, 0, "{layout:?} misaligned");
            assert!(holds(p, size, 0));
            // SAFETY: allocated above with `layout`.
            unsafe { GlobalAlloc::dealloc(&ALLOC, p, layout) };
        }
    }
    for (size, align) in [(24, 8), (100_000, 8), (100, 1 << 16)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a valid layout of non-zero size.
        let p = unsafe { GlobalAlloc::alloc(&ALLOC, layout) };
        fill(p, size, 0x1F);
        let during = class_counts(&ALLOC, Life::Short);
        for new_size in HOPELESS {
            // SAFETY: `p` is live with `layout`; the resize fails and keeps it (sizes of 0 or whose
            // rounding overflows break GlobalAlloc's contract, and are refused all the same).
            assert!(unsafe { GlobalAlloc::realloc(&ALLOC, p, layout, new_size) }.is_null());
        }
        assert_eq!(class_counts(&ALLOC, Life::Short), during);
        assert!(holds(p, size, 0x1F));
        // SAFETY: still live with `layout`; null is ignored.
        unsafe {
            GlobalAlloc::dealloc(&ALLOC, p, layout);
            GlobalAlloc::dealloc(&ALLOC, ptr::null_mut(), layout);
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
    assert_eq!(ALLOC.class_totals(Life::Long).blocks, 0);
}

// ----- ClassAlloc: handles as Allocators ---------------------------------------------------------------

#[test]
fn a_handle_gives_dangling_pointers_for_size_0_and_errors_for_impossible_layouts() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    let handle = ALLOC.handle(Life::Long);
    let before = class_counts(&ALLOC, Life::Long);
    // Size 0 with any alignment: a dangling, aligned pointer that takes no memory.
    for align in [1, 8, 4096, 1 << 20, 1 << 40] {
        let layout = Layout::from_size_align(0, align).unwrap();
        for block in [
            handle.allocate(layout).unwrap(),
            handle.allocate_zeroed(layout).unwrap(),
        ] {
            assert_eq!(block.len(), 0);
            assert_eq!(block.cast::<u8>().as_ptr() as usize % align, 0);
            // SAFETY: "allocated" above with `layout`.
            unsafe { handle.deallocate(block.cast(), layout) };
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Long), before);
    for size in OVERFLOWING.iter().chain(&UNMAPPABLE) {
        if let Ok(layout) = Layout::from_size_align(*size, 1) {
            assert!(handle.allocate(layout).is_err(), "{layout:?}");
            assert!(handle.allocate_zeroed(layout).is_err(), "{layout:?}");
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Long), before);
    for align in ABOVE_PAGE {
        for size in SIZES {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            match handle.allocate_zeroed(layout) {
                Ok(block) => {
                    let p = block.cast::<u8>();
                    assert_eq!(p.as_ptr() as usize % align, 0, "{layout:?} misaligned");
                    assert!(block.len() >= size && holds(p.as_ptr(), block.len(), 0));
                    // SAFETY: allocated above with `layout`.
                    unsafe { handle.deallocate(p, layout) };
                }
                Err(_) => assert!(may_be_refused(align), "{layout:?} refused"),
            }
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Long), before);
}

#[test]
fn a_handle_grows_from_0_shrinks_to_0_and_keeps_the_block_when_growth_fails() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    let handle = ALLOC.handle(Life::Short);
    let before = class_counts(&ALLOC, Life::Short);
    let empty = Layout::from_size_align(0, 16).unwrap();
    let dangling = handle.allocate(empty).unwrap().cast::<u8>();
    let grown_layout = Layout::from_size_align(200, 16).unwrap();
    // SAFETY: `dangling` is the zero-sized block of `empty`; 200 >= 0.
    let grown = unsafe { handle.grow_zeroed(dangling, empty, grown_layout) }.unwrap();
    assert!(holds(grown.cast::<u8>().as_ptr(), grown.len(), 0));
    fill(grown.cast::<u8>().as_ptr(), 200, 0x44);
    let during = class_counts(&ALLOC, Life::Short);
    for size in OVERFLOWING.iter().chain(&UNMAPPABLE) {
        for align in [16, 1 << 16] {
            let Ok(huge) = Layout::from_size_align(*size, align) else {
                continue;
            };
            // SAFETY: `grown` is live with `grown_layout`; the growth fails and keeps it.
            unsafe {
                assert!(handle.grow(grown.cast(), grown_layout, huge).is_err());
                assert!(handle
                    .grow_zeroed(grown.cast(), grown_layout, huge)
                    .is_err());
            }
        }
    }
    assert_eq!(class_counts(&ALLOC, Life::Short), during);
    assert!(holds(grown.cast::<u8>().as_ptr(), 200, 0x44));
    // Shrinking to 0 gives the memory back and returns a dangling block.
    // SAFETY: `grown` is live with `grown_layout`.
    let shrunk = unsafe { handle.shrink(grown.cast(), grown_layout, empty) }.unwrap();
    assert_eq!(shrunk.len(), 0);
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
    // SAFETY: the zero-sized block of `empty`.
    unsafe { handle.deallocate(shrunk.cast(), empty) };
    assert_eq!(class_counts(&ALLOC, Life::Short), before);
}

#[test]
fn collections_in_a_handle_report_count_times_size_overflow_and_huge_requests_as_errors() {
    static ALLOC: ClassAlloc<Life> = ClassAlloc::new();
    let handle = ALLOC.handle(Life::Long);
    let before = class_counts(&ALLOC, Life::Long);
    // count x size overflows: caught where the collection multiplies, before the allocator.
    let mut words: ApiVec<u64, _> = ApiVec::new_in(handle);
    assert!(words.try_reserve(usize::MAX / 2).is_err());
    assert!(words.try_reserve_exact(usize::MAX / 4).is_err());
    let overflow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ApiVec::<u64, _>::with_capacity_in(usize::MAX / 2, handle)
    }));
    assert!(
        overflow.is_err(),
        "with_capacity_in must refuse, not allocate"
    );
    // The product fits but no allocator can give it: the allocator says no.
    let mut bytes: ApiVec<u8, _> = ApiVec::new_in(handle);
    assert!(bytes.try_reserve(isize::MAX as usize).is_err());
    assert!(bytes.try_reserve(1 << 62).is_err());
    let mut map: hashbrown::HashMap<u64, u64, _, _> = hashbrown::HashMap::new_in(handle);
    assert!(map.try_reserve(usize::MAX / 2).is_err());
    assert!(map.try_reserve(1 << 58).is_err());
    assert_eq!(class_counts(&ALLOC, Life::Long), before);
    // A live vector that fails to grow keeps its contents.
    words.extend(0..1000u64);
    let during = class_counts(&ALLOC, Life::Long);
    assert!(words.try_reserve(usize::MAX / 16).is_err());
    assert!(words.try_reserve(1 << 58).is_err());
    assert_eq!(class_counts(&ALLOC, Life::Long), during);
    assert!(words.iter().copied().eq(0..1000));
    drop((words, bytes, map));
    assert_eq!(class_counts(&ALLOC, Life::Long), before);
}
