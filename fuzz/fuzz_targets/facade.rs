//! Differential fuzzing of the facade: a sequence of actions (allocate with a size, an alignment and a
//! lifetime class, through the Layout API, the size-only API or the `GlobalAlloc` impl in a `with_class`
//! scope; free; reallocate; release a class; a free sent to the wrong class) runs against a `ClassAlloc`
//! of three lifetime classes and against a model that remembers every live allocation.
//!
//! Checked on every step: each allocation is aligned, at least as long as asked, overlaps no live
//! allocation, and is zero when asked zeroed; the fill byte written at allocation is intact at free and
//! reallocation (which keeps `min(old, new)` bytes, zeroing the grown tail for `recalloc`); errors come
//! exactly where the model expects them (size 0, sizes near `usize::MAX` and `isize::MAX`) and leave the
//! allocation untouched; a refused free changes no counter; a released class shows nothing live; the
//! allocator's live objects and bytes per class equal the model's.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use classalloc::{
    lifetime_class, with_class, AllocError, ClassAlloc, FreeError, LifetimeClass, Totals,
};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::fmt;

/// Describes the action under check, formatted only when a check fails.
type Describe<'a> = &'a dyn Fn() -> String;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Arbitrary,
    classalloc::strum::EnumCount,
    classalloc::strum::IntoStaticStr,
)]
#[strum(crate = "classalloc::strum")]
#[repr(u8)]
enum Life {
    Frame,
    Request,
    Cache,
}
lifetime_class!(Life);

const CLASSES: [Life; 3] = [Life::Frame, Life::Request, Life::Cache];

/// One allocator for the whole fuzzing process: every run leaves it with nothing live.
static ALLOC: ClassAlloc<Life> = ClassAlloc::new();

/// The largest ordinary request (sizes above it are only the huge ones that must fail).
const MEDIUM_CAP: usize = 4 << 20;
/// The model refuses to hold more usable bytes than this (libFuzzer's `-rss_limit_mb` is the backstop).
const LIVE_CAP: usize = 64 << 20;
/// Alignments go up to `1 << MAX_ALIGN_SHIFT` (4 MiB, well above the slab's 4 KiB slot limit).
const MAX_ALIGN_SHIFT: u8 = 22;
/// No address space a test runs in has this much room: a request this large must fail.
const NEVER_MAPPABLE: usize = 1 << 48;
/// Size-only requests above this are large (page-aligned); below, aligned to the next power of two.
const MAX_SMALL_SIZE: usize = 8192;
const PAGE: usize = 4096;

/// A requested size: mostly ordinary ones, with 0 and sizes at the two ends of the address space.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Size {
    Zero,
    Tiny(u8),
    Small(u16),
    Medium(u32),
    NearIsizeMax(u16),
    NearUsizeMax(u16),
}

impl Size {
    fn bytes(self) -> usize {
        match self {
            Size::Zero => 0,
            Size::Tiny(n) => usize::from(n) + 1,
            Size::Small(n) => usize::from(n) + 1,
            Size::Medium(n) => n as usize % MEDIUM_CAP + 1,
            Size::NearIsizeMax(n) => isize::MAX as usize - usize::from(n),
            Size::NearUsizeMax(n) => usize::MAX - usize::from(n),
        }
    }
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Action {
    /// The `Layout` API: `alloc` / `calloc`.
    Alloc {
        class: Life,
        size: Size,
        align_shift: u8,
        zeroed: bool,
    },
    /// The allocator as a `GlobalAlloc`, in a `with_class` scope (or outside any: the default class, the
    /// first); its frees and reallocations run in a scope of another class and still reach the owner.
    Global {
        scope: Option<Life>,
        size: Size,
        align_shift: u8,
        zeroed: bool,
    },
    /// The seed's size-only API: `malloc` / `calloc_sized`.
    Malloc {
        class: Life,
        size: Size,
        zeroed: bool,
    },
    /// `free` / `free_sized` of a live allocation.
    Free { index: u16 },
    /// `realloc` (Layout API) or `remalloc` / `recalloc` (size-only API, `zeroed` picks recalloc).
    Realloc {
        index: u16,
        new_size: Size,
        zeroed: bool,
    },
    /// A free of a live allocation sent to another class: refused, nothing changes.
    FreeWrongClass { index: u16, skip: bool },
    /// `release(class)`: the class's allocations are gone.
    Release { class: Life },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Layout { align: usize },
    Global { align: usize },
    Sized,
}

/// A live allocation as the model knows it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    class: Life,
    ptr: NonNull<u8>,
    api: Api,
    /// The size asked for.
    size: usize,
    /// The bytes written with `fill` (and checked): the usable length for the Layout API, the size for
    /// the size-only API (which returns no length).
    len: usize,
    fill: u8,
}

