//! Speed workloads timed in-process by criterion, every allocator in the same invocation, one after
//! the other for each variant: c (churn), d (mixed) and e (locality). Allocators are called through
//! `GlobalAlloc` directly, so one binary measures them all. `cargo xtask bench` reads the estimates
//! criterion writes under `target/criterion/` and puts them in the report.

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

fn churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn");
    for size in [16usize, 64, 256] {
        for &allocator in SPEED_ALLOCATORS {
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

fn mixed(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixed");
    group.throughput(Throughput::Elements(MIXED_STEPS as u64));
    for &allocator in SPEED_ALLOCATORS {
        group.bench_function(BenchmarkId::new(allocator.name(), "8-512 B"), |b| {
            with_allocator!(allocator, alloc => {
                let mut table = MixedTable::new(alloc, MIXED_SLOTS, 99);
                b.iter(|| table.replace(MIXED_STEPS));
            })
        });
    }
    group.finish();
}

fn locality(c: &mut Criterion) {
    let mut group = c.benchmark_group("locality");
    group.throughput(Throughput::Elements(LOCALITY_NODES as u64));
    for &allocator in SPEED_ALLOCATORS {
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
    churn(&mut criterion);
    mixed(&mut criterion);
    locality(&mut criterion);
    criterion.final_summary();
}
