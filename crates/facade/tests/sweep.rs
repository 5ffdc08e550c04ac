//! A size x alignment sweep (issue 7, item 5): every size 1 ..= 16384 with every power-of-two alignment
//! 1 ..= 4096, through `Slab`'s `Layout` API, a `ClassAlloc` handle (an `Allocator`), `Global` (a
//! `GlobalAlloc`) and the size-only functions. For each: the alignment is honoured; the returned length
//! holds the size and every byte of it can be written; the allocation lands in the class
//! `SizeClass::for_layout` predicts (its live count moves) and has that class's slot size (or whole pages
//! above 8 KiB); and a free with any size between the requested size and the returned length (the
//! `Allocator` "fits" rule) is accepted by that same class. The sizes a free may state are checked against
//! `for_layout` exhaustively; real frees use the ends and the middle of that range.

use allocator_api2::alloc::Allocator;
use classalloc::{lifetime_class, ClassAlloc, Global, SizeClass};
use classalloc_slab::{Slab, MAX_SMALL_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

const MAX_SIZE: usize = 16_384;
const MAX_ALIGN: usize = 4096;
const PAGE: usize = 4096;
/// Compared with whole slices (a `memcmp`, quick in debug builds too).
static ZEROS: [u8; MAX_SIZE] = [0; MAX_SIZE];

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Other,
    Swept,
}
lifetime_class!(Life);

fn alignments() -> impl Iterator<Item = usize> {
    (0..=MAX_ALIGN.trailing_zeros()).map(|shift| 1 << shift)
}

/// Where an allocation of `layout` must land: a size class, or whole pages from the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Small(SizeClass),
    Large,
}

fn expected(layout: Layout) -> Expected {
    match SizeClass::for_layout(layout.size(), layout.align()) {
        Some(class) => Expected::Small(class),
        None => {
            assert!(layout.size() > MAX_SMALL_SIZE, "{layout:?} has no class");
            Expected::Large
        }
    }
}

/// The usable length an allocation of `layout` must report.
fn expected_len(layout: Layout) -> usize {
    match expected(layout) {
        Expected::Small(class) => class.slot_size(),
        Expected::Large => layout.size().next_multiple_of(PAGE),
    }
}

/// The sizes to free a block of `len` bytes allocated for `layout` with: the ends and the middle of the
/// sizes a free may state (each is checked to land in the allocation's class by the frees themselves;
/// `every_fitting_size_routes_to_the_allocations_class` covers the sizes in between).
fn fitting_sizes(layout: Layout, len: usize) -> [usize; 3] {
    [
        layout.size(),
        layout.size() + (len - layout.size()) / 2,
        len,
    ]
}

/// Checks a fresh block for `layout` and writes all of it.
fn check_block(block: NonNull<[u8]>, layout: Layout) -> NonNull<u8> {
    let p = block.cast::<u8>();
    assert_eq!(
        p.as_ptr() as usize % layout.align(),
        0,
        "{layout:?} misaligned"
    );
    assert_eq!(block.len(), expected_len(layout), "{layout:?}");
    // SAFETY: the whole usable length is ours to write.
    unsafe { p.as_ptr().write_bytes(0xA5, block.len()) };
    p
}

/// The live count of the place `layout` lands in, in `slab`.
fn live_in(slab: &Slab, layout: Layout) -> usize {
    match expected(layout) {
        Expected::Small(class) => slab.class_stats(class).live_objects,
        Expected::Large => slab.large_stats().live_objects,
    }
}

/// Sweeps `alloc` / `free` over every size and alignment; `slab` is the slab they allocate from.
fn sweep(
    slab: &Slab,
    alloc: impl Fn(Layout) -> NonNull<[u8]>,
    // SAFETY (of calls): a live block of `alloc`, with a layout that fits it.
    free: impl Fn(NonNull<u8>, Layout),
) {
    for align in alignments() {
        for size in 1..=MAX_SIZE {
            let layout = Layout::from_size_align(size, align).unwrap();
            let before = live_in(slab, layout);
            let block = alloc(layout);
            let p = check_block(block, layout);
            assert_eq!(
                live_in(slab, layout),
                before + 1,
                "{layout:?} counted elsewhere"
            );
            let fits = fitting_sizes(layout, block.len());
            // Small blocks: free with each fitting size in turn (the slot is handed out again at once);
            // large ones, mapped anew each time, with one of them.
            let rounds = match expected(layout) {
                Expected::Small(_) => fits.len(),
                Expected::Large => 1,
            };
            for (round, &fit) in fits.iter().cycle().skip(size % 3).take(rounds).enumerate() {
                let p = if round == 0 {
                    p
                } else {
                    check_block(alloc(layout), layout)
                };
                free(p, Layout::from_size_align(fit, align).unwrap());
                assert_eq!(
                    live_in(slab, layout),
                    before,
                    "{layout:?} freed as {fit} bytes went elsewhere"
                );
            }
        }
    }
}

