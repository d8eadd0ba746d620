//! Rarefaction: exact depth, reproducibility, and unbiasedness against the
//! hypergeometric expectation.

mod common;

use aam_data::{load_table, rarefy, FeatureTable};
use common::*;

#[test]
fn every_kept_sample_sums_to_depth_and_shallow_ones_are_listed() {
    let (t, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let depth = 1000;
    let (r, report) = rarefy(&t, depth, 7, false).unwrap();
    let shallow: Vec<String> = (0..t.n_samples())
        .filter(|&s| t.depths()[s] < depth as f64)
        .map(|s| t.sample_ids[s].clone())
        .collect();
    assert_eq!(report.dropped_samples, shallow);
    assert_eq!(
        shallow,
        ["L3S242", "L3S341", "L3S360"],
        "moving-pictures samples below 1000 reads"
    );
    assert_eq!(r.n_samples(), t.n_samples() - 3);
    for d in r.depths() {
        assert_eq!(d, depth as f64);
    }
    // No all-zero ASV is left, and the count of removed ones adds up.
    let mut used = vec![false; r.n_asv()];
    r.indices.iter().for_each(|&o| used[o as usize] = true);
    assert!(used.iter().all(|&u| u));
    assert_eq!(r.n_asv() + report.removed_asvs, t.n_asv());
    // A drawn count never exceeds the original count.
    let orig = t.sample_index();
    for s in 0..r.n_samples() {
        let o_s = orig[r.sample_ids[s].as_str()];
        let before: std::collections::HashMap<&str, f64> = t
            .sample(o_s)
            .map(|(o, c)| (t.observation_ids[o as usize].as_str(), c))
            .collect();
        for (o, c) in r.sample(s) {
            assert!(c <= before[r.observation_ids[o as usize].as_str()]);
        }
    }
}

#[test]
fn same_seed_same_table_other_seed_other_table() {
    let (t, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let a = rarefy(&t, 500, 1, false).unwrap().0;
    let b = rarefy(&t, 500, 1, false).unwrap().0;
    let c = rarefy(&t, 500, 2, false).unwrap().0;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Per-ASV means over many seeds match depth·p. Under the hypergeometric draw the
/// count of ASV i has variance depth·p(1−p)(N−depth)/(N−1); the mean over R seeds has
/// that variance / R. Every ASV must lie within 5 standard errors (a false alarm
/// probability of about 6e-7 per ASV).
#[test]
fn per_asv_means_match_hypergeometric_expectation() {
    let counts = [1.0, 2.0, 5.0, 10.0, 30.0, 52.0];
    let n: f64 = counts.iter().sum();
    let t = FeatureTable::from_triplets(
        std::path::Path::new("x"),
        vec!["S".into()],
        (0..counts.len()).map(|i| format!("ASV{i}")).collect(),
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (0, i as u32, c))
            .collect(),
    )
    .unwrap();
    let (depth, rounds) = (40u64, 4000);
    for with_replacement in [false, true] {
        let mut sums = [0.0f64; 6];
        for seed in 0..rounds {
            let (r, _) = rarefy(&t, depth, seed, with_replacement).unwrap();
            for (o, c) in r.sample(0) {
                let i: usize = r.observation_ids[o as usize][3..].parse().unwrap();
                sums[i] += c;
            }
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = c / n;
            let d = depth as f64;
            let var = if with_replacement {
                d * p * (1.0 - p)
            } else {
                d * p * (1.0 - p) * (n - d) / (n - 1.0)
            };
            let mean = sums[i] / rounds as f64;
            let se = (var / rounds as f64).sqrt();
            assert!(
                (mean - d * p).abs() <= 5.0 * se,
                "ASV{i} (replacement {with_replacement}): mean {mean} vs {} ± {}",
                d * p,
                5.0 * se
            );
        }
    }
}

#[test]
fn with_replacement_sums_to_depth() {
    let t = tiny_table();
    let (r, report) = rarefy(&t, 9, 3, true).unwrap();
    assert_eq!(report.dropped_samples, vec!["S1".to_string()]);
    assert!(r.depths().iter().all(|&d| d == 9.0));
}

#[test]
fn bad_depths_are_errors() {
    let t = tiny_table();
    assert_mentions(
        &rarefy(&t, 0, 0, false).unwrap_err(),
        &["--rarefy-depth", "at least 1"],
    );
    assert_mentions(
        &rarefy(&t, 1000, 0, false).unwrap_err(),
        &["--rarefy-depth", "deepest has 15"],
    );
}

#[test]
fn non_integer_counts_are_refused() {
    let t = FeatureTable::from_triplets(
        std::path::Path::new("x"),
        vec!["S9".into()],
        vec!["ACGT".into()],
        vec![(0, 0, 0.5)],
    )
    .unwrap();
    assert_mentions(
        &rarefy(&t, 1, 0, false).unwrap_err(),
        &["S9", "ACGT", "non-integer"],
    );
}

/// Memory follows the ASVs, not the reads: a count of 10^15 is drawn from as a count of
/// 10 is (drawing one slot per read would allocate petabytes and abort), and the drawn
/// counts still follow the hypergeometric split between the two deep ASVs.
#[test]
fn huge_counts_are_rarefied_without_one_slot_per_read() {
    let t = FeatureTable::from_triplets(
        std::path::Path::new("x"),
        vec!["S".into()],
        vec!["AAAA".into(), "CCCC".into(), "GGGG".into()],
        vec![(0, 0, 1e15), (0, 1, 3e15), (0, 2, 5.0)],
    )
    .unwrap();
    for with_replacement in [false, true] {
        let mut first = 0.0;
        for seed in 0..200 {
            let (r, _) = rarefy(&t, 20, seed, with_replacement).unwrap();
            assert_eq!(r.depths(), vec![20.0]);
            for (o, c) in r.sample(0) {
                match r.observation_ids[o as usize].as_str() {
                    "AAAA" => first += c,
                    // 5 reads out of 4·10^15: never drawn in 4,000 reads.
                    id => assert_ne!(id, "GGGG"),
                }
            }
        }
        // Mean 20 · 1/4 = 5 per draw; 200 draws: standard error √(20·0.25·0.75/200).
        let mean = first / 200.0;
        assert!(
            (mean - 5.0).abs() < 5.0 * (3.75f64 / 200.0).sqrt(),
            "{mean}"
        );
    }
}

#[test]
fn more_than_2_to_the_64_reads_are_an_error() {
    let t = FeatureTable::from_triplets(
        std::path::Path::new("x"),
        vec!["S3".into()],
        vec!["ACGT".into(), "TTTT".into()],
        vec![(0, 0, 1e19), (0, 1, 1e19)],
    )
    .unwrap();
    assert_mentions(
        &rarefy(&t, 20, 0, false).unwrap_err(),
        &["S3", "2^64 reads"],
    );
}
