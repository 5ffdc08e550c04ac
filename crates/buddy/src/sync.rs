//! The pool's lock, routed through one place so that loom can model it: `std`'s `Mutex` normally, loom's under
//! `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the data if a thread panicked while holding it.
///
/// The pool's critical sections leave the region consistent at every step that can panic (none is expected), so a
/// poisoned lock carries no broken invariant, and refusing service forever would help no one.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
