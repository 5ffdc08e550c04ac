//! A detected misuse aborts with a message naming it. Each case runs in a child process (this same test
//! binary, re-run with an environment variable naming the case).

use std::process::Command;

const CASE: &str = "CLASSALLOC_MISUSE_CASE";

/// Runs `case` in a child and returns its stderr, asserting it died of SIGABRT.
fn run_child(test_name: &str, case: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "child did not abort: {output:?}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn misuse(case: &str) {
    let p = classalloc::malloc(32);
    // SAFETY: deliberately wrong frees; the allocator must detect them before touching anything.
    unsafe {
        match case {
            "wrong-class" => classalloc::free(p, 8),
            "interior" => classalloc::free(p.add(4), 32),
            "size-zero" => classalloc::free(p, 0),
            "double" => {
                classalloc::free(p, 32);
                classalloc::free(p, 32);
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn misuse_aborts_with_a_message_naming_it() {
    if let Ok(case) = std::env::var(CASE) {
        misuse(&case);
        return;
    }
    let cases = [
        ("wrong-class", "free with a size of another class"),
        ("interior", "not an allocated slot"),
        ("size-zero", "free with size 0"),
        ("double", "double free"),
    ];
    for (case, message) in cases {
        let stderr = run_child("misuse_aborts_with_a_message_naming_it", case);
        assert!(
            stderr.contains("classalloc: fatal: ") && stderr.contains(message),
            "{case}: {stderr}"
        );
    }
}
