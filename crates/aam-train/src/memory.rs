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

/// Has glibc's allocator keep freed blocks of up to 1 GiB for reuse instead of handing
/// them back to the system at once (Linux with glibc; nothing elsewhere).
///
/// A training step allocates and frees tensors of tens to hundreds of MiB (attention
/// scores, feed-forward activations, gradients) every time; by default glibc maps each
/// such block afresh and unmaps it when freed, so every step paid page faults and page
/// zeroing for all of them (a third of a CPU step's time in `aam bench --train`). The
/// peak resident memory stays about the same (freed blocks are reused, not added);
/// [`return_freed_memory`] hands what is free back when a measurement needs it.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before the training
    // threads allocate, and glibc serialises it with allocation anyway.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Hands the allocator's free memory back to the system (glibc `malloc_trim`; nothing
/// elsewhere), so that the resident set is what is in use.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs one test of the current test binary alone, in a child process, so that what it
/// measures of the process's memory is not moved by other tests' threads allocating and
/// freeing at the same time. Returns `true` inside that child (the caller then measures)
/// and `false` in the parent once the child passed; panics with the child's output if it
/// failed or ran no test.
#[cfg(test)]
pub(crate) fn run_test_alone(name: &str) -> bool {
    const CHILD: &str = "AAM_MEMORY_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child run of {name} failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_grows_with_a_touched_allocation() {
        if !run_test_alone("memory::tests::peak_rss_grows_with_a_touched_allocation") {
            return;
        }
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
        assert!(current_rss_mib().unwrap() <= after + 1.0, "VmRSS ≤ VmHWM");
        drop(block);
    }
}