impl Entry {
    fn layout(&self) -> Layout {
        match self.api {
            Api::Layout { align } | Api::Global { align } => {
                Layout::from_size_align(self.size, align)
                    .expect("a live allocation has a valid layout")
            }
            Api::Sized => unreachable!("size-only allocations have no layout"),
        }
    }

    /// A scope for the global frees and reallocations of this entry: any class, its own included.
    fn scope_for_free(&self) -> Life {
        CLASSES[usize::from(self.fill) % CLASSES.len()]
    }

    fn start(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Panics unless the first `n` bytes (at most `len`) still hold the fill byte.
    fn check_fill(&self, n: usize, what: Describe) {
        let n = n.min(self.len);
        // SAFETY: the allocation is live and at least `len >= n` bytes long; nothing else writes it.
        let bytes = unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), n) };
        if let Some(offset) = common::first_difference(bytes, self.fill) {
            panic!(
                "{}: byte {offset} of {self:?} is {:#04x}, written {:#04x}",
                what(),
                bytes[offset],
                self.fill
            );
        }
    }

    fn write_fill(&self) {
        // SAFETY: the allocation is live and at least `len` bytes long; it is ours to write.
        unsafe { self.ptr.as_ptr().write_bytes(self.fill, self.len) };
    }
}

/// Panics unless `n` bytes at `ptr` are all zero.
fn check_zero(ptr: NonNull<u8>, n: usize, what: Describe) {
    // SAFETY: callers pass a live allocation of at least `n` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), n) };
    if let Some(offset) = common::first_difference(bytes, 0) {
        panic!(
            "{}: byte {offset} of {ptr:p} is {:#04x}, not zero",
            what(),
            bytes[offset]
        );
    }
}

/// What the model expects of a request: success, or one of these errors.
fn expected(size: usize, limit: usize) -> Result<(), &'static [AllocError]> {
    if size == 0 {
        Err(&[AllocError::ZeroSize])
    } else if size > limit {
        Err(&[AllocError::TooLarge])
    } else if size >= NEVER_MAPPABLE {
        // Rounding to pages must not wrap; whether the rounding or the OS refuses is not the model's
        // business.
        Err(&[AllocError::TooLarge, AllocError::OutOfMemory])
    } else {
        Ok(())
    }
}

/// The largest size the Layout API accepts for `align` (Layout's own limit).
fn layout_limit(align: usize) -> usize {
    isize::MAX as usize - (align - 1)
}

/// The alignment the size-only API promises for `size` bytes.
fn sized_align(size: usize) -> usize {
    if size <= MAX_SMALL_SIZE {
        size.next_power_of_two().min(PAGE)
    } else {
        PAGE
    }
}

/// Compares an outcome with the model's expectation; `Some(value)` when both say success.
fn judge<T: core::fmt::Debug>(
    what: Describe,
    expect: Result<(), &'static [AllocError]>,
    got: Result<T, AllocError>,
) -> Option<T> {
    match (expect, got) {
        (Ok(()), Ok(value)) => Some(value),
        (Err(allowed), Err(error)) if allowed.contains(&error) => None,
        (expect, got) => panic!(
            "{}: the model expected {expect:?}, the allocator gave {got:?}",
            what()
        ),
    }
}

#[derive(Default)]
struct Model {
    live: Vec<Entry>,
    /// Start -> end of every live allocation's checked span, for the overlap check.
    spans: BTreeMap<usize, usize>,
    objects: [usize; 3],
    bytes: [usize; 3],
    /// Checked bytes held, against `LIVE_CAP`.
    held: usize,
    fills: u8,
}

impl Model {
    fn next_fill(&mut self) -> u8 {
        self.fills = self.fills.wrapping_add(1);
        // Never 0, so a fill is told apart from zeroed memory; never the previous one.
        self.fills % 255 + 1
    }

    fn pick(&self, index: u16) -> Option<usize> {
        (!self.live.is_empty()).then(|| usize::from(index) % self.live.len())
    }

