//! The allocator's handling of freed memory during training, and a test helper that
//! measures the process's memory alone.

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
