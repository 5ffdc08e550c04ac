//! The page shell: scripts piped through the command loop, and through the example binary itself.

use std::io::Write;
use std::process::{Command, Stdio};

use classalloc_buddy::pages::PageHeap;
use classalloc_buddy::shell::Shell;

fn run(script: &str, max_order: u32, max_chunks: usize) -> (String, Shell) {
    let heap = PageHeap::with_config(12, max_order, max_chunks).unwrap();
    let mut shell = Shell::new(heap);
    let mut out = Vec::new();
    shell.run(script.as_bytes(), &mut out).unwrap();
    (String::from_utf8(out).unwrap(), shell)
}

#[test]
fn a_script_allocates_draws_and_frees() {
    let script = "\
# three blocks, one freed
alloc 0
alloc 2
alloc 1
free 1
show
stats
quit
";
    let (out, shell) = run(script, 3, 4);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "#1: 1 page(s) at chunk 0 page 0");
    assert_eq!(lines[1], "#2: 4 page(s) at chunk 0 page 4");
    assert_eq!(lines[2], "#3: 2 page(s) at chunk 0 page 2");
    assert_eq!(lines[3], "freed #1");
    assert!(lines[4].starts_with("chunk 0 at 0x") && lines[4].ends_with(": 8 pages of 4096 B"));
    // Rows from order 3 down to 0, then the map: pages 0-1 free (merged), 2-3 and 4-7 allocated.
    assert_eq!(
        &lines[5..10],
        [
            "  order  3 |        |",
            "  order  2 |    A###|",
            "  order  1 |F.A#    |",
            "  order  0 |        |",
            "  map      |..######|",
        ]
    );
    assert_eq!(lines[10], "chunks 1, pages 8, allocated 6, free 2");
    assert_eq!(lines[11], "  order  0: 0 free block(s)");
    assert_eq!(lines[12], "  order  1: 1 free block(s)");
    assert_eq!(lines.last(), Some(&"bye"));
    assert_eq!(shell.heap().stats().allocated_pages, 6);
}

#[test]
fn mistakes_get_messages_and_the_loop_goes_on() {
    let script = "\
frobnicate
alloc
alloc x
alloc 9
free 42
free #zz
show now
alloc 0 1
alloc 3
alloc 0
stats
";
    let (out, shell) = run(script, 3, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "error: unknown command `frobnicate` (try `help`)");
    assert_eq!(lines[1], "error: `alloc` needs an argument");
    assert_eq!(lines[2], "error: `x` is not an order");
    assert_eq!(lines[3], "error: alloc 9: order above the heap's maximum");
    assert_eq!(lines[4], "error: no live block #42");
    assert_eq!(lines[5], "error: `#zz` is not an id");
    assert_eq!(lines[6], "error: `show` takes no argument");
    assert_eq!(lines[7], "error: too many arguments to `alloc`");
    assert_eq!(lines[8], "#1: 8 page(s) at chunk 0 page 0");
    assert_eq!(lines[9], "error: alloc 0: chunk limit reached");
    assert_eq!(lines[10], "chunks 1, pages 8, allocated 8, free 0");
    assert_eq!(shell.heap().stats().allocated_pages, 8);
}

#[test]
fn quit_stops_reading_and_help_lists_commands() {
    let (out, shell) = run("help\nquit\nalloc 0\n", 3, 1);
    assert!(out.contains("alloc <order>") && out.contains("free <id>") && out.contains("show"));
    assert!(out.ends_with("bye\n"));
    assert_eq!(shell.heap().stats().chunks, 0, "nothing after quit ran");
}

#[test]
fn an_empty_heap_draws_a_note_and_big_chunks_draw_a_scaled_map() {
    let (out, _) = run("show\n", 3, 1);
    assert_eq!(out, "(no chunk mapped yet)\n");
    let (out, _) = run("alloc 0\nshow\n", 10, 1);
    assert!(out.contains("map (1 cell = 8 pages) |#..."), "{out}");
}

/// The example binary, built by `cargo test` next to the test binaries.
fn example_binary() -> std::path::PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    deps.parent()
        .unwrap()
        .join("examples")
        .join(format!("shell{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn the_example_reads_a_script_from_stdin() {
    let binary = example_binary();
    assert!(
        binary.exists(),
        "cargo test builds examples; missing {}",
        binary.display()
    );
    let mut child = Command::new(&binary)
        .args(["--max-order", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alloc 1\nalloc 0\nshow\nquit\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(out.contains("#1: 2 page(s) at chunk 0 page 0"), "{out}");
    assert!(out.contains("  map      |###.|"), "{out}");
    assert!(out.ends_with("bye\n"));

    let bad = Command::new(&binary).arg("--max-order").output().unwrap();
    assert!(!bad.status.success());
}
