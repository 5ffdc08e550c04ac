//! Helpers shared by the integration tests: an aligned buffer and a seeded random source.

#![allow(dead_code)]

use std::alloc::Layout;
use std::ptr::NonNull;

/// A heap buffer of `len` bytes aligned to `align`, filled with `fill`, freed on drop.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    pub fn new(len: usize, align: usize, fill: u8) -> Self {
        let layout = Layout::from_size_align(len, align).expect("valid test layout");
        // SAFETY: every test buffer has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(raw).expect("test buffer allocated");
        // SAFETY: `ptr` points to `len` writable bytes.
        unsafe { ptr.as_ptr().write_bytes(fill, len) };
        Self { ptr, layout }
    }

    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Pointer `offset` bytes into the buffer.
    pub fn at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset <= self.layout.size());
        // SAFETY: in bounds (or one past the end) of the buffer; non-null as the buffer is.
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(offset)) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the buffer holds `size` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// xorshift64*, seeded: failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fills `len` bytes at `ptr` with `byte`.
///
/// # Safety
/// `ptr..ptr + len` must be writable and owned by the caller.
pub unsafe fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_ptr().write_bytes(byte, len) }
}

/// Whether all `len` bytes at `ptr` equal `byte`.
///
/// # Safety
/// `ptr..ptr + len` must be readable.
pub unsafe fn all_equal(ptr: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) }
        .iter()
        .all(|&b| b == byte)
}
