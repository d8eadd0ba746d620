//! `BiomSampleChunks` on a generated table larger than the memory budget: the peak
//! resident memory while streaming every sample stays within the budget. Alone in its
//! test binary, so no other test moves the process's peak.

use aam_data::BiomSampleChunks;

/// Resident memory now and its peak since the last reset, MiB (Linux).
fn rss_and_reset_peak() -> Option<f64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_mib("VmRSS:")
}

fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

#[test]
fn streaming_memory_is_bounded_by_the_chunk_not_the_table() {
    // 6,000 samples × 1,000 entries: 96 MiB of counts and indices on disk, more once
    // loaded whole; read 200 samples at a time within a 40 MiB budget.
    let (n_samples, n_asv, per_sample) = (6_000usize, 2_000usize, 1_000usize);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.biom");
    {
        let asvs: Vec<String> = (0..n_asv)
            .map(|o| {
                (0..12)
                    .map(|k| ['A', 'C', 'G', 'T'][(o >> (2 * k)) & 3])
                    .collect::<String>()
                    + "ACGTACGT"
            })
            .collect();
        let samples: Vec<String> = (0..n_samples).map(|s| format!("S{s}")).collect();
        let mut indptr = vec![0i64];
        let mut indices = Vec::with_capacity(n_samples * per_sample);
        let mut data = Vec::with_capacity(n_samples * per_sample);
        for s in 0..n_samples {
            for k in 0..per_sample {
                indices.push(((s * 7 + k * 2) % n_asv) as i64);
                data.push((1 + (s + k) % 50) as f64);
            }
            indptr.push(indices.len() as i64);
        }
        let mut b = hdf5_pure::FileBuilder::new();
        let mut sample = b.create_group("sample");
        let refs: Vec<&str> = samples.iter().map(String::as_str).collect();
        sample.create_dataset("ids").with_vlen_strings(&refs);
        let mut matrix = sample.create_group("matrix");
        matrix.create_dataset("data").with_f64_data(&data);
        matrix.create_dataset("indices").with_i64_data(&indices);
        matrix.create_dataset("indptr").with_i64_data(&indptr);
        sample.add_group(matrix.finish());
        b.add_group(sample.finish());
        let mut obs = b.create_group("observation");
        let refs: Vec<&str> = asvs.iter().map(String::as_str).collect();
        obs.create_dataset("ids").with_vlen_strings(&refs);
        b.add_group(obs.finish());
        b.write(&path).unwrap();
    }
    let file_mib = std::fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;
    let budget_mib = 40.0;
    assert!(
        file_mib > 2.0 * budget_mib,
        "the table ({file_mib:.0} MiB) must exceed the budget"
    );
    let Some(before) = rss_and_reset_peak() else {
        assert!(
            !cfg!(target_os = "linux"),
            "Linux resets and reports the peak RSS"
        );
        return; // elsewhere: no memory report
    };
    let mut total_reads = 0.0;
    let mut samples = 0;
    for table in BiomSampleChunks::open(&path, 200).unwrap() {
        let table = table.unwrap();
        samples += table.n_samples();
        total_reads += table.values.iter().sum::<f64>();
    }
    let peak = status_mib("VmHWM:").unwrap();
    eprintln!(
        "streamed {samples} samples from a {file_mib:.0} MiB table: RSS {before:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB)",
        peak - before
    );
    assert_eq!(samples, n_samples);
    let expected: f64 = (0..n_samples)
        .flat_map(|s| (0..per_sample).map(move |k| (1 + (s + k) % 50) as f64))
        .sum();
    assert_eq!(total_reads, expected);
    assert!(
        peak - before < budget_mib,
        "streaming took {:.0} MiB over a {budget_mib} MiB budget",
        peak - before
    );
}
