//! Peak resident memory: alone in its test binary, so that no other test's threads
//! allocate while it measures.

use aam_data::process_memory::{current_rss_mib, peak_rss_mib, reset_peak_rss};

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
    assert!(current_rss_mib().unwrap() <= after + 1.0, "VmRSS ≤ VmHWM");
    drop(block);
}
