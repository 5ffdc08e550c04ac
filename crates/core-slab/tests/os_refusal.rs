//! The OS refusing memory (an address-space limit) gives errors, never a crash or a bogus pointer, and the
//! slab keeps working once memory is available again. Alone in its binary: the limit is process-wide.

use classalloc_slab::{AllocError, SizeClass, Slab};

fn address_space_limit(bytes: libc::rlim_t) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read plain structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

fn mapped_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}

#[test]
fn refused_memory_gives_errors_and_nothing_leaks() {
    let slab = Slab::new();
    let class = SizeClass::for_size(64).unwrap();
    let mut objects = Vec::with_capacity(1 << 20);
    let old = address_space_limit(mapped_bytes() + (16 << 20));

    assert_eq!(slab.malloc(64 << 20), Err(AllocError::OutOfMemory));
    let mut refused = None;
    for _ in 0..(1 << 20) {
        match slab.malloc(64) {
            Ok(p) => objects.push(p),
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    // SAFETY: restoring the limit read above.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) };
    assert_eq!(refused, Some(AllocError::OutOfMemory));
    assert!(!objects.is_empty());

    // Memory is back: the slab goes on, and everything returns.
    let p = slab.malloc(64).unwrap();
    objects.push(p);
    for p in objects {
        // SAFETY: live allocations of 64 bytes.
        unsafe { slab.free(p, 64).unwrap() };
    }
    let stats = slab.class_stats(class);
    // Every emptied block went back to the page source.
    assert_eq!((stats.live_objects, stats.blocks), (0, 0));
}
