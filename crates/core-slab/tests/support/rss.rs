//! The process's anonymous resident memory, for the tests that check memory goes back (shared by
//! `core-slab`'s and the facade's tests through `#[path]`).

/// Anonymous resident bytes, from the page tables (as `benches/src/rss.rs` reads them).
pub fn anonymous_bytes() -> usize {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let kib: usize = rollup
        .lines()
        .find_map(|line| line.strip_prefix("Anonymous:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .expect("an Anonymous line");
    kib * 1024
}
