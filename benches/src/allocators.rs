//! The allocators under test: classalloc and its peers, one entry each.

use std::alloc::System;

/// One allocator the suite measures. Every workload runs once per entry of [`Allocator::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allocator {
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
        Allocator::System,
        Allocator::Mimalloc,
        Allocator::Jemalloc,
        Allocator::Snmalloc,
        Allocator::Rpmalloc,
    ];

    /// The name used on command lines and in report columns.
    pub const fn name(self) -> &'static str {
        match self {
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
