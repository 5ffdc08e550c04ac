#![doc = include_str!("../README.md")]

use classalloc::{abort_on_misuse, strum, ClassAlloc, FreeError, MAX_CLASSES};
use core::ptr::{self, NonNull};

/// An integer lifetime class, `0 .. MAX_CLASSES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CClass(u8);

impl CClass {
    /// The class `index`, if it is in range.
    pub fn new(index: u32) -> Option<Self> {
        (index < MAX_CLASSES as u32).then_some(CClass(index as u8))
    }
}

impl strum::EnumCount for CClass {
    const COUNT: usize = MAX_CLASSES;
}

const NAMES: [&str; 16] = [
    "class 0", "class 1", "class 2", "class 3", "class 4", "class 5", "class 6", "class 7",
    "class 8", "class 9", "class 10", "class 11", "class 12", "class 13", "class 14", "class 15",
];
const _: () = assert!(NAMES.len() == MAX_CLASSES);

impl From<CClass> for &'static str {
    fn from(class: CClass) -> Self {
        NAMES[class.0 as usize]
    }
}

/// The index is the class number itself (`lifetime_class!` is for enums).
impl classalloc::LifetimeClass for CClass {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// The allocator behind the C functions.
static ALLOC: ClassAlloc<CClass> = ClassAlloc::new();

/// `Malloc(size)`: class 0.
#[no_mangle]
pub extern "C" fn Malloc(size: usize) -> *mut u8 {
    MallocClass(0, size)
}

/// `Calloc(size)`: class 0.
#[no_mangle]
pub extern "C" fn Calloc(size: usize) -> *mut u8 {
    CallocClass(0, size)
}

/// `CallocArray(count, size)`: `Calloc(count * size)` in class 0, NULL when the product overflows.
#[no_mangle]
pub extern "C" fn CallocArray(count: usize, size: usize) -> *mut u8 {
    CallocArrayClass(0, count, size)
}

/// `Free(ptr, size)`: class 0.
///
/// # Safety
/// `ptr` is NULL or a live class-0 allocation of `size` bytes, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn Free(ptr: *mut u8, size: usize) {
    // SAFETY: forwarded contract.
    unsafe { FreeClass(0, ptr, size) }
}

/// `Remalloc(ptr, old, new)`: class 0.
///
/// # Safety
/// `ptr` is NULL or a live class-0 allocation of `old_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn Remalloc(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { RemallocClass(0, ptr, old_size, new_size) }
}

/// `Recalloc(ptr, old, new)`: class 0.
///
/// # Safety
/// As for [`Remalloc`].
#[no_mangle]
pub unsafe extern "C" fn Recalloc(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { RecallocClass(0, ptr, old_size, new_size) }
}

/// `Malloc` in class `cls`; NULL for a class out of range.
#[no_mangle]
pub extern "C" fn MallocClass(cls: u32, size: usize) -> *mut u8 {
    CClass::new(cls)
        .and_then(|class| ALLOC.malloc(class, size).ok())
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// `Calloc` in class `cls`; NULL for a class out of range.
#[no_mangle]
pub extern "C" fn CallocClass(cls: u32, size: usize) -> *mut u8 {
    CClass::new(cls)
        .and_then(|class| ALLOC.calloc_sized(class, size).ok())
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// `Calloc(count * size)` in class `cls`, as C's `calloc`: NULL when `count * size` overflows (or is 0),
/// for a class out of range, or when memory is refused. Free with `FreeClass(cls, ptr, count * size)`.
#[no_mangle]
pub extern "C" fn CallocArrayClass(cls: u32, count: usize, size: usize) -> *mut u8 {
    match count.checked_mul(size) {
        Some(bytes) => CallocClass(cls, bytes),
        None => ptr::null_mut(),
    }
}

/// `Free` in class `cls`. NULL is ignored; a free that does not match an allocation aborts.
///
/// # Safety
/// `ptr` is NULL or a live allocation of class `cls` of `size` bytes, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn FreeClass(cls: u32, ptr: *mut u8, size: usize) {
    let Some(nonnull) = NonNull::new(ptr) else {
        return;
    };
    let Some(class) = CClass::new(cls) else {
        abort_on_misuse(FreeError::OwnerMismatch, ptr, size);
    };
    // SAFETY: forwarded contract.
    if let Err(error) = unsafe { ALLOC.free_sized(class, nonnull, size) } {
        abort_on_misuse(error, ptr, size);
    }
}

/// `Remalloc` in class `cls`: NULL `ptr` allocates; NULL on failure, the old allocation untouched. A new
/// size of 0 is a failure (NULL, `ptr` still allocated), not a free as C's `realloc(p, 0)` may be.
///
/// # Safety
/// `ptr` is NULL or a live allocation of class `cls` of `old_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn RemallocClass(
    cls: u32,
    ptr: *mut u8,
    old_size: usize,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { resize(cls, ptr, old_size, new_size, false) }
}

/// `Recalloc` in class `cls`: as [`RemallocClass`], zeroing the grown tail.
///
/// # Safety
/// As for [`RemallocClass`].
#[no_mangle]
pub unsafe extern "C" fn RecallocClass(
    cls: u32,
    ptr: *mut u8,
    old_size: usize,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { resize(cls, ptr, old_size, new_size, true) }
}

/// `Remalloc` (or, with `zero_tail`, `Recalloc`) in class `cls`.
///
/// # Safety
/// `ptr` is NULL or a live allocation of class `cls` of `old_size` bytes.
unsafe fn resize(
    cls: u32,
    ptr: *mut u8,
    old_size: usize,
    new_size: usize,
    zero_tail: bool,
) -> *mut u8 {
    let Some(nonnull) = NonNull::new(ptr) else {
        return if zero_tail {
            CallocClass(cls, new_size)
        } else {
            MallocClass(cls, new_size)
        };
    };
    let Some(class) = CClass::new(cls) else {
        return ptr::null_mut();
    };
    // SAFETY: forwarded contract.
    let resized = unsafe {
        if zero_tail {
            ALLOC.recalloc(class, nonnull, old_size, new_size)
        } else {
            ALLOC.remalloc(class, nonnull, old_size, new_size)
        }
    };
    match resized {
        Ok(new) => new.as_ptr(),
        Err(classalloc::AllocError::NotAllocated(error)) => abort_on_misuse(error, ptr, old_size),
        Err(_) => ptr::null_mut(),
    }
}

/// Returns all memory of class `cls` to the OS; out-of-range classes are ignored.
///
/// # Safety
/// No other thread uses class `cls` during the call; nothing allocated in it is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn ReleaseClass(cls: u32) {
    if let Some(class) = CClass::new(cls) {
        // SAFETY: forwarded contract.
        unsafe { ALLOC.release(class) }
    }
}

/// Live bytes of class `cls`, as requested; 0 for a class out of range.
#[no_mangle]
pub extern "C" fn ClassLiveBytes(cls: u32) -> usize {
    CClass::new(cls).map_or(0, |class| ALLOC.class_totals(class).live_bytes)
}

/// Resident bytes of class `cls`; 0 for a class out of range.
#[no_mangle]
pub extern "C" fn ClassResidentBytes(cls: u32) -> usize {
    CClass::new(cls).map_or(0, |class| ALLOC.class_totals(class).resident_bytes)
}
