//! Class names for reports. The enum gives a name only for a value (strum's `IntoStaticStr`), so names
//! are recorded from the values that calls receive: explicit-class calls and handles record into their
//! allocator, `with_class` into a process-wide table.

use classalloc_registry::{LifetimeClass, MAX_CLASSES};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// One recorded `&'static str`, as two atomics (pointer, then length with release order).
struct NameSlot {
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
}

impl NameSlot {
    const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn record(&self, name: &'static str) {
        if self.len.load(Ordering::Relaxed) == 0 {
            // Racing writers write the same name: index -> variant is a function.
            self.ptr.store(name.as_ptr().cast_mut(), Ordering::Relaxed);
            self.len.store(name.len(), Ordering::Release);
        }
    }

    fn get(&self) -> Option<&'static str> {
        let len = self.len.load(Ordering::Acquire);
        if len == 0 {
            return None;
        }
        let ptr = self.ptr.load(Ordering::Relaxed);
        // SAFETY: `ptr` and `len` were taken from one `&'static str` (the release/acquire pair orders
        // the pointer store before the length we read), so they describe a live, valid UTF-8 string.
        Some(unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr, len)) })
    }
}

/// Names by class index.
pub(crate) struct ClassNames([NameSlot; MAX_CLASSES]);

impl ClassNames {
    pub(crate) const fn new() -> Self {
        Self([const { NameSlot::new() }; MAX_CLASSES])
    }

    #[inline]
    pub(crate) fn record<C: LifetimeClass>(&self, class: C) {
        if let Some(slot) = self.0.get(class.index()) {
            slot.record(class.name());
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&'static str> {
        self.0
            .get(index)
            .and_then(NameSlot::get)
            .or_else(|| SCOPE_NAMES.0.get(index).and_then(NameSlot::get))
    }

    /// How messages name class `index`: its name if one was recorded, else `#index`.
    pub(crate) fn label(&self, index: usize) -> ClassLabel {
        ClassLabel {
            name: self.get(index),
            index,
        }
    }
}

/// A class as messages name it (see [`ClassNames::label`]); formatting it does not allocate.
pub(crate) struct ClassLabel {
    name: Option<&'static str>,
    index: usize,
}

impl core::fmt::Display for ClassLabel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name {
            Some(name) => f.write_str(name),
            None => write!(f, "#{}", self.index),
        }
    }
}

/// Names recorded by `with_class` (the global allocator's enum).
static SCOPE_NAMES: ClassNames = ClassNames::new();

pub(crate) fn record_scope<C: LifetimeClass>(class: C) {
    SCOPE_NAMES.record(class);
}
