//! Bad input through the C ABI (issue 7, item 3), called from Rust: size 0, sizes near `SIZE_MAX`,
//! `count * size` overflow in `CallocArray`, resizes to 0 and to impossible sizes, classes out of range,
//! and the OS refusing memory (`RLIMIT_AS`, in a child process). Every refusal is NULL and leaves the
//! class's live bytes and the allocation it was given as they were.
//!
//! The functions share one allocator, so each test works in classes of its own.

use classalloc_c::{
    Calloc, CallocArray, CallocArrayClass, CallocClass, ClassLiveBytes, ClassResidentBytes, Free,
    FreeClass, Malloc, MallocClass, Recalloc, RecallocClass, ReleaseClass, Remalloc, RemallocClass,
};
use std::process::Command;

/// Sizes no allocation can have: 0, rounding that overflows, more than any address space.
const HOPELESS: [usize; 8] = [
    0,
    usize::MAX,
    usize::MAX - 4095,
    usize::MAX / 2 + 1,
    isize::MAX as usize,
    isize::MAX as usize - 4095,
    1 << 62,
    1 << 56,
];

/// Classes out of range.
const BAD_CLASSES: [u32; 4] = [16, 17, 1000, u32::MAX];

fn fill(ptr: *mut u8, len: usize, byte: u8) {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { ptr.write_bytes(byte, len) }
}

fn holds(ptr: *const u8, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live allocation of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr, len) }
        .iter()
        .all(|&b| b == byte)
}

/// `count * size` pairs whose product overflows.
const OVERFLOWING_PRODUCTS: [(usize, usize); 6] = [
    (usize::MAX, 2),
    (2, usize::MAX),
    (usize::MAX / 2 + 1, 2),
    (1 << 32, 1 << 32),
    (usize::MAX, usize::MAX),
    ((usize::MAX / 24) + 1, 24),
];

#[test]
fn the_class_less_functions_give_null_and_keep_what_they_were_given() {
    let before = ClassLiveBytes(0);
    for size in HOPELESS {
        assert!(Malloc(size).is_null(), "{size:#x}");
        assert!(Calloc(size).is_null(), "{size:#x}");
        assert!(CallocArray(1, size).is_null() && CallocArray(size, 1).is_null());
    }
    for (count, size) in OVERFLOWING_PRODUCTS {
        assert!(CallocArray(count, size).is_null(), "{count} x {size}");
    }
    // Products that fit but are 0 or more than any address space.
    assert!(CallocArray(0, 8).is_null() && CallocArray(8, 0).is_null());
    assert!(CallocArray(1 << 31, 1 << 31).is_null());
    assert_eq!(ClassLiveBytes(0), before);

    let array = CallocArray(1000, 24);
    assert!(!array.is_null() && holds(array, 24_000, 0));
    assert_eq!(ClassLiveBytes(0), before + 24_000);
    for size in [24, 4096, 100_000] {
        let p = Malloc(size);
        assert!(!p.is_null());
        fill(p, size, 0x2E);
        let during = ClassLiveBytes(0);
        // SAFETY: `p` is live with `size` bytes; every resize fails and keeps it.
        unsafe {
            for new_size in HOPELESS {
                assert!(Remalloc(p, size, new_size).is_null(), "{new_size:#x}");
                assert!(Recalloc(p, size, new_size).is_null(), "{new_size:#x}");
            }
            assert!(Remalloc(core::ptr::null_mut(), 0, 0).is_null());
            assert!(Recalloc(core::ptr::null_mut(), 0, usize::MAX).is_null());
            Free(core::ptr::null_mut(), 0);
        }
        assert_eq!(ClassLiveBytes(0), during, "size {size}");
        assert!(holds(p, size, 0x2E));
        // SAFETY: live with `size` bytes.
        unsafe { Free(p, size) };
    }
    // SAFETY: live with 1000 x 24 bytes.
    unsafe { Free(array, 24_000) };
    assert_eq!(ClassLiveBytes(0), before);
}

