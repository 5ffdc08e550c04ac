#![doc = include_str!("../README.md")]

mod class;
mod table;

pub use class::LifetimeClass;
pub use table::{ClassTable, MAX_CLASSES};

/// Re-exported for the `lifetime_class!` macro and for users' derives.
pub use strum;
