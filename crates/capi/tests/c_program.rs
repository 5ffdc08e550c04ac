//! Builds `tests/c/program.c` against the static library and the header, runs it, and checks a misuse
//! from C aborts with its message.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory cargo put this test's libraries in: beside the test binary (`target/<profile>/deps`).
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn build(name: &str, source: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = deps_dir().join("libclassalloc_c.a");
    assert!(library.exists(), "{} not built", library.display());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let source_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.c"));
    std::fs::write(&source_path, source).unwrap();
    let status = Command::new("cc")
        .arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(manifest.join("include"))
        .arg(&source_path)
        .arg(&library)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "cc failed for {name}");
    out
}

#[test]
#[cfg_attr(
    classalloc_asan,
    ignore = "a plain cc program cannot link the sanitizer-instrumented static library; runs in the normal build"
)]
fn a_c_program_uses_the_seed_api_and_classes() {
    let source = include_str!("c/program.c");
    let program = build("program", source);
    let output = Command::new(&program).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok\n");
}

#[test]
#[cfg_attr(
    classalloc_asan,
    ignore = "a plain cc program cannot link the sanitizer-instrumented static library; runs in the normal build"
)]
fn a_misuse_from_c_aborts_with_its_message() {
    let source = r#"
        #include "classalloc.h"
        int main(void) {
            void *p = MallocClass(2, 32);
            FreeClass(5, p, 32); /* wrong class */
            return 0;
        }
    "#;
    let program = build("misuse", source);
    let output = Command::new(&program).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc_sigabrt()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("classalloc: fatal: free into another lifetime class"),
        "{stderr}"
    );
}

/// SIGABRT on Linux.
fn libc_sigabrt() -> i32 {
    6
}
