//! The OS layer: anonymous mappings, aligned mappings, resizing. Every failure is reported as `None`, never
//! as `MAP_FAILED` escaping to a caller (the seed's bug 5).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The page size this crate is built for; checked against the OS once in tests.
pub const PAGE_SIZE: usize = 4096;

// Process-wide counts of the system calls made here (refused ones included): a relaxed increment beside a
// system call costs nothing measurable, and tests and benchmarks read them to count what a workload costs.
static MAPS: AtomicUsize = AtomicUsize::new(0);
static UNMAPS: AtomicUsize = AtomicUsize::new(0);
static REMAPS: AtomicUsize = AtomicUsize::new(0);
static PURGES: AtomicUsize = AtomicUsize::new(0);

/// How many memory system calls this crate has made in this process, refused ones included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OsCounts {
    /// `mmap` calls.
    pub maps: usize,
    /// `munmap` calls.
    pub unmaps: usize,
    /// `mremap` calls.
    pub remaps: usize,
    /// `madvise(MADV_DONTNEED)` calls.
    pub purges: usize,
}

/// The counts so far (each exact; the four are read one after the other).
pub fn counts() -> OsCounts {
    OsCounts {
        maps: MAPS.load(Ordering::Relaxed),
        unmaps: UNMAPS.load(Ordering::Relaxed),
        remaps: REMAPS.load(Ordering::Relaxed),
        purges: PURGES.load(Ordering::Relaxed),
    }
}

/// Rounds `size` up to whole pages; `None` when that overflows or exceeds `isize::MAX`.
#[inline]
pub const fn page_round(size: usize) -> Option<usize> {
    match size.checked_add(PAGE_SIZE - 1) {
        Some(padded) if padded & !(PAGE_SIZE - 1) <= isize::MAX as usize => {
            Some(padded & !(PAGE_SIZE - 1))
        }
        _ => None,
    }
}

/// Maps `len` bytes (a multiple of the page size) of zeroed, lazily backed memory.
pub fn map(len: usize) -> Option<NonNull<u8>> {
    map_with(len, 0)
}

/// Reserves `len` bytes (a multiple of the page size) of zeroed address space, readable and writable but
/// without swap space set aside (`MAP_NORESERVE`): pages are backed when first touched, like any anonymous
/// memory, and a large reservation costs no commit charge. It still counts against `RLIMIT_AS`.
pub fn reserve(len: usize) -> Option<NonNull<u8>> {
    map_with(len, libc::MAP_NORESERVE)
}

fn map_with(len: usize, extra_flags: libc::c_int) -> Option<NonNull<u8>> {
    debug_assert!(len > 0 && len % PAGE_SIZE == 0);
    MAPS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no existing memory.
    let addr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(addr.cast())
    }
}

/// Maps `len` bytes aligned to `align` (a power of two, at least a page), trimming the excess so that no
/// virtual memory is left behind.
pub fn map_aligned(len: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(align.is_power_of_two() && align >= PAGE_SIZE && len % PAGE_SIZE == 0);
    if align == PAGE_SIZE {
        return map(len);
    }
    let padded = len.checked_add(align - PAGE_SIZE)?;
    let raw = map(padded)?;
    let start = raw.as_ptr() as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = padded - head - len;
    // SAFETY: both ranges lie inside the mapping just made and outside the part we keep.
    unsafe {
        if head > 0 {
            unmap(raw, head);
        }
        if tail > 0 {
            unmap(NonNull::new_unchecked((aligned + len) as *mut u8), tail);
        }
    }
    NonNull::new(aligned as *mut u8)
}

/// Returns a mapping (or a page-aligned part of one) to the OS.
///
/// # Safety
/// `ptr .. ptr + len` is mapped by this module and nothing refers to it any more.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    UNMAPS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the caller hands over the range; munmap of a mapped range cannot fail except for bad
    // arguments, which the caller's contract excludes.
    let result = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    debug_assert_eq!(result, 0, "munmap failed");
}

/// Gives the physical pages of `ptr .. ptr + len` back to the OS, keeping the mapping: the next touch of
/// each page maps a fresh zero page.
///
/// # Safety
/// The range is page-aligned, mapped by this module, and its contents are no longer needed.
pub unsafe fn purge(ptr: NonNull<u8>, len: usize) {
    debug_assert!(ptr.as_ptr() as usize % PAGE_SIZE == 0 && len % PAGE_SIZE == 0);
    PURGES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: per the contract the range is ours and disposable; MADV_DONTNEED on a private anonymous
    // mapping only drops its pages.
    let result = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTNEED) };
    debug_assert_eq!(result, 0, "madvise failed");
}

/// Resizes a mapping of `old_len` to `new_len` bytes (both page multiples). With `may_move` the kernel may
/// move it (keeping only page alignment); without, only an in-place resize is accepted.
///
/// # Safety
/// `ptr .. ptr + old_len` is a mapping made by this module; on success the old range must no longer be
/// used unless the returned pointer equals `ptr`.
pub unsafe fn remap(
    ptr: NonNull<u8>,
    old_len: usize,
    new_len: usize,
    may_move: bool,
) -> Option<NonNull<u8>> {
    let flags = if may_move { libc::MREMAP_MAYMOVE } else { 0 };
    REMAPS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the caller guarantees the old range is ours; mremap either moves it whole or fails leaving it
    // untouched.
    let addr = unsafe { libc::mremap(ptr.as_ptr().cast(), old_len, new_len, flags) };
    if addr == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(addr.cast())
    }
}

/// Milliseconds on the monotonic clock, at the kernel tick's resolution (a few ms; `CLOCK_MONOTONIC_COARSE`
/// is read from the vDSO without a system call): what the page source's hysteresis needs to age blocks.
#[cfg(not(loom))]
pub(crate) fn coarse_millis() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; clock_gettime only writes it.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    if status != 0 {
        // Cannot happen for this clock on Linux; a stopped clock only means no block ever ages.
        return 0;
    }
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}
