//! `cargo xtask fuzz --seconds N [target...]`: the cargo-fuzz targets in `fuzz/` (see docs/fuzzing.md), each run
//! for N seconds under libFuzzer with AddressSanitizer, then a line per target: duration, executions, corpus size
//! and findings (new crash, leak, timeout or out-of-memory artifacts under `fuzz/artifacts/<target>/`).
//!
//! Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when
//! `cargo fuzz` is missing. The fuzz crate is a workspace of its own, built into `fuzz/target` (git-ignored).

use crate::{run, workspace_root, TaskResult};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every fuzz target, in the order they run.
pub const TARGETS: [&str; 2] = ["facade", "buddy"];

/// Seconds per target in `cargo xtask ci`.
pub const CI_SECONDS: u64 = 25;

/// libFuzzer's resident-memory limit per target process. The targets cap their own live bytes (64 MiB in
/// the facade, a 256 KiB region in the buddy); the rest is libFuzzer, its corpus and ASan's quarantine.
const RSS_LIMIT_MB: u32 = 1024;

/// A single input running longer than this is reported as a timeout finding.
const UNIT_TIMEOUT_S: u32 = 60;

/// What one target's run came to.
struct Outcome {
    target: &'static str,
    wall: Duration,
    executions: Option<u64>,
    corpus: usize,
    findings: Vec<PathBuf>,
    exit_ok: bool,
    log: PathBuf,
}

pub fn run_task(args: &[String]) -> TaskResult {
    let (seconds, targets) = parse_args(args)?;
    if !nightly_present() {
        return Err(
            "fuzz: no nightly toolchain (`cargo +nightly --version` fails); install it with \
             `rustup toolchain install nightly`"
                .into(),
        );
    }
    fuzz(seconds, &targets)
}

/// The fuzz step of `cargo xtask ci`: every target for [`CI_SECONDS`], skipped with a message where no
/// nightly toolchain is installed.
pub fn ci_step() -> TaskResult {
    if !nightly_present() {
        eprintln!(
            "xtask: ⏭ fuzz skipped: no nightly toolchain (`cargo +nightly --version` fails); \
             `rustup toolchain install nightly` enables it"
        );
        return Ok(());
    }
    run(
        "cargo fmt --check (fuzz crate)",
        Command::new("cargo").current_dir(workspace_root()).args([
            "fmt",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--",
            "--check",
        ]),
    )?;
    fuzz(CI_SECONDS, &TARGETS)
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<&'static str>), String> {
    let usage = "usage: cargo xtask fuzz --seconds N [facade|buddy ...]";
    let mut seconds = None;
    let mut targets = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = if arg == "--seconds" {
            Some(
                rest.next()
                    .map(String::as_str)
                    .ok_or_else(|| format!("--seconds needs a value; {usage}"))?,
            )
        } else {
            arg.strip_prefix("--seconds=")
        };
        if let Some(value) = value {
            let parsed: u64 = value
                .parse()
                .map_err(|_| format!("--seconds: `{value}` is not a whole number; {usage}"))?;
            if parsed == 0 {
                return Err(format!("--seconds must be at least 1; {usage}"));
            }
            seconds = Some(parsed);
        } else if let Some(&target) = TARGETS.iter().find(|&&t| t == arg) {
            targets.push(target);
        } else {
            return Err(format!("unknown fuzz argument or target `{arg}`; {usage}"));
        }
    }
    let seconds = seconds.ok_or_else(|| format!("--seconds is required; {usage}"))?;
    if targets.is_empty() {
        targets.extend(TARGETS);
    }
    Ok((seconds, targets))
}

/// `cargo` through rustup's proxy, so that `+nightly` works, without the stable toolchain's environment that
/// `cargo xtask` runs in (a `RUSTUP_TOOLCHAIN` or `CARGO` pointing at stable would override `+nightly` in the
/// tools cargo-fuzz starts).
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .arg("+nightly");
    command
}

fn quiet_success(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn nightly_present() -> bool {
    quiet_success(nightly_cargo().arg("--version"))
}

fn fuzz(seconds: u64, targets: &[&'static str]) -> TaskResult {
    let root = workspace_root();
    let started = Instant::now();
    if !quiet_success(nightly_cargo().args(["fuzz", "--version"])) {
        let install = Instant::now();
        run(
            "cargo install cargo-fuzz --locked",
            Command::new("cargo")
                .current_dir(&root)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .args(["install", "cargo-fuzz", "--locked"]),
        )?;
        eprintln!(
            "xtask: cargo-fuzz installed in {:.0} s",
            install.elapsed().as_secs_f64()
        );
    }
    let build = Instant::now();
    let mut build_command = fuzz_command("build");
    if let [only] = targets {
        build_command.arg(only);
    }
    run(
        "cargo +nightly fuzz build (ASan, debug assertions)",
        &mut build_command,
    )?;
    eprintln!(
        "xtask: fuzz targets built in {:.0} s",
        build.elapsed().as_secs_f64()
    );
    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|&target| fuzz_target(&root, target, seconds))
        .collect::<Result<_, _>>()?;
    print_summary(&outcomes, started.elapsed());
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.findings.is_empty() || !o.exit_ok)
        .map(|o| {
            let findings: Vec<String> =
                o.findings.iter().map(|f| f.display().to_string()).collect();
            format!(
                "{}: exit {}, findings [{}], log {}",
                o.target,
                if o.exit_ok { "ok" } else { "failed" },
                findings.join(", "),
                o.log.display()
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: findings (reproduce with `cargo +nightly fuzz run <target> <artifact>`):\n  {}",
            failed.join("\n  ")
        ))
    }
}

