//! Speed workloads timed in-process by criterion, every allocator in the same invocation, one after
//! the other for each variant: c (churn), d (mixed) and e (locality). Allocators are called through
//! `GlobalAlloc` directly, so one binary measures them all. `cargo xtask bench` runs it once per
//! repetition, each time with the allocators in another order (see [`ROTATION_VARIABLE`]), reads the
//! estimates criterion writes under `target/criterion/` and reports their medians.

use std::hint::black_box;

use classalloc_benches::workloads::churn::Churn;
use classalloc_benches::workloads::locality::NoisyList;
use classalloc_benches::workloads::mixed::MixedTable;
use classalloc_benches::{with_allocator, Allocator};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Objects per churn round.
const CHURN_OBJECTS: usize = 10_000;
/// Slots of the mixed workload's table.
const MIXED_SLOTS: usize = 100_000;
/// Replacements per timed mixed iteration.
const MIXED_STEPS: usize = 1_000;
/// Nodes of the locality workload's list.
const LOCALITY_NODES: usize = 100_000;

/// Every allocator but classalloc's size-only adapter: these workloads are Rust `Layout` users.
const SPEED_ALLOCATORS: &[Allocator] = &[
    Allocator::Classalloc,
    Allocator::System,
    Allocator::Mimalloc,
    Allocator::Jemalloc,
    Allocator::Snmalloc,
    Allocator::Rpmalloc,
];

/// The environment variable that rotates the order in which the allocators are measured: with `k`, the
/// `k`-th allocator (wrapping) comes first. Unset means 0. Each allocator then takes its turn right
/// after a different one (whose leftover state and heat it inherits) and at a different time of the
/// process's life.
const ROTATION_VARIABLE: &str = "CLASSALLOC_SPEED_ROTATION";

/// [`SPEED_ALLOCATORS`] in the order this process measures them (see [`ROTATION_VARIABLE`]).
fn allocators_in_turn() -> Vec<Allocator> {
    let rotation = match std::env::var(ROTATION_VARIABLE) {
        Ok(text) => text
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("{ROTATION_VARIABLE} must be a number, not `{text}`")),
        Err(_) => 0,
    };
    let mut allocators = SPEED_ALLOCATORS.to_vec();
    allocators.rotate_left(rotation % SPEED_ALLOCATORS.len());
    allocators
}

fn churn(c: &mut Criterion, allocators: &[Allocator]) {
    let mut group = c.benchmark_group("churn");
    for size in [16usize, 64, 256] {
        for &allocator in allocators {
            let mut churn = Churn::new(size, CHURN_OBJECTS);
            group.throughput(Throughput::Elements(churn.objects_per_round()));
            group.bench_function(
                BenchmarkId::new(allocator.name(), size),
                |b| with_allocator!(allocator, alloc => b.iter(|| churn.round(alloc))),
            );
        }
    }
    group.finish();
}

fn mixed(c: &mut Criterion, allocators: &[Allocator]) {
    let mut group = c.benchmark_group("mixed");
    group.throughput(Throughput::Elements(MIXED_STEPS as u64));
    for &allocator in allocators {
        group.bench_function(BenchmarkId::new(allocator.name(), "8-512 B"), |b| {
            with_allocator!(allocator, alloc => {
                let mut table = MixedTable::new(alloc, MIXED_SLOTS, 99);
                b.iter(|| table.replace(MIXED_STEPS));
            })
        });
    }
    group.finish();
}

fn locality(c: &mut Criterion, allocators: &[Allocator]) {
    let mut group = c.benchmark_group("locality");
    group.throughput(Throughput::Elements(LOCALITY_NODES as u64));
    for &allocator in allocators {
        group.bench_function(BenchmarkId::new(allocator.name(), "16 B nodes"), |b| {
            with_allocator!(allocator, alloc => {
                let list = NoisyList::build(alloc, LOCALITY_NODES, 1234);
                b.iter(|| black_box(list.walk()));
            })
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let allocators = allocators_in_turn();
    churn(&mut criterion, &allocators);
    mixed(&mut criterion, &allocators);
    locality(&mut criterion, &allocators);
    criterion.final_summary();
}
