//! `cargo xtask stress [--minutes N] [--scale S]`: the multi-thread stress tests (`crates/facade/tests/
//! stress_global.rs` and `stress_classes.rs`, the same tests `cargo test` runs briefly) in a release build,
//! for about N minutes in all (default 1): each of the six configurations (two global allocators, 2, 4
//! and 8 threads) runs rounds for N * 60 / 6 seconds. The build is not counted. The tests print one line per
//! configuration (threads, rounds, operations, duration, findings); they are repeated in a summary at the
//! end.

use crate::{cargo, TaskResult};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// The stress test binaries, and the configurations each runs (2, 4 and 8 threads).
const TESTS: [&str; 2] = ["stress_global", "stress_classes"];
const CONFIGURATIONS: u32 = 3 * TESTS.len() as u32;
/// Objects per thread and round in release builds: rounds of about a tenth of a second, so threads are
/// recreated often.
const DEFAULT_SCALE: u32 = 500;

/// The value after `flag`, parsed, or `default` when the flag is absent.
fn option<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> Result<T, String> {
    match args.iter().position(|arg| arg == flag) {
        None => Ok(default),
        Some(index) => args
            .get(index + 1)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("stress: {flag} needs a positive number")),
    }
}

pub fn run(args: &[String]) -> TaskResult {
    // Flags and their values come in pairs.
    for pair in args.chunks(2) {
        if !["--minutes", "--scale"].contains(&pair[0].as_str()) {
            return Err(format!(
                "stress: unknown argument `{}` (--minutes N, --scale S)",
                pair[0]
            ));
        }
    }
    let minutes: f64 = option(args, "--minutes", 1.0)?;
    let scale: u32 = option(args, "--scale", DEFAULT_SCALE)?;
    if minutes.is_nan() || minutes <= 0.0 || scale == 0 {
        return Err("stress: --minutes and --scale must be positive".into());
    }
    let seconds = minutes * 60.0 / f64::from(CONFIGURATIONS);
    eprintln!(
        "xtask: ▶ stress: {CONFIGURATIONS} configurations x {seconds:.1} s, scale {scale} (release build)"
    );
    let mut command = cargo();
    command.args(["test", "--release", "-p", "classalloc"]);
    for test in TESTS {
        command.args(["--test", test]);
    }
    command
        .args(["--", "--nocapture", "--test-threads=1"])
        .env("CLASSALLOC_STRESS_SECONDS", format!("{seconds}"))
        .env("CLASSALLOC_STRESS_SCALE", scale.to_string())
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("stress: could not start cargo: {error}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut summaries = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|error| format!("stress: reading the tests' output: {error}"))?;
        println!("{line}");
        // The first configuration's line follows libtest's "test <name> ... " on the same line.
        if let Some(start) = line.find("stress: ") {
            summaries.push(line[start..].to_string());
        }
    }
    let status = child
        .wait()
        .map_err(|error| format!("stress: waiting for cargo: {error}"))?;
    println!(
        "\nstress summary ({} of {CONFIGURATIONS} configurations):",
        summaries.len()
    );
    for summary in &summaries {
        println!("  {summary}");
    }
    if !status.success() {
        return Err(format!("stress: the tests failed ({status})"));
    }
    if summaries.len() != CONFIGURATIONS as usize {
        return Err(format!(
            "stress: {} summary lines, expected {CONFIGURATIONS}",
            summaries.len()
        ));
    }
    Ok(())
}
