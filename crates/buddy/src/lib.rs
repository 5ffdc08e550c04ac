#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(test)]
extern crate std;

pub mod asan;
pub mod bits;
pub mod list;
pub mod region;

#[cfg(feature = "std")]
pub mod fixed;
#[cfg(feature = "std")]
pub mod os;
#[cfg(feature = "std")]
pub mod pages;
#[cfg(feature = "std")]
pub mod pool;
#[cfg(feature = "std")]
pub mod shell;
#[cfg(feature = "std")]
mod sync;
#[cfg(feature = "std")]
pub mod visual;

pub use region::{BlockInfo, Region, RegionFreeError, RegionInitError, RegionStats};

#[cfg(feature = "std")]
pub use fixed::{AllocError, BuddyAllocator, FreeError};
#[cfg(feature = "std")]
pub use pages::{PageError, PageHeap};
#[cfg(feature = "std")]
pub use pool::{BuddyPool, PoolError};
