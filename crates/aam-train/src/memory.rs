//! Peak resident memory of this process, for training and benchmark reports.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_grows_with_a_touched_allocation() {
        reset_peak_rss();
        let Some(before) = peak_rss_mib() else {
            assert!(!cfg!(target_os = "linux"), "Linux reports VmHWM");
            return; // elsewhere: nothing reported, nothing to check
        };
        let block = vec![1u8; 64 << 20];
        let after = peak_rss_mib().unwrap();
        assert!(
            after - before >= 60.0,
            "{before} MiB → {after} MiB after touching 64 MiB"
        );
        drop(block);
    }
}