#[test]
fn class_variants_refuse_classes_out_of_range_and_bad_sizes() {
    for cls in BAD_CLASSES {
        assert!(MallocClass(cls, 8).is_null() && CallocClass(cls, 8).is_null());
        assert!(CallocArrayClass(cls, 2, 8).is_null());
        assert_eq!((ClassLiveBytes(cls), ClassResidentBytes(cls)), (0, 0));
        // SAFETY: NULL is ignored; releasing a class out of range does nothing.
        unsafe {
            FreeClass(cls, core::ptr::null_mut(), 8);
            ReleaseClass(cls);
        }
    }
    let class = 7;
    let before = ClassLiveBytes(class);
    for size in HOPELESS {
        assert!(MallocClass(class, size).is_null(), "{size:#x}");
        assert!(CallocClass(class, size).is_null(), "{size:#x}");
    }
    for (count, size) in OVERFLOWING_PRODUCTS {
        assert!(CallocArrayClass(class, count, size).is_null());
    }
    assert_eq!(ClassLiveBytes(class), before);
    let p = MallocClass(class, 300);
    fill(p, 300, 0x7A);
    let during = ClassLiveBytes(class);
    // SAFETY: `p` is live in `class` with 300 bytes; every resize below fails and keeps it.
    unsafe {
        for cls in BAD_CLASSES {
            assert!(RemallocClass(cls, p, 300, 600).is_null());
            assert!(RecallocClass(cls, p, 300, 600).is_null());
        }
        for new_size in HOPELESS {
            assert!(RemallocClass(class, p, 300, new_size).is_null());
            assert!(RecallocClass(class, p, 300, new_size).is_null());
        }
    }
    assert_eq!(ClassLiveBytes(class), during);
    assert!(holds(p, 300, 0x7A));
    // SAFETY: live in `class` with 300 bytes.
    unsafe { FreeClass(class, p, 300) };
    assert_eq!(ClassLiveBytes(class), before);
}

const CHILD: &str = "CLASSALLOC_CAPI_OS_REFUSAL_CHILD";
const DONE: &str = "capi os-refusal child: every refusal checked";

/// The process's mapped address space (what `RLIMIT_AS` limits).
fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

/// Sets the soft address-space limit; returns the previous limits.
fn limit_address_space(bytes: u64) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write plain structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: bytes.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

/// In the child: no new mapping fits, so every call that needs one gives NULL and changes nothing.
fn under_the_limit() {
    let classes = [0, 3];
    // Some room first, before the first allocation (a page source that reserves address space ahead
    // of use finds none for that), then none at all.
    let old = limit_address_space(address_space() + (8 << 20));
    let small = Malloc(40);
    let large = MallocClass(3, 1 << 20);
    assert!(!small.is_null() && !large.is_null());
    fill(small, 40, 0x51);
    fill(large, 1 << 20, 0x52);
    let before = classes.map(|cls| ClassLiveBytes(cls));
    limit_address_space(address_space());
    for size in [100, 3000, 20_000, 1 << 20, 64 << 20] {
        assert!(Malloc(size).is_null() && Calloc(size).is_null(), "{size}");
        assert!(MallocClass(3, size).is_null() && CallocClass(5, size).is_null());
        assert!(CallocArray(size, 3).is_null() && CallocArrayClass(3, 3, size).is_null());
    }
    // SAFETY: both are live with these sizes and classes; the resizes need new memory and fail.
    unsafe {
        for new_size in [3000, 64 << 20] {
            assert!(Remalloc(small, 40, new_size).is_null());
            assert!(Recalloc(small, 40, new_size).is_null());
            assert!(RemallocClass(3, large, 1 << 20, new_size).is_null());
            assert!(RecallocClass(3, large, 1 << 20, new_size).is_null());
        }
    }
    assert_eq!(classes.map(|cls| ClassLiveBytes(cls)), before);
    // SAFETY: restoring the limits read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) }, 0);
    assert!(holds(small, 40, 0x51) && holds(large, 1 << 20, 0x52));
    // Memory is back: the same calls succeed, and everything returns.
    let grown = Malloc(64 << 20);
    assert!(!grown.is_null());
    // SAFETY: live with these sizes and classes.
    unsafe {
        Free(grown, 64 << 20);
        Free(small, 40);
        FreeClass(3, large, 1 << 20);
    }
    assert_eq!(classes.map(|cls| ClassLiveBytes(cls)), [0, 0]);
    println!("{DONE}");
}

#[test]
fn the_c_abi_gives_null_when_the_os_refuses_memory() {
    if std::env::var_os(CHILD).is_some() {
        under_the_limit();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_c_abi_gives_null_when_the_os_refuses_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(DONE),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
