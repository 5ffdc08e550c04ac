//! Bad input on every public entry point of `Slab` (issue 7, item 3): size 0, sizes near `usize::MAX`,
//! alignments that are not powers of two or lie above the page size, reallocation to 0 and to sizes the OS
//! cannot give, frees with sizes no allocation has. Each gives an error (never a crash or a misaligned
//! pointer), and a refused call leaves the live counts and the allocation it was given as they were.
//! The OS refusing memory is in `os_refusal.rs`.

use classalloc_slab::{AllocError, FreeError, LargeStats, Slab, Totals, MAX_SMALL_SIZE};
use core::alloc::Layout;
use core::ptr::NonNull;

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

/// Alignments that are not powers of two.
const NOT_POWERS_OF_TWO: [usize; 6] = [0, 3, 24, 4097, usize::MAX, (1 << 20) + 4096];

/// Alignments above the page size, up to ones no address space can honour.
const ABOVE_PAGE: [usize; 8] = [
    8192,
    1 << 16,
    1 << 20,
    1 << 21,
    1 << 26,
    1 << 40,
    1 << 56,
    1 << 62,
];

/// What a leak would change: live objects and bytes, and the pages mapped for large allocations (blocks
/// are left out: an emptied block may stay mapped as its class's spare).
fn counts(slab: &Slab) -> (usize, usize, LargeStats) {
    let Totals {
        live_objects,
        live_bytes,
        ..
    } = slab.totals();
    (live_objects, live_bytes, slab.large_stats())
}

fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { ptr.as_ptr().write_bytes(byte, len) }
}

fn holds(ptr: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
        .iter()
        .all(|&b| b == byte)
}

#[test]
fn size_zero_is_refused_by_every_entry_point() {
    let slab = Slab::new();
    let before = counts(&slab);
    let zero = Layout::from_size_align(0, 8).unwrap();
    assert_eq!(slab.alloc(zero), Err(AllocError::ZeroSize));
    assert_eq!(slab.alloc_zeroed(zero), Err(AllocError::ZeroSize));
    assert_eq!(slab.alloc_aligned(0, 64), Err(AllocError::ZeroSize));
    assert_eq!(slab.malloc(0), Err(AllocError::ZeroSize));
    assert_eq!(slab.calloc(0), Err(AllocError::ZeroSize));
    assert_eq!(counts(&slab), before);

    let p = slab.malloc(48).unwrap();
    fill(p, 48, 0x3C);
    let q = slab.alloc(Layout::new::<[u64; 4]>()).unwrap().cast::<u8>();
    fill(q, 32, 0x4D);
    let during = counts(&slab);
    // SAFETY: every call below is refused before it touches the allocations, which stay live.
    unsafe {
        assert_eq!(slab.free(p, 0), Err(FreeError::ZeroSize));
        assert_eq!(slab.dealloc(q, zero), Err(FreeError::ZeroSize));
        assert_eq!(slab.owner_of(q, zero), None);
        // Reallocation to 0 is an error, and the allocation stays as it was (the caller still owns it).
        assert_eq!(slab.remalloc(p, 48, 0), Err(AllocError::ZeroSize));
        assert_eq!(slab.recalloc(p, 48, 0), Err(AllocError::ZeroSize));
        assert_eq!(
            slab.realloc(q, Layout::new::<[u64; 4]>(), 0),
            Err(AllocError::ZeroSize)
        );
        // A stated old size of 0 matches no allocation.
        assert_eq!(
            slab.remalloc(p, 0, 64),
            Err(AllocError::NotAllocated(FreeError::ZeroSize))
        );
        assert_eq!(
            slab.realloc(q, zero, 64),
            Err(AllocError::NotAllocated(FreeError::ZeroSize))
        );
    }
    assert_eq!(counts(&slab), during);
    assert!(holds(p, 48, 0x3C) && holds(q, 32, 0x4D));
    // SAFETY: both are live with these sizes.
    unsafe {
        slab.free(p, 48).unwrap();
        slab.dealloc(q, Layout::new::<[u64; 4]>()).unwrap();
    }
    assert_eq!(counts(&slab), before);
}