    /// Panics if `start..start + len` overlaps a live allocation.
    fn check_disjoint(&self, start: usize, len: usize, what: Describe) {
        let end = start
            .checked_add(len)
            .expect("an allocation wraps the address space");
        if let Some((&other_start, &other_end)) = self.spans.range(..end).next_back() {
            assert!(
                other_end <= start,
                "{}: {start:#x}..{end:#x} overlaps the live {other_start:#x}..{other_end:#x}",
                what()
            );
        }
    }

    /// Checks and fills a new allocation, then records it.
    fn add(&mut self, entry: Entry, what: Describe) {
        self.check_disjoint(entry.start(), entry.len, what);
        entry.write_fill();
        self.spans.insert(entry.start(), entry.start() + entry.len);
        let class = entry.class.index();
        self.objects[class] += 1;
        self.bytes[class] += entry.size;
        self.held += entry.len;
        self.live.push(entry);
    }

    fn remove(&mut self, index: usize) -> Entry {
        let entry = self.live.swap_remove(index);
        self.spans.remove(&entry.start());
        let class = entry.class.index();
        self.objects[class] -= 1;
        self.bytes[class] -= entry.size;
        self.held -= entry.len;
        entry
    }

    /// Panics unless the allocator's live counts of `class` equal the model's.
    fn check_counts(&self, class: Life, when: fmt::Arguments<'_>) {
        let totals = ALLOC.class_totals(class);
        let index = class.index();
        assert_eq!(
            (totals.live_objects, totals.live_bytes),
            (self.objects[index], self.bytes[index]),
            "{when}: {class:?} live (objects, bytes) in the allocator vs the model"
        );
    }

    fn alloc(&mut self, class: Life, size: Size, align_shift: u8, zeroed: bool) {
        let size = size.bytes();
        let align = 1usize << (align_shift % (MAX_ALIGN_SHIFT + 1));
        let expect = expected(size, layout_limit(align));
        if expect.is_ok() && self.held + size.max(align) > LIVE_CAP {
            return;
        }
        let got = match Layout::from_size_align(size, align) {
            Ok(layout) if zeroed => ALLOC.calloc(class, layout),
            Ok(layout) => ALLOC.alloc(class, layout),
            // Layout itself refuses: the raw-number entry point must refuse too.
            Err(_) => ALLOC.table().slab(class).alloc_aligned(size, align),
        };
        let what: Describe =
            &|| format!("alloc({class:?}, size {size}, align {align}, zeroed {zeroed})");
        let Some(block) = judge(what, expect, got) else {
            return;
        };
        let ptr = block.cast::<u8>();
        assert_eq!(
            ptr.as_ptr() as usize % align,
            0,
            "{}: {ptr:p} misaligned",
            what()
        );
        assert!(
            block.len() >= size,
            "{}: usable length {} < size",
            what(),
            block.len()
        );
        if zeroed {
            check_zero(ptr, block.len(), what);
        }
        let fill = self.next_fill();
        let entry = Entry {
            class,
            ptr,
            api: Api::Layout { align },
            size,
            len: block.len(),
            fill,
        };
        self.add(entry, what);
    }

    fn global(&mut self, scope: Option<Life>, size: Size, align_shift: u8, zeroed: bool) {
        let size = size.bytes();
        let align = 1usize << (align_shift % (MAX_ALIGN_SHIFT + 1));
        // GlobalAlloc's contract forbids zero-sized layouts, and a Layout cannot hold a size above its limit.
        let Ok(layout) = Layout::from_size_align(size, align) else {
            return;
        };
        if size == 0 {
            return;
        }
        let expect = expected(size, layout_limit(align));
        if expect.is_ok() && self.held + size.max(align) > LIVE_CAP {
            return;
        }
        // Outside any scope the global allocator uses the default class, the first.
        let class = scope.unwrap_or(CLASSES[0]);
        // SAFETY: the layout has a non-zero size.
        let call = || unsafe {
            if zeroed {
                GlobalAlloc::alloc_zeroed(&ALLOC, layout)
            } else {
                GlobalAlloc::alloc(&ALLOC, layout)
            }
        };
        let raw = match scope {
            Some(scope) => with_class(scope, call),
            None => call(),
        };
        let got = NonNull::new(raw).ok_or(AllocError::OutOfMemory);
        let what: Describe = &|| {
            format!("GlobalAlloc::alloc in scope {scope:?}, size {size}, align {align}, zeroed {zeroed}")
        };
        let Some(ptr) = judge(what, expect, got) else {
            return;
        };
        assert_eq!(
            ptr.as_ptr() as usize % align,
            0,
            "{}: {ptr:p} misaligned",
            what()
        );
        if zeroed {
            check_zero(ptr, size, what);
        }
        let fill = self.next_fill();
        let entry = Entry {
            class,
            ptr,
            api: Api::Global { align },
            size,
            len: size,
            fill,
        };
        self.add(entry, what);
    }

