//! Workload g (real Rust work) with system as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("system")
}