#[test]
fn sizes_near_usize_max_are_refused() {
    let slab = Slab::new();
    let before = counts(&slab);
    for size in OVERFLOWING {
        assert_eq!(slab.malloc(size), Err(AllocError::TooLarge), "{size:#x}");
        assert_eq!(slab.calloc(size), Err(AllocError::TooLarge), "{size:#x}");
        assert_eq!(
            slab.alloc_aligned(size, 8),
            Err(AllocError::TooLarge),
            "{size:#x}"
        );
        if let Ok(layout) = Layout::from_size_align(size, 1) {
            assert_eq!(slab.alloc(layout), Err(AllocError::TooLarge), "{size:#x}");
            assert_eq!(slab.alloc_zeroed(layout), Err(AllocError::TooLarge));
        }
    }
    for size in UNMAPPABLE {
        assert_eq!(slab.malloc(size), Err(AllocError::OutOfMemory), "{size:#x}");
        assert_eq!(slab.calloc(size), Err(AllocError::OutOfMemory), "{size:#x}");
        let layout = Layout::from_size_align(size, 4096).unwrap();
        assert_eq!(slab.alloc(layout), Err(AllocError::OutOfMemory));
    }
    // A layout whose size is fine but whose rounding to a large alignment is not.
    assert_eq!(
        slab.alloc_aligned(isize::MAX as usize - 100, 1 << 20),
        Err(AllocError::TooLarge)
    );
    assert_eq!(counts(&slab), before);
}

#[test]
fn alignments_are_powers_of_two_and_large_ones_are_honoured_or_refused() {
    let slab = Slab::new();
    let before = counts(&slab);
    for align in NOT_POWERS_OF_TWO {
        for size in [1, 64, 5000, 100_000] {
            assert_eq!(
                slab.alloc_aligned(size, align),
                Err(AllocError::BadAlignment),
                "{size} / {align:#x}"
            );
        }
        assert!(classalloc_slab::checked_layout(64, align).is_err());
    }
    assert_eq!(counts(&slab), before);
    for align in ABOVE_PAGE {
        for size in [1, 100, 4096, 8192, 8193, 3 << 20] {
            let Ok(layout) = Layout::from_size_align(size, align) else {
                continue;
            };
            for zeroed in [false, true] {
                let result = if zeroed {
                    slab.alloc_zeroed(layout)
                } else {
                    slab.alloc(layout)
                };
                match result {
                    Ok(block) => {
                        let p = block.cast::<u8>();
                        assert_eq!(p.as_ptr() as usize % align, 0, "{layout:?} misaligned");
                        assert!(block.len() >= size);
                        if zeroed {
                            assert!(holds(p, block.len(), 0), "{layout:?} not zeroed");
                        }
                        fill(p, size, 0xA5);
                        // SAFETY: live allocation of `layout`.
                        unsafe { slab.dealloc(p, layout).unwrap() };
                    }
                    Err(error) => {
                        // Only alignments no address space can provide may be refused.
                        assert!(align >= 1 << 40, "{layout:?}: {error}");
                        assert_eq!(error, AllocError::OutOfMemory, "{layout:?}");
                    }
                }
            }
        }
    }
    // The same through the raw-number entry point.
    for align in [8192, 1 << 20] {
        let block = slab.alloc_aligned(10, align).unwrap();
        assert_eq!(block.cast::<u8>().as_ptr() as usize % align, 0);
        // SAFETY: live allocation of (10, align).
        unsafe {
            slab.dealloc(block.cast(), Layout::from_size_align(10, align).unwrap())
                .unwrap()
        };
    }
    assert_eq!(counts(&slab), before);
}

