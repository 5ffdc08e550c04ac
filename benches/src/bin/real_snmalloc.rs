//! Workload g (real Rust work) with snmalloc as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("snmalloc")
}
