#![doc = include_str!("../README.md")]

mod addr_table;
mod block;
mod cache;
mod checked;
mod class;
mod error;
pub mod fatal;
mod geometry;
mod head;
mod large;
pub mod os;
pub mod pages;
mod slab;
mod stats;
mod sync;

pub use cache::SlabCache;
pub use checked::CHECKED;
pub use class::{SizeClass, CLASS_COUNT, MAX_SMALL_ALIGN, MAX_SMALL_SIZE};
pub use error::{AllocError, FreeError};
pub use geometry::{BlockGeometry, Geometry, SeedConfig, SlabConfig};
pub use large::MAX_MEDIUM_SIZE;
pub use slab::{checked_layout, Slab};
pub use stats::{ClassStats, LargeStats, Totals};
