//! Workload g (real Rust work) with rpmalloc as the `#[global_allocator]`.

#[global_allocator]
static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

fn main() -> std::process::ExitCode {
    classalloc_benches::real::main("rpmalloc")
}
