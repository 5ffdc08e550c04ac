//! The allocators under test: classalloc and its peers, one entry each.

use std::alloc::{GlobalAlloc, Layout, System};

/// One allocator the suite measures. Every workload runs once per entry of [`Allocator::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allocator {
    /// classalloc through its `Layout` API, [`classalloc::Global`] (fine size classes).
    Classalloc,
    /// classalloc through the seed's size-only functions ([`classalloc::malloc`] and
    /// [`classalloc::free`]: power-of-two classes), adapted by [`ClassallocSizeOnly`].
    ClassallocSized,
    /// The platform allocator (glibc's malloc on Linux) through [`std::alloc::System`].
    System,
    /// mimalloc through the `mimalloc` crate.
    Mimalloc,
    /// jemalloc through `tikv-jemallocator` (prefixed symbols, so it coexists with glibc).
    Jemalloc,
    /// snmalloc through `snmalloc-rs`.
    Snmalloc,
    /// rpmalloc through the `rpmalloc` crate.
    Rpmalloc,
}

/// The instance of each peer the workloads call through `GlobalAlloc`.
pub mod instances {
    /// classalloc, `Layout` API.
    pub static CLASSALLOC: classalloc::Global = classalloc::Global::new();
    /// classalloc, the seed's size-only API.
    pub static CLASSALLOC_SIZED: super::ClassallocSizeOnly = super::ClassallocSizeOnly;
    /// glibc's malloc.
    pub static SYSTEM: super::System = super::System;
    /// mimalloc.
    pub static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
    /// jemalloc.
    pub static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
    /// snmalloc.
    pub static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;
    /// rpmalloc.
    pub static RPMALLOC: rpmalloc::RpMalloc = rpmalloc::RpMalloc;
}

impl Allocator {
    /// Every allocator, in the order the report's columns use.
    pub const ALL: &'static [Allocator] = &[
        Allocator::Classalloc,
        Allocator::ClassallocSized,
        Allocator::System,
        Allocator::Mimalloc,
        Allocator::Jemalloc,
        Allocator::Snmalloc,
        Allocator::Rpmalloc,
    ];

    /// The name used on command lines and in report columns.
    pub const fn name(self) -> &'static str {
        match self {
            // A build with the `checked` feature measures checked mode under its own name.
            Allocator::Classalloc if cfg!(feature = "checked") => "classalloc-checked",
            Allocator::Classalloc => "classalloc",
            Allocator::ClassallocSized => "classalloc-sized",
            Allocator::System => "system",
            Allocator::Mimalloc => "mimalloc",
            Allocator::Jemalloc => "jemalloc",
            Allocator::Snmalloc => "snmalloc",
            Allocator::Rpmalloc => "rpmalloc",
        }
    }

    /// The allocator called `name` (see [`Allocator::name`]).
    pub fn from_name(name: &str) -> Option<Allocator> {
        Allocator::ALL.iter().copied().find(|a| a.name() == name)
    }
}

/// Evaluates `$body` with `$alloc` bound to a `&'static` reference to the concrete allocator that
/// `$which` (an [`Allocator`]) names, so the body is monomorphised once per allocator.
#[macro_export]
macro_rules! with_allocator {
    ($which:expr, $alloc:ident => $body:expr) => {{
        use $crate::allocators::instances;
        match $which {
            $crate::Allocator::Classalloc => {
                let $alloc = &instances::CLASSALLOC;
                $body
            }
            $crate::Allocator::ClassallocSized => {
                let $alloc = &instances::CLASSALLOC_SIZED;
                $body
            }
            $crate::Allocator::System => {
                let $alloc = &instances::SYSTEM;
                $body
            }
            $crate::Allocator::Mimalloc => {
                let $alloc = &instances::MIMALLOC;
                $body
            }
            $crate::Allocator::Jemalloc => {
                let $alloc = &instances::JEMALLOC;
                $body
            }
            $crate::Allocator::Snmalloc => {
                let $alloc = &instances::SNMALLOC;
                $body
            }
            $crate::Allocator::Rpmalloc => {
                let $alloc = &instances::RPMALLOC;
                $body
            }
        }
    }};
}

/// classalloc's size-only functions (the seed's API) behind `GlobalAlloc`, so the workloads can
/// measure them: `malloc(size)` aligns to `size.next_power_of_two()` up to 4096, which covers every
/// layout whose alignment is at most that; other layouts go through `aligned_alloc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassallocSizeOnly;

impl ClassallocSizeOnly {
    /// Whether `malloc(layout.size())` already honours the layout's alignment.
    #[inline]
    fn size_only_suffices(layout: Layout) -> bool {
        layout.align() <= layout.size().next_power_of_two().min(4096)
    }
}

// SAFETY: `malloc` returns null or a fresh block of at least `size` bytes aligned to
// `size.next_power_of_two()` capped at 4096, which is >= the layout's alignment on that path;
// `aligned_alloc` honours any power-of-two alignment. `dealloc` frees each block through the function
// matching the one that allocated it, chosen by the same layout test.
unsafe impl GlobalAlloc for ClassallocSizeOnly {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::size_only_suffices(layout) {
            classalloc::malloc(layout.size())
        } else {
            classalloc::aligned_alloc(layout.size(), layout.align())
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::size_only_suffices(layout) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with `layout`, which took the
            // `malloc(layout.size())` path for this layout.
            unsafe { classalloc::free(ptr, layout.size()) }
        } else {
            // SAFETY: as above, through `aligned_alloc(layout.size(), layout.align())`.
            unsafe { classalloc::aligned_free(ptr, layout.size(), layout.align()) }
        }
    }
}