#[test]
fn failed_reallocations_leave_the_allocation_intact() {
    let slab = Slab::new();
    let before = counts(&slab);
    // Small, page-sized and large allocations of both APIs.
    for size in [24, 4096, 100_000] {
        let p = slab.malloc(size).unwrap();
        fill(p, size, 0x66);
        let layout = Layout::from_size_align(size, 16).unwrap();
        let q = slab.alloc(layout).unwrap().cast::<u8>();
        fill(q, size, 0x77);
        let over = Layout::from_size_align(size, 1 << 16).unwrap();
        let r = slab.alloc(over).unwrap().cast::<u8>();
        fill(r, size, 0x88);
        let during = counts(&slab);
        for new_size in OVERFLOWING.iter().chain(&UNMAPPABLE).chain(&[0]) {
            // SAFETY: every call fails and leaves the allocations live.
            unsafe {
                assert!(slab.remalloc(p, size, *new_size).is_err(), "{new_size:#x}");
                assert!(slab.recalloc(p, size, *new_size).is_err(), "{new_size:#x}");
                assert!(slab.realloc(q, layout, *new_size).is_err(), "{new_size:#x}");
                assert!(slab.realloc(r, over, *new_size).is_err(), "{new_size:#x}");
            }
        }
        assert_eq!(counts(&slab), during, "size {size}");
        assert!(holds(p, size, 0x66) && holds(q, size, 0x77) && holds(r, size, 0x88));
        // SAFETY: all live with these sizes.
        unsafe {
            slab.free(p, size).unwrap();
            slab.dealloc(q, layout).unwrap();
            slab.dealloc(r, over).unwrap();
        }
    }
    assert_eq!(counts(&slab), before);
}

#[test]
fn frees_with_sizes_no_allocation_has_are_refused() {
    let slab = Slab::new();
    let small = slab.malloc(64).unwrap();
    let large = slab.malloc(MAX_SMALL_SIZE * 4).unwrap();
    let during = counts(&slab);
    // The refusal names a size mismatch (a small pointer sent to the large path is also misaligned there),
    // never "size 0".
    let mismatch = |result| {
        matches!(
            result,
            Err(FreeError::ClassMismatch | FreeError::Misaligned)
        )
    };
    for size in OVERFLOWING {
        // SAFETY: refused frees change nothing; both allocations stay live.
        unsafe {
            for p in [small, large] {
                assert!(mismatch(slab.free(p, size)), "{size:#x}");
                if let Ok(layout) = Layout::from_size_align(size, 1) {
                    assert!(mismatch(slab.dealloc(p, layout)), "{size:#x}");
                }
                assert!(
                    matches!(
                        slab.remalloc(p, size, 64),
                        Err(AllocError::NotAllocated(error)) if mismatch(Err(error))
                    ),
                    "{size:#x}"
                );
            }
        }
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(slab.free(small, usize::MAX), Err(FreeError::ClassMismatch));
        assert_eq!(slab.free(large, usize::MAX), Err(FreeError::ClassMismatch));
    }
    assert_eq!(counts(&slab), during);
    // SAFETY: live with these sizes.
    unsafe {
        slab.free(small, 64).unwrap();
        slab.free(large, MAX_SMALL_SIZE * 4).unwrap();
    }
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn a_resize_that_stays_in_its_slot_still_checks_class_and_slab() {
    let slab = Slab::new();
    let other = Slab::new().owned_by(1);
    let p = slab.malloc(64).unwrap();
    fill(p, 64, 0x21);
    let during = (counts(&slab), counts(&other));
    // SAFETY: each resize is refused before it touches anything; `p` stays live in `slab`.
    unsafe {
        // Same size class in the other slab: would be in place, so only the tags can tell.
        assert_eq!(
            other.remalloc(p, 64, 60),
            Err(AllocError::NotAllocated(FreeError::OwnerMismatch))
        );
        let layout = Layout::from_size_align(64, 64).unwrap();
        assert_eq!(
            other.realloc(p, layout, 50),
            Err(AllocError::NotAllocated(FreeError::OwnerMismatch))
        );
        // A layout of another size class than the pointer's: refused, not a 104-byte slot over a
        // 64-byte one.
        let wrong = Layout::from_size_align(100, 4).unwrap();
        assert_eq!(
            slab.realloc(p, wrong, 104),
            Err(AllocError::NotAllocated(FreeError::ClassMismatch))
        );
    }
    assert_eq!((counts(&slab), counts(&other)), during);
    assert!(holds(p, 64, 0x21));
    // SAFETY: live, 64 bytes, in `slab`.
    unsafe { slab.free(p, 64).unwrap() };
}
