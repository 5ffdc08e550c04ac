//! The process's memory as the kernel counts it.

/// Bytes of this process's memory resident in RAM now (`/proc/self/statm`, second field, in pages).
pub fn resident_bytes() -> std::io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("unexpected /proc/self/statm: {statm}")))?;
    Ok(pages * page_size())
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
