//! Memory from the operating system: anonymous mappings, physically backed only when touched.

use core::ptr::NonNull;

/// Why the operating system gave no memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsError {
    /// The requested size (with the slack needed for alignment) does not fit the address space.
    SizeOverflow,
    /// `mmap` failed with this `errno`.
    MapFailed {
        /// The `errno` value `mmap` left.
        errno: i32,
    },
}

impl core::fmt::Display for OsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::SizeOverflow => f.write_str("mapping size overflows the address space"),
            Self::MapFailed { errno } => write!(f, "mmap failed with errno {errno}"),
        }
    }
}

impl std::error::Error for OsError {}

/// An anonymous, private, read-write mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is plain memory owned by this value; it is not tied to the thread that created it.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only exposes the address and length, never the bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes starting at a multiple of `align` (a power of two, at least the page size). The pages read
    /// as zero and get physical memory only when first written (`MAP_NORESERVE`: no swap is reserved up front).
    pub fn new_aligned(len: usize, align: usize) -> Result<Self, OsError> {
        let page = page_size();
        if len == 0 || !align.is_power_of_two() {
            return Err(OsError::SizeOverflow);
        }
        let align = align.max(page);
        let len = len
            .checked_next_multiple_of(page)
            .ok_or(OsError::SizeOverflow)?;
        let slack = align - page;
        let mapped_len = len.checked_add(slack).ok_or(OsError::SizeOverflow)?;
        if mapped_len > isize::MAX as usize {
            return Err(OsError::SizeOverflow);
        }
        // SAFETY: an anonymous private mapping at an address the kernel chooses touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                mapped_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(OsError::MapFailed {
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        let start = raw as usize;
        let aligned = (start + slack) & !(align - 1);
        let head = aligned - start;
        let tail = slack - head;
        // Give back the slack on both sides; failures here would only leave unused address space mapped.
        if head > 0 {
            // SAFETY: `start..aligned` is part of the mapping just made and nothing refers to it.
            unsafe { libc::munmap(raw, head) };
        }
        if tail > 0 {
            // SAFETY: `aligned + len ..` up to the end of the mapping is ours and unused.
            unsafe { libc::munmap((aligned + len) as *mut libc::c_void, tail) };
        }
        // SAFETY: `aligned` lies inside a successful mapping, so it is not null.
        let ptr = unsafe { NonNull::new_unchecked(aligned as *mut u8) };
        Ok(Self { ptr, len })
    }

    /// Start of the mapping.
    pub const fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes (a multiple of the page size).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true: empty mappings are refused).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies inside the mapping.
    pub fn contains(&self, addr: usize) -> bool {
        let start = self.ptr.as_ptr() as usize;
        addr >= start && addr - start < self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // A region over this mapping may have poisoned free blocks; a later mapping at this address must not
        // inherit that.
        crate::asan::unpoison(self.ptr.as_ptr() as usize, self.len);
        // SAFETY: `ptr..ptr + len` is exactly the mapping this value owns; nothing may use it after the drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: `sysconf` has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_aligned_zeroed_and_writable() {
        let mapping = Mapping::new_aligned(1 << 20, 1 << 20).expect("1 MiB mapping");
        assert_eq!(mapping.ptr().as_ptr() as usize % (1 << 20), 0);
        assert_eq!(mapping.len(), 1 << 20);
        let last = mapping.len() - 1;
        // SAFETY: both bytes lie in the mapping, which is readable and writable.
        unsafe {
            assert_eq!(*mapping.ptr().as_ptr(), 0);
            mapping.ptr().as_ptr().add(last).write(7);
            assert_eq!(*mapping.ptr().as_ptr().add(last), 7);
        }
        assert!(mapping.contains(mapping.ptr().as_ptr() as usize + last));
        assert!(!mapping.contains(mapping.ptr().as_ptr() as usize + mapping.len()));
    }

    #[test]
    fn impossible_mappings_are_errors() {
        assert_eq!(
            Mapping::new_aligned(0, 4096).unwrap_err(),
            OsError::SizeOverflow
        );
        assert_eq!(
            Mapping::new_aligned(usize::MAX, 4096).unwrap_err(),
            OsError::SizeOverflow
        );
        assert_eq!(
            Mapping::new_aligned(1 << 40, 1 << 63).unwrap_err(),
            OsError::SizeOverflow
        );
        assert!(matches!(
            Mapping::new_aligned(1 << 62, 4096),
            Err(OsError::MapFailed { .. })
        ));
    }
}
