//! One measurement of one allocator in a fresh process: `probe --alloc NAME --workload NAME ...`.
//! Prints one `RESULT key=value ...` line. Driven by `cargo xtask bench`. `probe --list` prints the
//! names of the allocators it knows, one per line.

use std::process::ExitCode;

use classalloc_benches::cli::{print_result, Args};
use classalloc_benches::workloads::larson::LarsonConfig;
use classalloc_benches::workloads::mstress::MstressConfig;
use classalloc_benches::workloads::{larson, mstress, ratio, seed, xmalloc};
use classalloc_benches::{with_allocator, Allocator};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("probe: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    if std::env::args().nth(1).as_deref() == Some("--list") {
        for allocator in Allocator::ALL {
            println!("{}", allocator.name());
        }
        return Ok(());
    }
    let args = Args::from_env()?;
    let name: String = args.required("alloc")?;
    let allocator =
        Allocator::from_name(&name).ok_or_else(|| format!("unknown allocator `{name}`"))?;
    let workload: String = args.required("workload")?;
    let mut fields = vec![("workload", workload.clone()), ("alloc", name)];
    match workload.as_str() {
        "ratio" => {
            let size: usize = args.required("size")?;
            let live_bytes: u64 = args.optional("live-bytes", 64 << 20)?;
            let measured = with_allocator!(allocator, alloc => ratio::run(alloc, size, live_bytes))
                .map_err(|error| error.to_string())?;
            fields.extend([
                ("size", size.to_string()),
                ("objects", measured.objects.to_string()),
                ("requested", measured.requested_bytes.to_string()),
                ("growth", measured.resident_growth.to_string()),
                ("ratio", format!("{:.7}", measured.ratio())),
            ]);
        }
        "seed" => {
            let size: usize = args.required("size")?;
            let count: usize = args.required("count")?;
            let nanos = with_allocator!(allocator, alloc => seed::run(alloc, size, count, 42));
            fields.push(("size", size.to_string()));
            for (phase, value) in nanos.iter().enumerate() {
                fields.push((PHASE_KEYS[phase], format!("{value:.3}")));
            }
            fields.push(("total", format!("{:.3}", nanos.iter().sum::<f64>())));
        }
        "larson" | "xmalloc" | "mstress" => {
            let threads: usize = args.required("threads")?;
            let scale: f64 = args.optional("scale", 1.0)?;
            let scaled = |full: f64| ((full * scale) as usize).max(1);
            let (operations, seconds) = match workload.as_str() {
                "larson" => {
                    let config = LarsonConfig {
                        threads,
                        slots: 1000,
                        epochs: 10,
                        steps_per_epoch: scaled(1_000_000.0),
                    };
                    with_allocator!(allocator, alloc => larson::run(alloc, config))
                }
                "xmalloc" => {
                    with_allocator!(allocator, alloc => xmalloc::run(alloc, threads, scaled(40_000.0)))
                }
                _ => {
                    let config = MstressConfig {
                        threads,
                        rounds: 10,
                        steps: scaled(300_000.0),
                    };
                    with_allocator!(allocator, alloc => mstress::run(alloc, config))
                }
            };
            fields.extend([
                ("threads", threads.to_string()),
                ("ops", operations.to_string()),
                ("seconds", format!("{seconds:.6}")),
                ("mops", format!("{:.4}", operations as f64 / seconds / 1e6)),
            ]);
        }
        other => return Err(format!("unknown workload `{other}`")),
    }
    print_result(&fields);
    Ok(())
}

/// Result keys of the seed benchmark's nine phases (see `seed::PHASES`).
const PHASE_KEYS: [&str; 9] = [
    "alloc1",
    "free_in_order",
    "alloc2",
    "free_random",
    "alloc3",
    "free_reverse",
    "alloc4",
    "walk",
    "free",
];
