//! Workload g (real Rust work) with mimalloc as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("mimalloc")
}
