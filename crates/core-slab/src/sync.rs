//! The one switch between std's primitives and loom's, so that every lock and atomic of the slab can be
//! model-checked (`cargo xtask loom` builds with `--cfg loom`).

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};

/// Lets other threads run while waiting for one of them (loom must see the yield to explore them).
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

/// Defines a constructor once: `const` with std's primitives (so a `static` slab can be built), a plain
/// `fn` under loom, whose primitives are not `const`.
macro_rules! loom_const_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $arg_type:ty),* $(,)?) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        $vis const fn $name($($arg: $arg_type),*) -> $ret $body

        #[cfg(loom)]
        $(#[$meta])*
        $vis fn $name($($arg: $arg_type),*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;

/// A lock that guards state reached through raw pointers rather than through the mutex's own data.
pub(crate) type Lock = Mutex<()>;

/// Takes `lock`. Nothing panics while holding one of our locks, so poisoning cannot happen; if it ever did,
/// the state it guards was left consistent (every critical section is panic-free), so we go on.
#[inline]
pub(crate) fn acquire(lock: &Lock) -> MutexGuard<'_, ()> {
    match lock.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

loom_const_fn! {
    /// A new unlocked lock.
    pub(crate) fn new_lock() -> Lock {
        Mutex::new(())
    }
}

/// An interior-mutable cell whose accesses loom can track (`with` / `with_mut`), or a plain
/// `core::cell::UnsafeCell` with the same interface.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// An atomic counter that is only ever written under one lock, so a plain load-and-store (no locked
/// instruction) is enough, while readers without the lock still see a whole value.
#[derive(Debug)]
pub(crate) struct LockedCounter(AtomicUsize);

impl LockedCounter {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self(AtomicUsize::new(0))
        }
    }

    /// Adds `delta`; the caller holds the lock that serialises all writers.
    #[inline]
    pub(crate) fn add_locked(&self, delta: usize) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(delta),
            Ordering::Relaxed,
        );
    }

    /// Subtracts `delta`; the caller holds the lock that serialises all writers.
    #[inline]
    pub(crate) fn sub_locked(&self, delta: usize) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(delta),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Reads a lock-guarded cell.
///
/// # Safety
/// The caller holds the lock that guards `cell`, so no write can race with this read.
#[inline(always)]
pub(crate) unsafe fn read<T: Copy>(cell: &UnsafeCell<T>) -> T {
    // SAFETY: per the contract, no conflicting access exists while the guarding lock is held.
    cell.with(|ptr| unsafe { *ptr })
}

/// Writes a lock-guarded cell.
///
/// # Safety
/// The caller holds the lock that guards `cell`, so no other access can race with this write.
#[inline(always)]
pub(crate) unsafe fn write<T>(cell: &UnsafeCell<T>, value: T) {
    // SAFETY: per the contract, this is the only access while the guarding lock is held.
    cell.with_mut(|ptr| unsafe { *ptr = value })
}
