//! Beta-diversity distances computed from the feature table itself, the pretraining
//! targets beyond UniFrac (`--distance`). Definitions follow scikit-bio 0.7
//! (`skbio.diversity.beta_diversity`, which calls SciPy's `pdist`), and the tests in
//! CI compare every value with scikit-bio's on the shared datasets:
//!
//! * Bray-Curtis on counts: `Σ|u − v| / Σ(u + v)` (SciPy `braycurtis`).
//! * Jaccard on presence/absence (scikit-bio passes qualitative metrics Boolean input):
//!   `|A △ B| / |A ∪ B|`.
//! * Robust Aitchison: the Euclidean distance between robust CLR profiles (Martino et
//!   al. 2019, mSystems 4:e00016-19; `skbio.stats.composition.rclr`): for each sample,
//!   `ln c − mean(ln c)` over its non-zero counts and 0 where the count is 0.

use std::path::PathBuf;

use crate::distance::DistanceMatrix;
use crate::error::{DataError, Result};
use crate::table::FeatureTable;

/// A distance computed from a feature table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BetaMetric {
    /// Bray-Curtis dissimilarity on counts, in [0, 1].
    BrayCurtis,
    /// Jaccard distance on presence/absence, in [0, 1].
    Jaccard,
    /// Euclidean distance between robust CLR profiles, in [0, ∞).
    RobustAitchison,
}

impl BetaMetric {
    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            BetaMetric::BrayCurtis => "braycurtis",
            BetaMetric::Jaccard => "jaccard",
            BetaMetric::RobustAitchison => "aitchison",
        }
    }

    /// Whether every distance lies in [0, 1].
    pub fn is_bounded(self) -> bool {
        !matches!(self, BetaMetric::RobustAitchison)
    }
}

/// One sample as sorted (ASV index, value) pairs with a non-zero value.
type Profile = Vec<(u32, f64)>;

/// Sum over the union of two sorted profiles of `f(u_i, v_i)` (0 where absent).
fn merged(a: &Profile, b: &Profile, mut f: impl FnMut(f64, f64)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(x, u)), Some(&(y, v))) if x == y => {
                f(u, v);
                i += 1;
                j += 1;
            }
            (Some(&(x, u)), Some(&(y, _))) if x < y => {
                f(u, 0.0);
                i += 1;
            }
            (Some(&(_, u)), None) => {
                f(u, 0.0);
                i += 1;
            }
            (_, Some(&(_, v))) => {
                f(0.0, v);
                j += 1;
            }
            (None, None) => unreachable!("the loop runs while one side has entries"),
        }
    }
}

