//! classalloc's project tasks, run as `cargo xtask <task>` (see `cargo xtask help`).
//!
//! The tasks are sequences of cargo invocations written with std alone; only the benchmark report pulls in
//! dependencies (plotters for its charts, serde_json for criterion's estimates).

mod bench;
mod fuzz;
mod stress;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <task>

tasks:
  ci      fmt check, clippy -D warnings, all tests and doc tests, a short loom run
  loom    the loom models of the lock interactions (LOOM_MAX_PREEMPTIONS defaults to 2)
  asan    the test suite under AddressSanitizer (nightly-free: RUSTC_BOOTSTRAP on stable)
  bench   the benchmark suite and report, target/bench-report/report.md (--quick: smoke test)
  stress  the multi-thread stress tests in release for about N minutes (--minutes N, default 1; --scale S)
  fuzz    --seconds N [facade|buddy]: the cargo-fuzz targets, N s each (nightly; ci runs 25 s each)
  help    this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "ci" => ci(),
        "loom" => loom(rest),
        "asan" => asan(rest),
        "bench" => bench::run(rest),
        "stress" => stress::run(rest),
        "fuzz" => fuzz::run_task(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type TaskResult = Result<(), String>;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(step: &str, command: &mut Command) -> TaskResult {
    eprintln!("xtask: ▶ {step}");
    let status = command
        .status()
        .map_err(|error| format!("{step}: could not start: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step}: failed with {status}"))
    }
}

fn ci() -> TaskResult {
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "cargo test (unit, integration, doc)",
        cargo().args(["test", "--workspace"]),
    )?;
    loom(&[])?;
    fuzz::ci_step()?;
    bench::run(&["--quick".into()])
}

/// Loom builds everything with `--cfg loom`, so it gets a target directory of its own and does not
/// invalidate the normal build.
fn loom(extra: &[String]) -> TaskResult {
    let target = workspace_root().join("target").join("loom");
    let mut command = cargo();
    command
        .args(["test", "--release", "--test", "loom"])
        .args(package_selection(extra))
        .arg("--target-dir")
        .arg(&target)
        .args(extra)
        .env("RUSTFLAGS", "--cfg loom")
        .env(
            "LOOM_MAX_PREEMPTIONS",
            std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()),
        );
    run("loom models", &mut command)
}

/// `--workspace` unless the caller chose packages (`-p NAME` / `--package NAME`).
fn package_selection(extra: &[String]) -> Option<&'static str> {
    let chosen = extra
        .iter()
        .any(|arg| arg == "-p" || arg.starts_with("--package") || arg.starts_with("-p"));
    (!chosen).then_some("--workspace")
}

fn asan(extra: &[String]) -> TaskResult {
    let target = workspace_root().join("target").join("asan");
    let mut command = cargo();
    command
        .args(["test", "--target", "x86_64-unknown-linux-gnu"])
        .args(package_selection(extra))
        .arg("--target-dir")
        .arg(&target)
        .args(extra)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-Zsanitizer=address --cfg classalloc_asan")
        .env("RUSTDOCFLAGS", "-Zsanitizer=address --cfg classalloc_asan")
        .env("ASAN_OPTIONS", "detect_leaks=0");
    run("tests under AddressSanitizer", &mut command)
}