/// For every size and alignment, every size a free may state (from the requested size to the slot size)
/// routes to the class the allocation was made in: `for_layout` is monotone in the size for each
/// alignment, and maps the slot size of the class it picks to that class again, so every size in between
/// maps there too (jemalloc PR #2991: alloc and sized free classing a request differently).
#[test]
fn every_fitting_size_routes_to_the_allocations_class() {
    for align in alignments() {
        let mut previous = None;
        for size in 1..=MAX_SMALL_SIZE {
            let class = SizeClass::for_layout(size, align).unwrap();
            assert!(
                previous <= Some(class),
                "size {size} / {align}: not monotone"
            );
            previous = Some(class);
            assert!(class.slot_size() >= size && class.align() >= align);
            assert_eq!(
                SizeClass::for_layout(class.slot_size(), align),
                Some(class),
                "size {size} / {align}: its slot size routes elsewhere"
            );
        }
        // Above the small sizes every fitting size is large too.
        assert_eq!(SizeClass::for_layout(MAX_SMALL_SIZE + 1, align), None);
    }
}

#[test]
fn slab_layouts_of_every_size_and_alignment() {
    let slab = Slab::new();
    sweep(
        &slab,
        |layout| slab.alloc(layout).unwrap(),
        // SAFETY: `sweep` frees live blocks with fitting layouts.
        |p, layout| unsafe { slab.dealloc(p, layout).unwrap() },
    );
    assert_eq!(slab.totals().live_objects, 0);
}

#[test]
fn handle_layouts_of_every_size_and_alignment() {
    let alloc = ClassAlloc::<Life>::new();
    let handle = alloc.handle(Life::Swept);
    sweep(
        alloc.table().slab(Life::Swept),
        |layout| handle.allocate(layout).unwrap(),
        // SAFETY: `sweep` frees live blocks with fitting layouts.
        |p, layout| unsafe { handle.deallocate(p, layout) },
    );
    assert_eq!(alloc.class_totals(Life::Swept).live_objects, 0);
    assert_eq!(alloc.class_totals(Life::Other).blocks, 0);
}

#[test]
fn global_layouts_of_every_size_and_alignment() {
    let global = Global::new();
    for align in alignments() {
        for size in 1..=MAX_SIZE {
            let layout = Layout::from_size_align(size, align).unwrap();
            // Every other size zeroed; both ways for every size at the largest alignment.
            let ways: &[bool] = if align == MAX_ALIGN {
                &[false, true]
            } else {
                &[size % 2 == 1]
            };
            for &zeroed in ways {
                // SAFETY: a layout of non-zero size.
                let p = unsafe {
                    if zeroed {
                        global.alloc_zeroed(layout)
                    } else {
                        global.alloc(layout)
                    }
                };
                assert!(!p.is_null(), "{layout:?}");
                assert_eq!(p as usize % align, 0, "{layout:?} misaligned");
                // SAFETY: `size` bytes are ours.
                let bytes = unsafe { core::slice::from_raw_parts_mut(p, size) };
                if zeroed {
                    assert!(bytes == &ZEROS[..size], "{layout:?} not zeroed");
                }
                bytes.fill(0x5C);
                // SAFETY: allocated above with `layout`.
                unsafe { global.dealloc(p, layout) };
            }
        }
    }
}

#[test]
fn size_only_allocations_of_every_size() {
    for size in 1..=MAX_SIZE {
        let p = classalloc::malloc(size);
        let align = if size <= MAX_SMALL_SIZE {
            size.next_power_of_two().min(MAX_ALIGN)
        } else {
            PAGE
        };
        assert!(!p.is_null() && p as usize % align == 0, "size {size}");
        // Small sizes get their whole power-of-two slot, and any size of that class frees it.
        let usable = if size <= MAX_SMALL_SIZE {
            size.next_power_of_two()
        } else {
            size
        };
        // SAFETY: `usable` bytes are ours.
        unsafe { p.write_bytes(0x3D, usable) };
        // SAFETY: live, of `size` bytes; `usable` is of the same class.
        unsafe { classalloc::try_free(p, [size, usable][size % 2]).unwrap() };
        let z = classalloc::calloc(size);
        // SAFETY: `size` zeroed bytes are ours.
        assert!(unsafe { core::slice::from_raw_parts(z, size) } == &ZEROS[..size]);
        // SAFETY: live, of `size` bytes.
        unsafe { classalloc::free(z, size) };
    }
}
