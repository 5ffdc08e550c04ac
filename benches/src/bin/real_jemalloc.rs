//! Workload g (real Rust work) with jemalloc as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("jemalloc")
}
