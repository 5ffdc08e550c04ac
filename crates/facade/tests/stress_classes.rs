//! The multi-thread stress (see `stress_common`) with a `ClassAlloc` of three lifetime classes as this
//! binary's global allocator. Objects of every class are made four ways: the global allocator inside a
//! `with_class` scope (freed and resized in another scope: the owner's class must be found), explicit
//! `ALLOC.alloc(class, ..)` calls, handles (`Allocator`), and the size-only calls. Threads hand objects of
//! every class to each other. The live counts of each class must come back after each configuration.

mod stress_common;

use allocator_api2::alloc::Allocator;
use classalloc::{lifetime_class, with_class, ClassAlloc};
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use stress_common::Api;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    General,
    Request,
    Cache,
}
lifetime_class!(Life);

const CLASSES: [Life; 3] = [Life::General, Life::Request, Life::Cache];

#[global_allocator]
static ALLOC: ClassAlloc<Life> = ClassAlloc::new();

/// Tag = way * 3 + class; ways: 0 the global allocator in a scope, 1 explicit calls, 2 a handle, 3 the
/// size-only calls.
struct ClassesApi;

fn split(tag: u8) -> (u8, Life) {
    (tag / 3, CLASSES[(tag % 3) as usize])
}

/// A class other than `class`, for frees and resizes from another scope.
fn other(class: Life) -> Life {
    CLASSES[(class as usize + 1) % 3]
}

fn raw(block: Result<NonNull<[u8]>, impl Sized>) -> *mut u8 {
    block.map_or(ptr::null_mut(), |block| block.cast::<u8>().as_ptr())
}

impl Api for ClassesApi {
    const TAGS: u8 = 12;

    fn alloc(&self, tag: u8, layout: Layout, zeroed: bool) -> *mut u8 {
        let (way, class) = split(tag);
        match (way, zeroed) {
            // SAFETY: layouts of non-zero size.
            (0, false) => with_class(class, || unsafe { std::alloc::alloc(layout) }),
            // SAFETY: as above.
            (0, true) => with_class(class, || unsafe { std::alloc::alloc_zeroed(layout) }),
            (1, false) => raw(ALLOC.alloc(class, layout)),
            (1, true) => raw(ALLOC.calloc(class, layout)),
            (2, false) => raw(ALLOC.handle(class).allocate(layout)),
            (2, true) => raw(ALLOC.handle(class).allocate_zeroed(layout)),
            (_, false) => ALLOC
                .malloc(class, layout.size())
                .map_or(ptr::null_mut(), NonNull::as_ptr),
            (_, true) => ALLOC
                .calloc_sized(class, layout.size())
                .map_or(ptr::null_mut(), NonNull::as_ptr),
        }
    }

    fn guaranteed_align(&self, tag: u8, layout: Layout) -> usize {
        if split(tag).0 != 3 {
            return layout.align();
        }
        if layout.size() <= 8192 {
            layout.size().next_power_of_two().min(4096)
        } else {
            4096
        }
    }

    unsafe fn free(&self, tag: u8, ptr: *mut u8, layout: Layout) {
        let (way, class) = split(tag);
        let nonnull = NonNull::new(ptr).unwrap();
        // SAFETY: forwarded contract: `ptr` was allocated the way `tag` says, with `layout`.
        unsafe {
            match way {
                0 => with_class(other(class), || std::alloc::dealloc(ptr, layout)),
                1 => ALLOC.free(class, nonnull, layout).unwrap(),
                2 => ALLOC.handle(class).deallocate(nonnull, layout),
                _ => ALLOC.free_sized(class, nonnull, layout.size()).unwrap(),
            }
        }
    }

    unsafe fn realloc(&self, tag: u8, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (way, class) = split(tag);
        let nonnull = NonNull::new(ptr).unwrap();
        let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
        // SAFETY: forwarded contract.
        unsafe {
            match way {
                0 => with_class(other(class), || std::alloc::realloc(ptr, layout, new_size)),
                1 => raw(ALLOC.realloc(class, nonnull, layout, new_size)),
                2 if new_size >= layout.size() => {
                    raw(ALLOC.handle(class).grow(nonnull, layout, new_layout))
                }
                2 => raw(ALLOC.handle(class).shrink(nonnull, layout, new_layout)),
                _ => ALLOC
                    .remalloc(class, nonnull, layout.size(), new_size)
                    .map_or(ptr::null_mut(), NonNull::as_ptr),
            }
        }
    }

    fn live_counts(&self) -> [(usize, usize); 4] {
        let [a, b, c] = CLASSES.map(|class| {
            let totals = ALLOC.class_totals(class);
            (totals.live_objects, totals.live_bytes)
        });
        let large: usize = CLASSES
            .iter()
            .map(|&class| ALLOC.table().slab(class).large_stats().mapped_bytes)
            .sum();
        [a, b, c, (large, 0)]
    }
}

#[test]
fn stress_three_classes_with_cookies_cross_thread_frees_and_fresh_threads() {
    stress_common::run(&ClassesApi, "classes");
}
