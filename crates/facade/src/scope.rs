//! `with_class`: routes the global allocator into a lifetime class for code you do not control.

use crate::names;
use classalloc_registry::LifetimeClass;
use core::cell::Cell;

/// No scope is open on this thread.
const NO_SCOPE: u8 = u8::MAX;

std::thread_local! {
    // A const-initialised Cell without a destructor: readable from the global allocator at any time,
    // thread teardown included, and never allocates.
    static CURRENT: Cell<u8> = const { Cell::new(NO_SCOPE) };
}

/// The class index of the innermost open scope on this thread.
#[inline]
pub(crate) fn current() -> Option<usize> {
    match CURRENT.try_with(Cell::get) {
        Ok(NO_SCOPE) | Err(_) => None,
        Ok(index) => Some(index as usize),
    }
}

/// Runs `f` with the global allocator (a [`ClassAlloc`](crate::ClassAlloc) of `C`) allocating in
/// `class`. Scopes nest; the previous class comes back when `f` returns or unwinds. Objects may be freed
/// in any scope: a free always goes to the class that allocated the object.
///
/// ```
/// use classalloc::{lifetime_class, with_class};
///
/// #[derive(Clone, Copy, strum::EnumCount, strum::IntoStaticStr)]
/// #[repr(u8)]
/// enum Life { Long, Request }
/// lifetime_class!(Life);
///
/// let parsed: Vec<u32> = with_class(Life::Request, || "1 2 3".split(' ').map(|s| s.parse().unwrap()).collect());
/// assert_eq!(parsed, [1, 2, 3]);
/// ```
pub fn with_class<C: LifetimeClass, R>(class: C, f: impl FnOnce() -> R) -> R {
    /// Restores the previous scope, also when `f` unwinds.
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|current| current.set(self.0));
        }
    }
    names::record_scope(class);
    let previous = CURRENT
        .try_with(|current| current.replace(class.index() as u8))
        .unwrap_or(NO_SCOPE);
    let _restore = Restore(previous);
    f()
}
