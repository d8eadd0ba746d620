//! Resident memory of this process and of the system (Linux `/proc`), for training,
//! benchmark and streaming reports.

/// Peak resident set size since the process started or since the last
/// [`reset_peak_rss`], in MiB (Linux `VmHWM` of `/proc/self/status`); `None` where the
/// system does not report it.
pub fn peak_rss_mib() -> Option<f64> {
    proc_mib("/proc/self/status", "VmHWM:")
}

/// Resident memory now, MiB (Linux `VmRSS`).
pub fn current_rss_mib() -> Option<f64> {
    proc_mib("/proc/self/status", "VmRSS:")
}

/// Memory the system can still give, MiB (Linux `MemAvailable`).
pub fn available_mib() -> Option<f64> {
    proc_mib("/proc/meminfo", "MemAvailable:")
}

/// The `key` line of a Linux `/proc` file given in kB, in MiB.
fn proc_mib(file: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak resident set size to the current one (Linux ≥ 4.0: writing 5 to
/// `/proc/self/clear_refs`); does nothing where that is not available.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
