//! Errors: every bad input gets a value that says what was wrong.

use core::fmt;

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// A size of 0 was requested.
    ZeroSize,
    /// The size, rounded to its class or to pages, overflows or exceeds `isize::MAX`.
    TooLarge,
    /// The alignment is not a power of two.
    BadAlignment,
    /// The OS refused memory.
    OutOfMemory,
    /// A reallocation was given a pointer that is not a live allocation of the stated size; the new block was
    /// given back and the old one is untouched.
    NotAllocated(FreeError),
}

/// Why a free was refused. A refused free changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FreeError {
    /// A size of 0 was given: no allocation has size 0.
    ZeroSize,
    /// The pointer is not the start of a slot that was handed out (interior, foreign or never allocated).
    NotASlot,
    /// The block the pointer lies in belongs to another size class than the size given implies.
    ClassMismatch,
    /// The block holds no live slot: the pointer was already freed.
    DoubleFree,
    /// The block belongs to another slab (another lifetime class) than the one the free was sent to.
    OwnerMismatch,
    /// A large allocation's pointer is not page-aligned, so it cannot be one of ours.
    Misaligned,
    /// The pointer lies in no block of this allocator (checked mode): foreign, or its block was released
    /// with its class.
    Foreign,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::ZeroSize => f.write_str("allocation of size 0"),
            AllocError::TooLarge => f.write_str("allocation size overflows when rounded"),
            AllocError::BadAlignment => f.write_str("alignment is not a power of two"),
            AllocError::OutOfMemory => f.write_str("the OS refused memory"),
            AllocError::NotAllocated(error) => write!(f, "reallocation of a bad pointer: {error}"),
        }
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreeError::ZeroSize => "free with size 0",
            FreeError::NotASlot => {
                "free of a pointer that is not an allocated slot (interior or foreign)"
            }
            FreeError::ClassMismatch => "free with a size of another class than the allocation's",
            FreeError::DoubleFree => "double free",
            FreeError::OwnerMismatch => "free into another lifetime class than the allocation's",
            FreeError::Misaligned => {
                "free of a large allocation at a pointer that is not page-aligned"
            }
            FreeError::Foreign => {
                "free of a pointer in no block of this allocator (foreign, or its class was released)"
            }
        })
    }
}

impl std::error::Error for AllocError {}
impl std::error::Error for FreeError {}
