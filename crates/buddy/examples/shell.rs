//! An interactive (or scripted) buddy page allocator: `cargo run -p classalloc-buddy --example shell`.
//!
//! Options: `--max-order N` (default 5, so the drawing fits a terminal), `--max-chunks N` (default unlimited).
//! Try: `printf 'alloc 0\nalloc 2\nshow\nstats\n' | cargo run -q -p classalloc-buddy --example shell`.

use std::io::{self, Write};
use std::process::ExitCode;

use classalloc_buddy::pages::{PageHeap, DEFAULT_PAGE_SHIFT};
use classalloc_buddy::shell::{Shell, HELP};

fn main() -> ExitCode {
    let mut max_order = 5;
    let mut max_chunks = usize::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (flag.as_str(), value) {
            ("--max-order", Some(v)) => max_order = v.min(u32::MAX as usize) as u32,
            ("--max-chunks", Some(v)) => max_chunks = v,
            _ => {
                eprintln!("usage: shell [--max-order N] [--max-chunks N]\n\n{HELP}");
                return ExitCode::FAILURE;
            }
        }
    }
    let heap = match PageHeap::with_config(DEFAULT_PAGE_SHIFT, max_order, max_chunks) {
        Ok(heap) => heap,
        Err(error) => {
            eprintln!("shell: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut shell = Shell::new(heap);
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    let result = shell.run(stdin.lock(), &mut stdout);
    let _ = stdout.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shell: {error}");
            ExitCode::FAILURE
        }
    }
}
