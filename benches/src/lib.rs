//! classalloc's benchmark suite: the workloads of `cargo xtask bench`, run against classalloc and the
//! allocators people use today.
//!
//! Every workload takes its allocator as a generic `A: GlobalAlloc`, so one binary serves every
//! allocator without dynamic dispatch in the measured loops; [`with_allocator!`] picks the monomorphised
//! copy from an [`Allocator`] value. Memory figures come from separate processes (the `probe` and
//! `real_*` binaries), one allocator per process, driven by `cargo xtask bench`.

pub mod allocators;
pub mod cli;
pub mod prng;
pub mod real;
pub mod rss;
pub mod workloads;

pub use allocators::Allocator;