    fn malloc(&mut self, class: Life, size: Size, zeroed: bool) {
        let size = size.bytes();
        let expect = expected(size, isize::MAX as usize);
        if expect.is_ok() && self.held + size > LIVE_CAP {
            return;
        }
        let got = if zeroed {
            ALLOC.calloc_sized(class, size)
        } else {
            ALLOC.malloc(class, size)
        };
        let what: Describe = &|| format!("malloc({class:?}, {size}, zeroed {zeroed})");
        let Some(ptr) = judge(what, expect, got) else {
            return;
        };
        let align = sized_align(size);
        assert_eq!(
            ptr.as_ptr() as usize % align,
            0,
            "{}: {ptr:p} not aligned to {align}",
            what()
        );
        if zeroed {
            check_zero(ptr, size, what);
        }
        let fill = self.next_fill();
        let entry = Entry {
            class,
            ptr,
            api: Api::Sized,
            size,
            len: size,
            fill,
        };
        self.add(entry, what);
    }

    fn free(&mut self, index: u16) {
        let Some(index) = self.pick(index) else {
            return;
        };
        let entry = self.remove(index);
        let what: Describe = &|| format!("free of {entry:?}");
        entry.check_fill(entry.len, what);
        // SAFETY: the entry is live, allocated in its class with this layout / size, and forgotten here.
        let result = unsafe {
            match entry.api {
                Api::Layout { .. } => ALLOC.free(entry.class, entry.ptr, entry.layout()),
                Api::Global { .. } => {
                    // In a scope of any class: a global free goes to the class that owns the pointer (and
                    // aborts on a misuse instead of returning an error).
                    with_class(entry.scope_for_free(), || {
                        GlobalAlloc::dealloc(&ALLOC, entry.ptr.as_ptr(), entry.layout())
                    });
                    Ok(())
                }
                Api::Sized => ALLOC.free_sized(entry.class, entry.ptr, entry.size),
            }
        };
        assert_eq!(result, Ok(()), "{}", what());
    }

    fn realloc(&mut self, index: u16, new_size: Size, zeroed: bool) {
        let Some(index) = self.pick(index) else {
            return;
        };
        let old = self.live[index];
        let new_size = new_size.bytes();
        let (expect, align) = match old.api {
            // GlobalAlloc's contract forbids a new size of 0 or above the Layout limit.
            Api::Global { align } if new_size == 0 || new_size > layout_limit(align) => return,
            Api::Layout { align } | Api::Global { align } => {
                (expected(new_size, layout_limit(align)), align)
            }
            Api::Sized => (
                expected(new_size, isize::MAX as usize),
                sized_align(new_size),
            ),
        };
        if expect.is_ok() && self.held - old.len + new_size.max(align) > LIVE_CAP {
            return;
        }
        let what: Describe = &|| format!("realloc of {old:?} to {new_size} (zeroed {zeroed})");
        old.check_fill(old.len, what);
        // SAFETY: the entry is live in its class with this layout / size; on success the model drops the
        // old pointer, on failure it stays live and untouched.
        let got = unsafe {
            match old.api {
                Api::Layout { .. } => ALLOC
                    .realloc(old.class, old.ptr, old.layout(), new_size)
                    .map(|block| (block.cast::<u8>(), block.len())),
                Api::Global { .. } => {
                    let raw = with_class(old.scope_for_free(), || {
                        GlobalAlloc::realloc(&ALLOC, old.ptr.as_ptr(), old.layout(), new_size)
                    });
                    NonNull::new(raw)
                        .map(|ptr| (ptr, new_size))
                        .ok_or(AllocError::OutOfMemory)
                }
                Api::Sized if zeroed => ALLOC
                    .recalloc(old.class, old.ptr, old.size, new_size)
                    .map(|ptr| (ptr, new_size)),
                Api::Sized => ALLOC
                    .remalloc(old.class, old.ptr, old.size, new_size)
                    .map(|ptr| (ptr, new_size)),
            }
        };
        let Some((ptr, len)) = judge(what, expect, got) else {
            old.check_fill(old.len, &|| format!("{}, after the refusal", what()));
            return;
        };
        self.remove(index);
        assert_eq!(
            ptr.as_ptr() as usize % align,
            0,
            "{}: {ptr:p} not aligned to {align}",
            what()
        );
        assert!(len >= new_size, "{}: usable length {len} < size", what());
        let kept = old.size.min(new_size);
        let moved = Entry {
            ptr,
            len,
            size: kept,
            ..old
        };
        moved.check_fill(kept, what);
        if zeroed && old.api == Api::Sized && new_size > old.size {
            // SAFETY: the new allocation holds `new_size` bytes.
            let tail = unsafe { ptr.add(old.size) };
            check_zero(tail, new_size - old.size, what);
        }
        let fill = self.next_fill();
        let entry = Entry {
            ptr,
            size: new_size,
            len,
            fill,
            ..old
        };
        self.add(entry, what);
    }

