//! The process's memory as the kernel counts it.

/// Bytes of this process's anonymous memory resident in RAM now, exactly: the `Anonymous:` line of
/// `/proc/self/smaps_rollup`, which the kernel computes by walking the page tables.
///
/// Anonymous memory is what allocators hand out (heap, mmap'd arenas). File-backed pages are left out:
/// the first run of a code path faults the binary's text in 64 KiB at a time, which showed up as random
/// 0.001 steps in the 64 MiB ratio table. (`/proc/self/statm` would add both, from batched counters.)
pub fn resident_bytes() -> std::io::Result<u64> {
    use std::io::Read;
    // Read into a buffer on the stack: a heap buffer allocated on the first call (the baseline) could
    // itself add a page to the growth being measured.
    let mut buffer = [0u8; 4096];
    let mut file = std::fs::File::open("/proc/self/smaps_rollup")?;
    let mut filled = 0;
    loop {
        let read = file.read(&mut buffer[filled..])?;
        if read == 0 || filled + read == buffer.len() {
            filled += read;
            break;
        }
        filled += read;
    }
    let rollup = std::str::from_utf8(&buffer[..filled]).map_err(std::io::Error::other)?;
    let kib: u64 = rollup
        .lines()
        .find_map(|line| line.strip_prefix("Anonymous:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Anonymous line in /proc/self/smaps_rollup"))?;
    Ok(kib * 1024)
}

/// The peak resident bytes of this process so far (`getrusage`'s `ru_maxrss`).
pub fn peak_resident_bytes() -> std::io::Result<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory of the size of `rusage`; getrusage only writes it.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded, so it filled the struct (and zeroed is a valid `rusage` anyway).
    let usage = unsafe { usage.assume_init() };
    // Linux reports ru_maxrss in KiB.
    Ok(u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

/// The kernel's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads configuration.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}
