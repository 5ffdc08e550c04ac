//! The driver of the `real_*` binaries: workload g (real Rust work) in a process whose
//! `#[global_allocator]` is the allocator under test. Each binary sets its global allocator and calls
//! [`main`]; `cargo xtask bench` times the whole process and reads its peak resident set.

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::{print_result, Args};
use crate::rss::peak_resident_bytes;
use crate::workloads::{btree, json};

/// Runs `--workload btree|json` with `--scale N` (work multiplier, 1 for the full size) and prints
/// one `RESULT` line with the in-process seconds and the peak resident bytes.
pub fn main(allocator: &str) -> ExitCode {
    match run(allocator) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("real_{allocator}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(allocator: &str) -> Result<(), String> {
    let args = Args::from_env()?;
    let workload: String = args.required("workload")?;
    let scale: f64 = args.optional("scale", 1.0)?;
    let scaled = |full: f64| ((full * scale) as usize).max(1);
    let start = Instant::now();
    let checksum = match workload.as_str() {
        "btree" => btree::run(scaled(500_000.0), 3),
        "json" => json::run(scaled(300_000.0), 3)? as u64,
        other => return Err(format!("unknown workload `{other}`")),
    };
    let seconds = start.elapsed().as_secs_f64();
    let peak = peak_resident_bytes().map_err(|error| error.to_string())?;
    print_result(&[
        ("workload", workload),
        ("alloc", allocator.to_string()),
        ("seconds", format!("{seconds:.6}")),
        ("peak_rss", peak.to_string()),
        ("checksum", checksum.to_string()),
    ]);
    Ok(())
}