/// `cargo +nightly fuzz <subcommand>` with the flags every build and run shares.
fn fuzz_command(subcommand: &str) -> Command {
    let mut command = nightly_cargo();
    command.args(["fuzz", subcommand]);
    // The buddy poisons its free blocks for ASan under this cfg: a block handed out while still poisoned, or a
    // model that touches a freed block, is reported at once.
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.split_whitespace().any(|f| f == "classalloc_asan") {
        rustflags.push_str(" --cfg classalloc_asan");
    }
    command.env("RUSTFLAGS", rustflags.trim());
    command
}

fn fuzz_target(root: &Path, target: &'static str, seconds: u64) -> Result<Outcome, String> {
    let artifacts = root.join("fuzz").join("artifacts").join(target);
    let before = list_files(&artifacts);
    let logs = root.join("fuzz").join("target").join("xtask-logs");
    fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    let log = logs.join(format!("{target}.log"));
    let log_file =
        fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let stdout = log_file
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    eprintln!(
        "xtask: ▶ fuzz {target} for {seconds} s (log: {})",
        log.display()
    );
    let start = Instant::now();
    let status = fuzz_command("run")
        .arg(target)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={UNIT_TIMEOUT_S}"))
        .arg("-print_final_stats=1")
        // A smaller quarantine than ASan's 256 MiB keeps the process well under the RSS limit.
        .env("ASAN_OPTIONS", asan_options())
        .stdout(stdout)
        .stderr(log_file)
        .status()
        .map_err(|e| format!("fuzz {target}: could not start: {e}"))?;
    let wall = start.elapsed();
    let text = fs::read_to_string(&log).unwrap_or_default();
    let findings: Vec<PathBuf> = list_files(&artifacts)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if !status.success() || !findings.is_empty() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("xtask: fuzz {target}: the log's last lines:");
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
    }
    Ok(Outcome {
        target,
        wall,
        executions: executions(&text),
        corpus: list_files(&root.join("fuzz").join("corpus").join(target)).len(),
        findings,
        exit_ok: status.success(),
        log,
    })
}

/// The caller's `ASAN_OPTIONS` (which win), after a quarantine smaller than ASan's default 256 MiB.
fn asan_options() -> String {
    match std::env::var("ASAN_OPTIONS") {
        Ok(theirs) if !theirs.is_empty() => format!("quarantine_size_mb=64:{theirs}"),
        _ => "quarantine_size_mb=64".into(),
    }
}

/// The number of inputs run, from libFuzzer's final statistics (`-print_final_stats=1`), else from its
/// `Done N runs` line, else from the last `#N` status line.
fn executions(log: &str) -> Option<u64> {
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let stat = log.lines().rev().find_map(|line| {
        line.strip_prefix("stat::number_of_executed_units:")
            .and_then(parse)
    });
    let done = || {
        log.lines().rev().find_map(|line| {
            line.strip_prefix("Done ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(parse)
        })
    };
    let status = || {
        log.lines().rev().find_map(|line| {
            line.strip_prefix('#')
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(parse)
        })
    };
    stat.or_else(done).or_else(status)
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn print_summary(outcomes: &[Outcome], total: Duration) {
    println!(
        "\nfuzz summary (ASan, RSS limit {RSS_LIMIT_MB} MiB; total with build {:.0} s)",
        total.as_secs_f64()
    );
    println!(
        "{:<8} {:>9} {:>12} {:>9} {:>8}  findings",
        "target", "seconds", "executions", "exec/s", "corpus"
    );
    for outcome in outcomes {
        let seconds = outcome.wall.as_secs_f64();
        let (executions, rate) = match outcome.executions {
            Some(n) => (
                n.to_string(),
                format!("{:.0}", n as f64 / seconds.max(1e-9)),
            ),
            None => ("?".into(), "?".into()),
        };
        let findings = match (&outcome.findings[..], outcome.exit_ok) {
            ([], true) => "none".to_string(),
            ([], false) => format!("the run failed (see {})", outcome.log.display()),
            (files, _) => files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!(
            "{:<8} {:>9.1} {:>12} {:>9} {:>8}  {findings}",
            outcome.target, seconds, executions, rate, outcome.corpus
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_prefers_final_stats() {
        let log = "#1000\tNEW cov: 1\n#2048\tpulse  cov: 2\nDone 2100 runs in 2 second(s)\n\
                   stat::number_of_executed_units: 2101\nstat::average_exec_per_sec:     1050\n";
        assert_eq!(executions(log), Some(2101));
        assert_eq!(
            executions("#5\tINITED\nDone 77 runs in 1 second(s)\n"),
            Some(77)
        );
        assert_eq!(
            executions("#5\tINITED cov: 3\n#9\tNEW cov: 4\n==1== ERROR\n"),
            Some(9)
        );
        assert_eq!(executions("no libFuzzer output"), None);
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&args(&["--seconds", "60"])),
            Ok((60, TARGETS.to_vec()))
        );
        assert_eq!(
            parse_args(&args(&["buddy", "--seconds=5"])),
            Ok((5, vec!["buddy"]))
        );
        assert!(parse_args(&args(&["buddy"])).is_err());
        assert!(parse_args(&args(&["--seconds", "0"])).is_err());
        assert!(parse_args(&args(&["--seconds", "5", "slab"])).is_err());
    }
}