    fn free_wrong_class(&mut self, index: u16, skip: bool) {
        let Some(index) = self.pick(index) else {
            return;
        };
        let entry = self.live[index];
        let wrong = CLASSES[(entry.class.index() + 1 + usize::from(skip)) % CLASSES.len()];
        let what: Describe = &|| format!("free of {entry:?} sent to {wrong:?}");
        let before: Vec<Totals> = CLASSES.iter().map(|&c| ALLOC.class_totals(c)).collect();
        // SAFETY: the entry is live with this layout / size; a free sent to another class is refused
        // (`ClassAlloc::free`'s documented contract) and the entry stays live.
        let result = unsafe {
            match entry.api {
                Api::Layout { .. } | Api::Global { .. } => {
                    ALLOC.free(wrong, entry.ptr, entry.layout())
                }
                Api::Sized => ALLOC.free_sized(wrong, entry.ptr, entry.size),
            }
        };
        // Small blocks carry their class's tag (OwnerMismatch); the wrong class's large registry does not
        // know the pointer (NotASlot).
        assert!(
            matches!(
                result,
                Err(FreeError::OwnerMismatch) | Err(FreeError::NotASlot)
            ),
            "{}: {result:?}",
            what()
        );
        let after: Vec<Totals> = CLASSES.iter().map(|&c| ALLOC.class_totals(c)).collect();
        assert_eq!(
            before,
            after,
            "{}: a refused free changed the counters",
            what()
        );
        entry.check_fill(entry.len, what);
    }

    fn release(&mut self, class: Life) {
        // SAFETY: one thread; the model forgets every allocation of `class` below and never touches them
        // again.
        unsafe { ALLOC.release(class) };
        let mut index = 0;
        while index < self.live.len() {
            if self.live[index].class == class {
                self.remove(index);
            } else {
                index += 1;
            }
        }
        assert_eq!(
            ALLOC.class_totals(class),
            Totals::default(),
            "release({class:?}) left something counted"
        );
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Alloc {
                class,
                size,
                align_shift,
                zeroed,
            } => self.alloc(class, size, align_shift, zeroed),
            Action::Global {
                scope,
                size,
                align_shift,
                zeroed,
            } => self.global(scope, size, align_shift, zeroed),
            Action::Malloc {
                class,
                size,
                zeroed,
            } => self.malloc(class, size, zeroed),
            Action::Free { index } => self.free(index),
            Action::Realloc {
                index,
                new_size,
                zeroed,
            } => self.realloc(index, new_size, zeroed),
            Action::FreeWrongClass { index, skip } => self.free_wrong_class(index, skip),
            Action::Release { class } => self.release(class),
        }
    }
}

fuzz_target!(|actions: Vec<Action>| {
    let mut model = Model::default();
    for class in CLASSES {
        model.check_counts(class, format_args!("start of the run"));
    }
    for (step, action) in actions.into_iter().enumerate() {
        model.apply(action);
        for class in CLASSES {
            model.check_counts(class, format_args!("after step {step} ({action:?})"));
        }
    }
    // Free what is left (checking every byte), so the next run starts with nothing live.
    while !model.live.is_empty() {
        model.free(0);
    }
    for class in CLASSES {
        model.check_counts(class, format_args!("end of the run"));
    }
});
