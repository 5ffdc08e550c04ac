//! Bad input through `ClassTable` (issue 7, item 3): every call refuses size 0, sizes whose rounding
//! overflows and sizes the OS cannot give; frees and resizes with impossible sizes or sent to another class
//! are refused; nothing a refused call was given changes, in its class or any other.

use classalloc_registry::{lifetime_class, ClassTable};
use classalloc_slab::{AllocError, FreeError, Totals};
use core::alloc::Layout;
use core::ptr::NonNull;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Frame,
    Request,
    Cache,
}
lifetime_class!(Life);

const CLASSES: [Life; 3] = [Life::Frame, Life::Request, Life::Cache];

/// Sizes no allocation can have: 0, rounding that overflows, more than any address space.
const HOPELESS: [usize; 6] = [
    0,
    usize::MAX,
    usize::MAX - 4095,
    isize::MAX as usize,
    1 << 62,
    1 << 56,
];

/// Live objects and bytes and large mapped bytes of every class.
fn counts(table: &ClassTable<Life>) -> [(usize, usize, usize); 3] {
    CLASSES.map(|class| {
        let Totals {
            live_objects,
            live_bytes,
            ..
        } = table.totals(class);
        let large = table.large_stats_at(class as usize);
        (live_objects, live_bytes, large.mapped_bytes)
    })
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
fn allocations_with_impossible_sizes_are_refused_in_every_class() {
    let table = ClassTable::<Life>::new();
    let before = counts(&table);
    for class in CLASSES {
        for size in HOPELESS {
            assert!(table.malloc(class, size).is_err(), "{size:#x}");
            assert!(table.calloc(class, size).is_err(), "{size:#x}");
            for align in [1, 4096, 1 << 16] {
                if let Ok(layout) = Layout::from_size_align(size, align) {
                    assert!(table.alloc(class, layout).is_err(), "{layout:?}");
                    assert!(table.alloc_zeroed(class, layout).is_err(), "{layout:?}");
                }
            }
        }
        assert_eq!(table.malloc(class, 0), Err(AllocError::ZeroSize));
        assert_eq!(table.malloc(class, usize::MAX), Err(AllocError::TooLarge));
        assert_eq!(table.malloc(class, 1 << 62), Err(AllocError::OutOfMemory));
    }
    assert_eq!(counts(&table), before);
}

#[test]
fn refused_frees_and_resizes_change_nothing_in_any_class() {
    let table = ClassTable::<Life>::new();
    let before = counts(&table);
    for size in [8, 24, 4096, 8192, 40_000] {
        let p = table.malloc(Life::Request, size).unwrap();
        fill(p, size, 0x6B);
        let layout = Layout::from_size_align(size, 8).unwrap();
        let q = table.alloc(Life::Request, layout).unwrap().cast::<u8>();
        fill(q, size, 0x6C);
        let during = counts(&table);
        // SAFETY: every call below is refused before it touches anything; `p` and `q` stay live.
        unsafe {
            for bad in HOPELESS {
                assert!(table.free(Life::Request, p, bad).is_err(), "{bad:#x}");
                assert!(table.remalloc(Life::Request, p, size, bad).is_err());
                assert!(table.recalloc(Life::Request, p, size, bad).is_err());
                assert!(table.realloc(Life::Request, q, layout, bad).is_err());
                if let Ok(bad_layout) = Layout::from_size_align(bad, 8) {
                    assert!(table.dealloc(Life::Request, q, bad_layout).is_err());
                }
            }
            assert_eq!(table.free(Life::Request, p, 0), Err(FreeError::ZeroSize));
            // Sent to another class, whether the resize would stay in place or not.
            for other in [Life::Frame, Life::Cache] {
                assert!(table.free(other, p, size).is_err());
                assert!(table.dealloc(other, q, layout).is_err());
                for new_size in [size, size + 1, size * 3] {
                    assert!(matches!(
                        table.remalloc(other, p, size, new_size),
                        Err(AllocError::NotAllocated(_))
                    ));
                    assert!(matches!(
                        table.realloc(other, q, layout, new_size),
                        Err(AllocError::NotAllocated(_))
                    ));
                }
            }
            // No small allocation has a zero-sized layout (a large one is found in its registry).
            if size <= 8192 {
                assert_eq!(
                    table.class_of(q, Layout::from_size_align(0, 8).unwrap()),
                    None
                );
            }
            assert_eq!(table.class_of(q, layout), Some(Life::Request as usize));
        }
        assert_eq!(counts(&table), during, "size {size}");
        assert!(holds(p, size, 0x6B) && holds(q, size, 0x6C), "size {size}");
        // SAFETY: live in Request with these sizes.
        unsafe {
            table.free(Life::Request, p, size).unwrap();
            table.dealloc(Life::Request, q, layout).unwrap();
        }
    }
    assert_eq!(counts(&table), before);
}
