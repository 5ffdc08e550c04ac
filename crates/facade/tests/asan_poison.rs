//! Under AddressSanitizer (`cargo xtask asan`), a freed slot is poisoned: reading it after the free is
//! reported. The read runs in a child process (this test binary again), whose report is asserted.
#![cfg(classalloc_asan)]

use core::alloc::{GlobalAlloc, Layout};
use std::process::Command;

const CASE: &str = "CLASSALLOC_ASAN_CASE";

/// Frees a slot (through the thread cache, then through the locked path) and reads it afterwards.
fn use_after_free(through_cache: bool) -> u8 {
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: deliberately reads a freed slot; ASan must stop the process at that read.
    unsafe {
        if through_cache {
            let p = classalloc::Global.alloc(layout);
            p.write_bytes(7, 64);
            classalloc::Global.dealloc(p, layout);
            core::ptr::read_volatile(p.add(32))
        } else {
            let p = classalloc::malloc(64);
            p.write_bytes(7, 64);
            classalloc::try_free(p, 64).unwrap();
            core::ptr::read_volatile(p.add(32))
        }
    }
}

#[test]
fn a_read_of_a_freed_slot_is_reported() {
    if let Ok(case) = std::env::var(CASE) {
        let value = use_after_free(case == "cache");
        println!("read {value} without a report");
        return;
    }
    for case in ["cache", "locked"] {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_read_of_a_freed_slot_is_reported",
                "--nocapture",
            ])
            .env(CASE, case)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{case}: no report: {output:?}");
        assert!(
            stderr.contains("AddressSanitizer: use-after-poison"),
            "{case}: {stderr}"
        );
    }
}
