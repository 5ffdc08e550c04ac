//! `cargo xtask bench`: the benchmark suite and its report (see `docs/benchmarks.md`).
//!
//! Memory figures and the seed, multi-thread and real-work timings come from fresh processes, one
//! allocator per process (`probe`, `real_*` from the `classalloc-benches` package), run interleaved:
//! every repetition visits every variant and, within it, every allocator in turn, and the report
//! takes medians. The in-process speed workloads run under criterion, every allocator in the same
//! invocation, one invocation per repetition with the allocators in a different order each time, and the
//! report takes the medians of criterion's medians. Everything lands in `target/bench-report/`.

mod charts;
mod criterion_results;
mod table;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use charts::Axis;
use table::{Better, Table};

use crate::{cargo, run as run_step, workspace_root, TaskResult};

const USAGE: &str = "\
cargo xtask bench [--quick] [--only GROUPS]

  --quick        small sizes, one repetition, short criterion runs (the CI smoke test, < 5 min)
  --only GROUPS  comma-separated subset of: ratio, seed, speed, threads, real, lifetimes

Writes target/bench-report/report.md, SVG charts beside it, and criterion's HTML under
target/criterion/report/.
";

/// The workload groups, in the order they run.
const GROUPS: [&str; 6] = ["ratio", "seed", "speed", "threads", "real", "lifetimes"];

/// Sizes of the memory-ratio table: powers of two, and sizes that are not.
const RATIO_SIZES: [usize; 18] = [
    1, 2, 4, 8, 16, 24, 32, 48, 64, 100, 128, 256, 512, 1024, 2048, 3000, 4096, 8192,
];

/// Seed 001's published resident bytes per requested byte, per power-of-two size.
const SEED_RATIOS: [(usize, &str); 14] = [
    (1, "1.024"),
    (2, "1.00023"),
    (4, "1.000034"),
    (8, "1.000038"),
    (16, "1.0000458"),
    (32, "1.00006"),
    (64, "1.00006"),
    (128, "1.0001"),
    (256, "1.00024"),
    (512, "1.0005"),
    (1024, "1.001"),
    (2048, "1.002"),
    (4096, "1.004"),
    (8192, "1.008"),
];

/// The seed benchmark's phases, as the probe names them, and as the report prints them.
const SEED_PHASES: [(&str, &str); 9] = [
    ("alloc1", "allocate"),
    ("free_in_order", "free in order"),
    ("alloc2", "allocate"),
    ("free_random", "free in random order"),
    ("alloc3", "allocate"),
    ("free_reverse", "free in reverse"),
    ("alloc4", "allocate"),
    ("walk", "walk writing one byte"),
    ("free", "free"),
];

/// How much work a run does.
struct Profile {
    name: &'static str,
    /// The cargo profile the binaries are built with, and the folder of `target/` they land in.
    cargo_profile: &'static str,
    cargo_folder: &'static str,
    /// Repetitions of every process-per-allocator measurement.
    repetitions: usize,
    /// Repetitions of the multi-thread workloads instead: with more threads than this machine's two
    /// CPUs, each process's throughput depends on where the scheduler puts producer and consumer (at
    /// two threads xmalloc reads 40-50 or 80-145 M ops/s per process, for classalloc and mimalloc
    /// alike), so a median of three processes is decided by a coin toss. Each process takes well under a
    /// second.
    thread_repetitions: usize,
    /// Live bytes of the memory-ratio workload.
    live_bytes: u64,
    /// Bytes per size of the seed benchmark (count = bytes / size, at most `seed_max_count`).
    seed_bytes: usize,
    seed_max_count: usize,
    /// Work multiplier of the multi-thread and real-work workloads.
    threads_scale: f64,
    real_scale: f64,
    /// Long-lived objects of the mixed-lifetime workload.
    lifetimes_long: usize,
    /// Arguments to criterion.
    criterion: &'static [&'static str],
}