/// The `metric` distances between every pair of `table`'s samples (`origin` names the
/// table in messages), as a matrix in the table's sample order.
///
/// Errors: a sample without reads (every one of these distances is undefined for it);
/// a negative or non-finite count.
pub fn beta_diversity(
    table: &FeatureTable,
    metric: BetaMetric,
    origin: &str,
) -> Result<DistanceMatrix> {
    let n = table.n_samples();
    let mut profiles: Vec<Profile> = Vec::with_capacity(n);
    for s in 0..n {
        let mut p: Profile = table.sample(s).filter(|&(_, c)| c != 0.0).collect();
        if let Some(&(a, c)) = p.iter().find(|&&(_, c)| !(c.is_finite() && c > 0.0)) {
            return Err(DataError::format(
                origin,
                format!(
                    "sample '{}' has count {c} for ASV '{}'; {} needs non-negative finite counts",
                    table.sample_ids[s],
                    crate::error::short_asv(&table.observation_ids[a as usize]),
                    metric.name()
                ),
            ));
        }
        if p.is_empty() {
            return Err(DataError::format(
                origin,
                format!(
                    "sample '{}' has no reads, so its {} distances are undefined; remove it from the table (or rarefy to a depth it reaches)",
                    table.sample_ids[s],
                    metric.name()
                ),
            ));
        }
        p.sort_by_key(|e| e.0);
        if metric == BetaMetric::RobustAitchison {
            let mean = p.iter().map(|e| e.1.ln()).sum::<f64>() / p.len() as f64;
            for e in &mut p {
                e.1 = e.1.ln() - mean;
            }
        }
        profiles.push(p);
    }
    let mut values = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d = match metric {
                BetaMetric::BrayCurtis => {
                    let (mut diff, mut total) = (0.0, 0.0);
                    merged(&profiles[i], &profiles[j], |u, v| {
                        diff += (u - v).abs();
                        total += u + v;
                    });
                    diff / total
                }
                BetaMetric::Jaccard => {
                    let (mut only_one, mut union) = (0usize, 0usize);
                    merged(&profiles[i], &profiles[j], |u, v| {
                        union += 1;
                        only_one += usize::from((u == 0.0) != (v == 0.0));
                    });
                    only_one as f64 / union as f64
                }
                BetaMetric::RobustAitchison => {
                    let mut sq = 0.0;
                    merged(&profiles[i], &profiles[j], |u, v| sq += (u - v) * (u - v));
                    sq.sqrt()
                }
            };
            values[i * n + j] = d;
            values[j * n + i] = d;
        }
    }
    Ok(DistanceMatrix {
        path: PathBuf::from(format!("({} distances of {origin})", metric.name())),
        ids: table.sample_ids.clone(),
        values,
        order_source: "computed from the table".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FeatureTable {
        // Samples × ASVs: A = [1, 2, 0, 4], B = [0, 3, 3, 0], C = [2, 2, 2, 2]
        // (the example of skbio.stats.composition.rclr).
        let rows = [
            [1.0, 2.0, 0.0, 4.0],
            [0.0, 3.0, 3.0, 0.0],
            [2.0, 2.0, 2.0, 2.0],
        ];
        let mut triplets = Vec::new();
        for (s, row) in rows.iter().enumerate() {
            for (a, &c) in row.iter().enumerate() {
                if c > 0.0 {
                    triplets.push((s as u32, a as u32, c));
                }
            }
        }
        FeatureTable::from_triplets(
            std::path::Path::new("t"),
            vec!["A".into(), "B".into(), "C".into()],
            vec!["AC".into(), "CG".into(), "GT".into(), "TA".into()],
            triplets,
        )
        .unwrap()
    }

    #[test]
    fn hand_computed_distances() {
        let t = table();
        let bc = beta_diversity(&t, BetaMetric::BrayCurtis, "t").unwrap();
        // A–B: |1|+|−1|+|−3|+|4| = 9 over 7 + 6 = 13; A–C: 1+0+2+2 = 5 over 15; B–C: 2+1+1+2 = 6 over 14.
        for (i, j, want) in [(0, 1, 9.0 / 13.0), (0, 2, 5.0 / 15.0), (1, 2, 6.0 / 14.0)] {
            assert!((bc.get(i, j) - want).abs() < 1e-15 && bc.get(j, i) == bc.get(i, j));
        }
        assert_eq!(bc.get(1, 1), 0.0);
        let j = beta_diversity(&t, BetaMetric::Jaccard, "t").unwrap();
        // A = {0, 1, 3}, B = {1, 2}: △ = {0, 2, 3}, ∪ = 4; A–C: △ = {2}, ∪ = 4.
        assert!((j.get(0, 1) - 0.75).abs() < 1e-15);
        assert!((j.get(0, 2) - 0.25).abs() < 1e-15);
        assert!((j.get(1, 2) - 0.5).abs() < 1e-15);
        let a = beta_diversity(&t, BetaMetric::RobustAitchison, "t").unwrap();
        // rclr: A = [−ln 2, 0, ·, ln 2], B = [·, 0, 0, ·], C = 0: A–B = A–C = √2·ln 2.
        let want = 2f64.sqrt() * 2f64.ln();
        assert!((a.get(0, 1) - want).abs() < 1e-12);
        assert!((a.get(0, 2) - want).abs() < 1e-12);
        assert!(a.get(1, 2).abs() < 1e-15);
    }

    #[test]
    fn a_sample_without_reads_is_named() {
        let t = FeatureTable::from_triplets(
            std::path::Path::new("t"),
            vec!["A".into(), "empty".into()],
            vec!["AC".into()],
            vec![(0, 0, 3.0)],
        )
        .unwrap();
        let e = beta_diversity(&t, BetaMetric::BrayCurtis, "t.biom")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'empty'") && e.contains("t.biom"), "{e}");
    }
}
