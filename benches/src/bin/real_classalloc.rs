//! Workload g (real Rust work) with classalloc as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: classalloc::Global = classalloc::Global::new();

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("classalloc")
}