const FULL: Profile = Profile {
    name: "full",
    cargo_profile: "release",
    cargo_folder: "release",
    repetitions: 3,
    thread_repetitions: 9,
    live_bytes: 64 << 20,
    seed_bytes: 64 << 20,
    seed_max_count: 1_000_000,
    threads_scale: 1.0,
    real_scale: 1.0,
    lifetimes_long: 1_000_000,
    criterion: &["--warm-up-time", "1", "--measurement-time", "3"],
};

/// The smoke test checks that everything runs, not how fast: it builds with the dev profile, which
/// `cargo xtask ci` has already built for the tests (a cold release build of the peers alone takes
/// over five minutes on two cores), and runs with debug assertions on.
const QUICK: Profile = Profile {
    name: "quick",
    cargo_profile: "dev",
    cargo_folder: "debug",
    repetitions: 1,
    thread_repetitions: 1,
    live_bytes: 8 << 20,
    seed_bytes: 8 << 20,
    seed_max_count: 100_000,
    threads_scale: 0.05,
    real_scale: 0.05,
    lifetimes_long: 100_000,
    criterion: &[
        "--warm-up-time",
        "0.2",
        "--measurement-time",
        "0.4",
        "--sample-size",
        "10",
        // Criterion's plots and 100,000 bootstrap resamples cost more than the measurements here.
        "--noplot",
        "--nresamples",
        "1000",
    ],
};

/// Runs the suite with `args` (see [`USAGE`]).
pub fn run(args: &[String]) -> TaskResult {
    let mut profile = &FULL;
    let mut groups: Vec<String> = GROUPS.iter().map(|g| g.to_string()).collect();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => profile = &QUICK,
            "--only" => {
                let list = args.next().ok_or("--only needs a list")?;
                groups = list.split(',').map(str::to_string).collect();
                if let Some(unknown) = groups.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!("unknown group `{unknown}`\n\n{USAGE}"));
                }
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    let wants = |group: &str| groups.iter().any(|g| g == group);
    let started = Instant::now();
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = target.join("bench-report");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    build_bins(
        &format!("build the benchmark binaries ({})", profile.cargo_profile),
        profile,
    )?;
    let mut runner = Runner::new(target.join(profile.cargo_folder));
    let allocators = runner.allocators()?;
    // The seed's size-only API is measured where the seed measured itself (memory, its own
    // benchmark); everywhere else classalloc means its `Layout` API, as Rust programs use it.
    let layout_allocators: Vec<String> = allocators
        .iter()
        .filter(|name| !name.ends_with("-sized"))
        .cloned()
        .collect();

    let mut report = Report::default();
    let mut criterion_last = Vec::new();
    if wants("ratio") {
        report
            .tables
            .push(memory_ratio(&mut runner, profile, &allocators));
    }
    if wants("seed") {
        report
            .tables
            .extend(seed(&mut runner, profile, &allocators));
    }
    if wants("speed") {
        let (tables, notes) = speed(&root, &target, profile, &layout_allocators)?;
        // c, d, e here; other criterion groups (h, the buddy's) after every other workload.
        let (in_order, last): (Vec<Table>, Vec<Table>) = tables
            .into_iter()
            .partition(|t| ["churn", "mixed", "locality"].contains(&t.id.as_str()));
        report.tables.extend(in_order);
        criterion_last = last;
        report.notes.extend(notes);
    }
    if wants("threads") {
        report
            .tables
            .extend(threads(&mut runner, profile, &layout_allocators));
    }
    if wants("real") {
        report
            .tables
            .extend(real(&mut runner, profile, &layout_allocators));
    }
    if wants("lifetimes") {
        report
            .tables
            .push(lifetimes(&mut runner, profile, &allocators));
    }
    report.tables.extend(criterion_last);
    report.peer_crashes = runner.peer_crashes.clone();
    report.write(&out, profile, &groups, started.elapsed().as_secs_f64())?;
    eprintln!(
        "xtask: bench report written to {} ({:.0} s)",
        out.join("report.md").display(),
        started.elapsed().as_secs_f64()
    );
    match runner.failures {
        0 => Ok(()),
        n => Err(format!("{n} measurement(s) failed; see the report")),
    }
}

