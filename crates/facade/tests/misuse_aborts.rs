//! A detected misuse aborts with a message naming it. Each case runs in a child process (this same test
//! binary, re-run with an environment variable naming the case) whose signal and message are asserted.
//!
//! These are checked-mode guarantees (the `checked` feature, on in every debug build): a release build
//! without it keeps the zero-metadata fast path and catches only some of these, late. The file compiles to
//! nothing there.
#![cfg(any(debug_assertions, feature = "checked"))]

use allocator_api2::alloc::Allocator;
use classalloc::{lifetime_class, ClassAlloc};
use core::alloc::{GlobalAlloc, Layout};
use std::process::Command;

const CASE: &str = "CLASSALLOC_MISUSE_CASE";

#[derive(Clone, Copy, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Frame,
    Request,
}
lifetime_class!(Life);

static CLASSES: ClassAlloc<Life> = ClassAlloc::new();

/// Runs `case` in a child and returns its stderr, asserting it died of SIGABRT.
fn run_child(case: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "misuse_aborts_with_a_message_naming_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE, case)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{case}: child did not abort: {output:?}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Commits the misuse `case`; returns only if it was not caught.
fn misuse(case: &str) {
    let global = classalloc::Global;
    let layout = Layout::from_size_align(32, 8).unwrap();
    // SAFETY: deliberately wrong frees; the allocator must detect them before touching anything.
    unsafe {
        match case {
            "seed-wrong-size" => classalloc::free(classalloc::malloc(32), 8),
            "seed-interior" => classalloc::free(classalloc::malloc(32).add(4), 32),
            "seed-size-zero" => classalloc::free(classalloc::malloc(32), 0),
            "double" => {
                let p = global.alloc(layout);
                global.dealloc(p, layout);
                global.dealloc(p, layout);
            }
            "wrong-size" => {
                let p = global.alloc(layout);
                global.dealloc(p, Layout::from_size_align(200, 8).unwrap());
            }
            "interior" => {
                let p = global.alloc(layout);
                global.dealloc(p.add(8), layout);
            }
            "foreign" => {
                let p = libc::malloc(32).cast::<u8>();
                global.dealloc(p, layout);
            }
            "wrong-class" => {
                let p = CLASSES.handle(Life::Frame).allocate(layout).unwrap();
                CLASSES.handle(Life::Request).deallocate(p.cast(), layout);
            }
            "class-double" => {
                let handle = CLASSES.handle(Life::Frame);
                let p = handle.allocate(layout).unwrap();
                handle.deallocate(p.cast(), layout);
                handle.deallocate(p.cast(), layout);
            }
            "after-release" => {
                let handle = CLASSES.handle(Life::Request);
                let p = handle.allocate(layout).unwrap();
                CLASSES.release(Life::Request);
                handle.deallocate(p.cast(), layout);
            }
            _ => unreachable!("unknown case {case}"),
        }
    }
}

#[test]
fn misuse_aborts_with_a_message_naming_it() {
    if let Ok(case) = std::env::var(CASE) {
        misuse(&case);
        return;
    }
    let cases: &[(&str, &[&str])] = &[
        (
            "seed-wrong-size",
            &["free with a size of another class", "(8 B)"],
        ),
        ("seed-interior", &["not an allocated slot", "(32 B)"]),
        ("seed-size-zero", &["free with size 0"]),
        ("double", &["double free", "(32 B)"]),
        (
            "wrong-size",
            &["free with a size of another class", "(200 B)"],
        ),
        ("interior", &["not an allocated slot"]),
        ("foreign", &["in no block of this allocator"]),
        (
            "wrong-class",
            &["into another lifetime class", "(class Request, 32 B)"],
        ),
        ("class-double", &["double free", "(class Frame, 32 B)"]),
        (
            "after-release",
            &["its class was released", "(class Request, 32 B)"],
        ),
    ];
    for (case, expected) in cases {
        let stderr = run_child(case);
        assert!(stderr.contains("classalloc: fatal: "), "{case}: {stderr}");
        for part in *expected {
            assert!(
                stderr.contains(part),
                "{case}: expected {part:?} in {stderr}"
            );
        }
    }
}