/// Runs the measuring binaries and shows progress.
struct Runner {
    binaries: PathBuf,
    workload: String,
    done: usize,
    total: usize,
    interactive: bool,
    /// Failed runs that fail the task: any run of classalloc, and any run of a peer that did not
    /// die of a signal (a harness error).
    failures: usize,
    /// Peer runs killed by a signal: a crash inside that peer, reported but not fatal, so that a
    /// peer's own bug does not make the smoke test flaky.
    peer_crashes: Vec<String>,
}

/// The `RESULT` line of one run, as key/value pairs, plus the process's wall time.
struct Measured {
    fields: BTreeMap<String, String>,
    wall_seconds: f64,
}

impl Measured {
    fn number(&self, key: &str) -> Result<f64, String> {
        self.fields
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no numeric `{key}` in the result"))
    }
}

impl Runner {
    fn new(binaries: PathBuf) -> Self {
        Self {
            binaries,
            workload: String::new(),
            done: 0,
            total: 0,
            interactive: std::io::stderr().is_terminal(),
            failures: 0,
            peer_crashes: Vec::new(),
        }
    }

    /// The allocators the probe knows, in report order.
    fn allocators(&self) -> Result<Vec<String>, String> {
        let output = Command::new(self.binaries.join("probe"))
            .arg("--list")
            .output()
            .map_err(|e| format!("probe --list: {e}"))?;
        if !output.status.success() {
            return Err(format!("probe --list failed: {}", output.status));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    fn start(&mut self, workload: &str, total: usize) {
        self.workload = workload.into();
        self.done = 0;
        self.total = total;
    }

    /// Runs `binary args`, showing `workload, allocator, n of m`.
    fn measure(
        &mut self,
        binary: &str,
        allocator: &str,
        variant: &str,
        args: &[String],
    ) -> Result<Measured, String> {
        self.done += 1;
        let progress = format!(
            "bench: {} {variant}, {allocator} ({} of {})",
            self.workload, self.done, self.total
        );
        if self.interactive {
            eprint!("\r\x1b[2K{progress}");
            if self.done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("{progress}");
        }
        let start = Instant::now();
        let output = Command::new(self.binaries.join(binary))
            .args(args)
            .output()
            .map_err(|e| format!("{binary}: {e}"));
        let wall_seconds = start.elapsed().as_secs_f64();
        let mut crashed = false;
        let result = output.and_then(|output| {
            crashed = output.status.signal().is_some();
            if !output.status.success() {
                return Err(format!(
                    "{binary} {} exited with {}: {}",
                    args.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .ok_or_else(|| format!("{binary} printed no RESULT line"))?;
            let fields = line
                .split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Ok(Measured {
                fields,
                wall_seconds,
            })
        });
        if let Err(message) = &result {
            if self.interactive {
                eprintln!();
            }
            if crashed && !allocator.starts_with("classalloc") {
                eprintln!("bench: peer crashed: {message}");
                self.peer_crashes.push(message.clone());
            } else {
                eprintln!("bench: FAILED: {message}");
                self.failures += 1;
            }
        }
        result
    }
}

/// `n` with commas between groups of three digits, as the report's prose writes numbers.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Records `value` (or the failure) in `table`.
fn record(table: &mut Table, row: &str, column: &str, value: Result<f64, String>) {
    match value {
        Ok(value) => table.add(row, column, value),
        Err(why) => table.fail(row, column, why),
    }
}

/// b: resident bytes per requested byte, per size, one process per (allocator, size, repetition).
fn memory_ratio(runner: &mut Runner, profile: &Profile, allocators: &[String]) -> Table {
    let mut table = Table::new(
        "ratio",
        "b. Memory ratio per size",
        &format!(
            "Resident bytes per requested byte with {} MiB live, each allocator in its own process",
            profile.live_bytes >> 20
        ),
        "size",
        Better::Lower,
    );
    table.decimals = 5;
    table.references.push((
        "seed 001".into(),
        SEED_RATIOS
            .iter()
            .map(|&(size, figure)| (size_label(size), figure.to_string()))
            .collect(),
    ));
    runner.start(
        "ratio",
        profile.repetitions * RATIO_SIZES.len() * allocators.len(),
    );
    for _ in 0..profile.repetitions {
        for size in RATIO_SIZES {
            for allocator in allocators {
                let args = strings(&["--alloc", allocator, "--workload", "ratio"])
                    .into_iter()
                    .chain([
                        "--size".into(),
                        size.to_string(),
                        "--live-bytes".into(),
                        profile.live_bytes.to_string(),
                    ])
                    .collect::<Vec<_>>();
                let label = size_label(size);
                let value = runner
                    .measure("probe", allocator, &label, &args)
                    .and_then(|m| m.number("ratio"));
                record(&mut table, &label, allocator, value);
            }
        }
    }
    table
}

/// a: the seed's benchmark, per power-of-two size; total and per-phase nanoseconds per object.
fn seed(runner: &mut Runner, profile: &Profile, allocators: &[String]) -> Vec<Table> {
    let sizes: Vec<usize> = (0..14).map(|k| 1usize << k).collect();
    let mut total = Table::new(
        "seed",
        "a. The seed's benchmark",
        "Nanoseconds per object for all nine phases together (allocate, free in order, allocate, \
         free in random order, allocate, free in reverse, allocate, walk writing one byte, free)",
        "size",
        Better::Lower,
    );
    total.decimals = 1;
    let phase_size = 16;
    let mut phases = Table::new(
        "seed-phases",
        "a. The seed's benchmark, phase by phase at 16 B",
        "Nanoseconds per object in each phase",
        "phase",
        Better::Lower,
    );
    runner.start("seed", profile.repetitions * sizes.len() * allocators.len());
    for _ in 0..profile.repetitions {
        for &size in &sizes {
            let count = (profile.seed_bytes / size).min(profile.seed_max_count);
            for allocator in allocators {
                let args: Vec<String> = [
                    "--alloc",
                    allocator,
                    "--workload",
                    "seed",
                    "--size",
                    &size.to_string(),
                    "--count",
                    &count.to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let label = size_label(size);
                let measured = runner.measure("probe", allocator, &label, &args);
                let value = measured
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|m| m.number("total"));
                record(&mut total, &label, allocator, value);
                if size == phase_size {
                    for (index, (key, name)) in SEED_PHASES.iter().enumerate() {
                        let row = format!("{}. {name}", index + 1);
                        let value = measured
                            .as_ref()
                            .map_err(Clone::clone)
                            .and_then(|m| m.number(key));
                        record(&mut phases, &row, allocator, value);
                    }
                }
            }
        }
    }
    vec![total, phases]
}

/// Builds the per-process benchmark binaries (`probe`, `real_*`, ...) of `profile`, without features.
fn build_bins(step: &str, profile: &Profile) -> TaskResult {
    run_step(
        step,
        cargo().args([
            "build",
            "--profile",
            profile.cargo_profile,
            "-p",
            "classalloc-benches",
            "--bins",
        ]),
    )
}

/// The variable the speed bench reads to rotate its allocators' order (see `benches/benches/speed.rs`).
const SPEED_ROTATION_VARIABLE: &str = "CLASSALLOC_SPEED_ROTATION";

/// c, d, e (and any other criterion bench in benches/benches, such as h): criterion, every allocator
/// in one invocation; one table per criterion group. The speed bench runs once per repetition, each run
/// with its allocators rotated one place further: a process of its own decides a column's figure less
/// (in one process in about thirty, classalloc's mixed reads 26 to 35 ns instead of 17 to 21, see
/// `docs/benchmarks.md`), and no allocator always follows the same one.
fn speed(
    root: &Path,
    target: &Path,
    profile: &Profile,
    allocators: &[String],
) -> Result<(Vec<Table>, Vec<String>), String> {
    let criterion_dir = target.join("criterion");
    let mut benches = vec!["speed".to_string()];
    let bench_dir = root.join("benches").join("benches");
    let entries =
        std::fs::read_dir(&bench_dir).map_err(|e| format!("{}: {e}", bench_dir.display()))?;
    let mut others: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .filter(|name| name != "speed")
        .collect();
    others.sort();
    benches.extend(others);
    let mut notes = Vec::new();
    let mut results = Vec::new();
    for bench in &benches {
        let runs = if bench == "speed" {
            profile.repetitions
        } else {
            1
        };
        for run in 0..runs {
            let step = format!(
                "criterion: {bench} ({}, run {} of {runs})",
                profile.name,
                run + 1
            );
            eprintln!("xtask: ▶ {step}");
            // Each run's estimates are read before the next: stale ones (an earlier run, other
            // allocators, other code) must not reach the report twice.
            clear_directory(&criterion_dir)?;
            let output = cargo()
                .args(["bench", "--profile", profile.cargo_profile])
                .args(["-p", "classalloc-benches", "--bench", bench, "--"])
                .args(profile.criterion)
                .env(SPEED_ROTATION_VARIABLE, run.to_string())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("{step}: could not start: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            print!("{stdout}");
            if !output.status.success() {
                return Err(format!("{step}: failed with {}", output.status));
            }
            results.extend(criterion_results::read_all(&criterion_dir)?);
            if let Some(extra) = extra_output(&stdout).filter(|_| run == 0) {
                notes.push(format!(
                    "### {bench}: its own summary\n\nPrinted by `cargo bench --bench {bench}` after \
                     criterion's measurements:\n\n```text\n{extra}\n```\n"
                ));
            }
        }
    }
    // Checked mode is compile-time: its cost is measured by the same speed bench built with the feature,
    // classalloc alone, under the name classalloc-checked (beside the other estimates).
    let step = format!("criterion: speed, checked mode ({})", profile.name);
    eprintln!("xtask: ▶ {step}");
    clear_directory(&criterion_dir)?;
    let status = cargo()
        .args(["bench", "--profile", profile.cargo_profile])
        .args(["-p", "classalloc-benches", "--features", "checked"])
        .args(["--bench", "speed", "--"])
        .args(profile.criterion)
        .arg("classalloc-checked")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("{step}: could not start: {e}"))?;
    if !status.success() {
        return Err(format!("{step}: failed with {status}"));
    }
    // `cargo bench` rebuilt the package's binaries with the feature too: the per-process workloads that
    // follow need them without it (a relink; the libraries of both builds are cached).
    build_bins(
        "rebuild the benchmark binaries without checked mode",
        profile,
    )?;
    results.extend(criterion_results::read_all(&criterion_dir)?);
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for result in &results {
        let table = tables.entry(result.group.clone()).or_insert_with(|| {
            let (title, unit) = describe_criterion_group(&result.group);
            let mut table = Table::new(&result.group, &title, &unit, "variant", Better::Lower);
            table.decimals = 2;
            table.columns = allocators.to_vec();
            table
        });
        table.add(&result.value, &result.function, result.ns_per_element());
    }
    let mut tables: Vec<Table> = tables.into_values().collect();
    for table in &mut tables {
        // Rows in numeric order where they are sizes; allocators that did not take part dropped.
        table
            .rows
            .sort_by_key(|row| (row.parse::<u64>().unwrap_or(u64::MAX), row.clone()));
        let present: Vec<String> = table
            .columns
            .iter()
            .filter(|c| table.samples.keys().any(|(_, column)| column == *c))
            .cloned()
            .collect();
        let mut extra: Vec<String> = table
            .samples
            .keys()
            .map(|(_, column)| column.clone())
            .filter(|c| !present.contains(c))
            .collect();
        extra.sort();
        extra.dedup();
        table.columns = present.into_iter().chain(extra).collect();
    }
    let order = |id: &str| {
        ["churn", "mixed", "locality"]
            .iter()
            .position(|g| *g == id)
            .unwrap_or(9)
    };
    tables.sort_by_key(|t| (order(&t.id), t.id.clone()));
    Ok((tables, notes))
}

/// Removes `directory` and everything in it, if it exists.
fn clear_directory(directory: &Path) -> Result<(), String> {
    if directory.exists() {
        std::fs::remove_dir_all(directory).map_err(|e| format!("{}: {e}", directory.display()))?;
    }
    Ok(())
}

/// A summary a bench prints beside criterion's estimates (the buddy bench prints a heap-efficiency
/// table): the lines from the first that starts with "heap efficiency" to the next blank line.
fn extra_output(stdout: &str) -> Option<String> {
    let start = stdout
        .lines()
        .position(|line| line.to_ascii_lowercase().starts_with("heap efficiency"))?;
    let block: Vec<&str> = stdout
        .lines()
        .skip(start)
        .take_while(|line| !line.trim().is_empty())
        .collect();
    Some(block.join("\n"))
}

fn describe_criterion_group(group: &str) -> (String, String) {
    match group {
        "churn" => (
            "c. Churn: allocate N then free N".into(),
            "Nanoseconds per object, its allocation and its free together (10,000 objects of the \
             size per round), criterion median"
                .into(),
        ),
        "mixed" => (
            "d. Mixed sizes, random replacement".into(),
            "Nanoseconds per replacement (free a random slot of a 100,000-slot table, allocate \
             8 to 512 bytes in it), criterion median"
                .into(),
        ),
        "locality" => (
            "e. Locality: walking a list built among noise".into(),
            "Nanoseconds per node to walk a list of 100,000 16-byte nodes, each allocated after \
             one to three short-lived objects of 8 to 256 bytes, criterion median"
                .into(),
        ),
        "buddy_random_actions" => (
            "h. Buddy random actions".into(),
            "Nanoseconds per random action (allocate 1 B to the variant's maximum, or free a random \
             live block) on a 32 MiB heap, criterion median"
                .into(),
        ),
        other => (
            format!("{other} (criterion)"),
            "Nanoseconds per element (per iteration where the bench declares no throughput), \
             criterion median"
                .into(),
        ),
    }
}

/// f: larson, xmalloc-test and mstress at 1, 2 and 4 threads; millions of operations per second.
fn threads(runner: &mut Runner, profile: &Profile, allocators: &[String]) -> Vec<Table> {
    let workloads = [
        (
            "larson",
            "f. larson (objects freed by other threads)",
            "Millions of slot replacements per second, all threads together (sizes 8 to 1000 B; \
             arrays handed to another thread every epoch)",
        ),
        (
            "xmalloc",
            "f. xmalloc-test (producers and consumers)",
            "Millions of objects allocated by producer threads and freed by consumer threads per \
             second; n threads means n producers and n consumers (sizes 16 to 128 B)",
        ),
        (
            "mstress",
            "f. mstress (content checks)",
            "Millions of steps per second, all threads together (allocate with a cookie in every \
             word, check and free, swap through a shared array; threads recreated every round)",
        ),
    ];
    let thread_counts = [1usize, 2, 4];
    let mut tables: Vec<Table> = workloads
        .iter()
        .map(|(id, title, unit)| {
            let mut table = Table::new(id, title, unit, "threads", Better::Higher);
            table.decimals = 2;
            table
        })
        .collect();
    runner.start(
        "threads",
        profile.thread_repetitions * workloads.len() * thread_counts.len() * allocators.len(),
    );
    for _ in 0..profile.thread_repetitions {
        for (table, (workload, _, _)) in tables.iter_mut().zip(workloads) {
            for threads in thread_counts {
                for allocator in allocators {
                    let args = strings(&["--alloc", allocator, "--workload", workload])
                        .into_iter()
                        .chain([
                            "--threads".into(),
                            threads.to_string(),
                            "--scale".into(),
                            profile.threads_scale.to_string(),
                        ])
                        .collect::<Vec<_>>();
                    let row = format!("{threads}");
                    let variant = format!("{workload} {threads} threads");
                    let value = runner
                        .measure("probe", allocator, &variant, &args)
                        .and_then(|m| m.number("mops"));
                    record(table, &row, allocator, value);
                }
            }
        }
    }
    tables
}

/// What the real-work rows do.
const REAL_WORK: &str = "btree: build a `BTreeMap<String, Vec<u8>>` of 500,000 entries (keys 8 to \
    40 bytes, values 0 to 256 bytes), look every key up, drop it; 3 rounds. json: build a \
    `serde_json::Value` of 300,000 records, serialise it, then parse and serialise it 3 times. \
    Each allocator is the process's `#[global_allocator]` (one `real_*` binary per allocator)";

/// g: real Rust work with each allocator as `#[global_allocator]`: whole-process wall time and
/// peak resident set.
fn real(runner: &mut Runner, profile: &Profile, allocators: &[String]) -> Vec<Table> {
    let workloads = ["btree", "json"];
    let mut wall = Table::new(
        "real-time",
        "g. Real Rust work: wall time",
        &format!("Whole-process wall time in seconds. {REAL_WORK}"),
        "workload",
        Better::Lower,
    );
    wall.decimals = 3;
    let mut peak = Table::new(
        "real-memory",
        "g. Real Rust work: peak memory",
        &format!("Peak resident set of the process in MiB (getrusage ru_maxrss). {REAL_WORK}"),
        "workload",
        Better::Lower,
    );
    peak.decimals = 1;
    runner.start(
        "real",
        profile.repetitions * workloads.len() * allocators.len(),
    );
    for _ in 0..profile.repetitions {
        for workload in workloads {
            let row = workload;
            for allocator in allocators {
                let args: Vec<String> = strings(&["--workload", workload])
                    .into_iter()
                    .chain(["--scale".into(), profile.real_scale.to_string()])
                    .collect();
                let binary = format!("real_{allocator}");
                match runner.measure(&binary, allocator, workload, &args) {
                    Ok(measured) => {
                        wall.add(row, allocator, measured.wall_seconds);
                        record(
                            &mut peak,
                            row,
                            allocator,
                            measured
                                .number("peak_rss")
                                .map(|bytes| bytes / f64::from(1 << 20)),
                        );
                    }
                    Err(why) => {
                        wall.fail(row, allocator, why.clone());
                        peak.fail(row, allocator, why);
                    }
                }
            }
        }
    }
    vec![wall, peak]
}

/// g: mixed lifetimes (the lifetime-classes workload), one process per allocator: long-lived objects
/// interleaved with three times as many short-lived ones of the same sizes, then the short-lived ones
/// freed. `classalloc-classes` puts the two lifetimes in two classes of a `ClassAlloc`.
fn lifetimes(runner: &mut Runner, profile: &Profile, allocators: &[String]) -> Table {
    let mut table = Table::new(
        "lifetimes",
        "g. Mixed lifetimes",
        &format!(
            "Resident bytes per requested byte, each allocator in its own process: {} long-lived \
             objects, each followed by 3 short-lived ones, sizes 16 to 256 B, every byte written; \
             \"after\" once the short-lived ones are freed (per long-lived byte), \"peak\" with \
             everything live (per byte of both). `classalloc-classes` gives the two lifetimes two \
             classes of one `ClassAlloc`; every other column mixes them, as allocators without \
             lifetime classes must",
            thousands(profile.lifetimes_long)
        ),
        "when",
        Better::Lower,
    );
    table.decimals = 4;
    let columns: Vec<String> = std::iter::once("classalloc-classes".to_string())
        .chain(allocators.iter().cloned())
        .collect();
    let after = "after: resident / long-lived bytes";
    let peak = "peak: resident / all bytes";
    runner.start("lifetimes", profile.repetitions * columns.len());
    for _ in 0..profile.repetitions {
        for allocator in &columns {
            let args = strings(&["--alloc", allocator, "--long"])
                .into_iter()
                .chain([profile.lifetimes_long.to_string()])
                .collect::<Vec<_>>();
            match runner.measure("lifetimes", allocator, "mixed", &args) {
                Ok(measured) => {
                    record(&mut table, after, allocator, measured.number("ratio_after"));
                    let all_bytes = measured
                        .number("long_bytes")
                        .and_then(|long| Ok(long + measured.number("short_bytes")?));
                    let peak_ratio = measured
                        .number("peak_growth")
                        .and_then(|growth| Ok(growth / all_bytes?));
                    record(&mut table, peak, allocator, peak_ratio);
                }
                Err(why) => {
                    table.fail(after, allocator, why.clone());
                    table.fail(peak, allocator, why);
                }
            }
        }
    }
    table
}

/// The tables of one run and how to write them out.
#[derive(Default)]
struct Report {
    tables: Vec<Table>,
    /// Markdown blocks printed after the tables.
    notes: Vec<String>,
    peer_crashes: Vec<String>,
}

impl Report {
    fn write(&self, out: &Path, profile: &Profile, groups: &[String], seconds: f64) -> TaskResult {
        let mut text = String::new();
        let _ = writeln!(text, "# classalloc benchmark report\n");
        let _ = writeln!(
            text,
            "- Date: {}",
            command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        );
        let _ = writeln!(text, "- Machine: {}", machine());
        let _ = writeln!(
            text,
            "- Commit: {}; {}",
            command_output("git", &["rev-parse", "--short", "HEAD"]),
            command_output("rustc", &["--version"])
        );
        let _ = writeln!(
            text,
            "- Run: `cargo xtask bench{}`{} ({} profile: {} repetition(s) per process measurement \
             and as many criterion processes for the speed workloads (allocators rotated), {} for the \
             multi-thread workloads, medians; cargo profile `{}`{}), {seconds:.0} s",
            if profile.name == "quick" { " --quick" } else { "" },
            if groups.len() < GROUPS.len() {
                format!(" --only {}", groups.join(","))
            } else {
                String::new()
            },
            profile.name,
            profile.repetitions,
            profile.thread_repetitions,
            profile.cargo_profile,
            if profile.cargo_profile == "dev" {
                ": unoptimised, a smoke test whose timings mean nothing"
            } else {
                ""
            },
        );
        let _ = writeln!(
            text,
            "- Charts: the SVG files beside this report; criterion's HTML: \
             `target/criterion/report/index.html`\n"
        );
        for table in &self.tables {
            let _ = writeln!(text, "{}", table.markdown());
            let (axis, label) = match table.id.as_str() {
                "ratio" => (Axis::LogValue, "resident / requested bytes"),
                "seed" => (Axis::LogValue, "ns per object"),
                "seed-phases" | "real-time" | "real-memory" | "lifetimes" => continue,
                id if table.better == Better::Higher || id.is_empty() => {
                    (Axis::LinearValue, "million operations per second")
                }
                _ => (Axis::ThroughputFromNanos, "million operations per second"),
            };
            let file = format!("{}.svg", table.id);
            charts::draw(table, axis, label, &out.join(&file))?;
            let _ = writeln!(text, "![{}]({file})\n", table.title);
        }
        for note in &self.notes {
            let _ = writeln!(text, "{note}");
        }
        if !self.peer_crashes.is_empty() {
            let _ = writeln!(
                text,
                "### Peer crashes\n\nRuns in which a peer allocator died of a signal; their cells \
                 show the median of the runs that completed, or `failed`.\n"
            );
            for crash in &self.peer_crashes {
                let _ = writeln!(text, "- `{crash}`");
            }
            let _ = writeln!(text);
        }
        let ids: Vec<&str> = self.tables.iter().map(|t| t.id.as_str()).collect();

        if !ids.iter().any(|id| id.contains("buddy")) && groups.iter().any(|g| g == "speed") {
            let _ = writeln!(text, "### Not yet measurable\n");
            let _ = writeln!(
                text,
                "- h. Buddy random actions against buddy_system_allocator and talc: needs issue 3 (the buddy crate)."
            );
        }
        let path = out.join("report.md");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| format!("({program} unavailable)"))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| format!(", {} GiB RAM", kib >> 20));
    format!(
        "{cpus} CPUs ({model}){memory}, {}",
        command_output("uname", &["-sr"])
    )
}
