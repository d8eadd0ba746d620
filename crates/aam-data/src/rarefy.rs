//! Rarefaction: subsampling every sample to the same sequencing depth.
//!
//! Without replacement (the default, as `biom.Table.subsample` and QIIME 2
//! `feature-table rarefy`): each kept sample is an exact hypergeometric draw of
//! `depth` reads out of its reads. With replacement: `depth` independent multinomial
//! draws with probabilities `count / total`. Both draw read by read over the counts
//! (cumulative sums), never one slot per read, so memory follows the number of ASVs,
//! not the number of reads (a count of 10^15 costs what a count of 10 does).

use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{short_asv, DataError, Result};
use crate::table::FeatureTable;

/// What rarefaction did, for the user's log.
#[derive(Debug, Clone, PartialEq)]
pub struct RarefyReport {
    /// Samples whose depth was below the rarefaction depth, in table order.
    pub dropped_samples: Vec<String>,
    /// Number of ASVs left with zero counts in every kept sample, then removed.
    pub removed_asvs: usize,
}

/// Rarefies `table` to `depth` reads per sample with RNG `seed`.
///
/// Each sample uses its own ChaCha8 stream (`seed`, stream = sample index), so the
/// result is the same for the same seed regardless of threading. Samples with fewer
/// than `depth` reads are dropped and listed in the report; ASVs that end with zero
/// counts everywhere are removed.
///
/// Errors: `depth == 0`; a count that is not a whole number (naming the sample and
/// ASV); no sample reaching `depth` (naming the largest depth available).
pub fn rarefy(
    table: &FeatureTable,
    depth: u64,
    seed: u64,
    with_replacement: bool,
) -> Result<(FeatureTable, RarefyReport)> {
    if depth == 0 {
        return Err(DataError::Parameter {
            name: "--rarefy-depth",
            message: "must be at least 1".into(),
        });
    }
    let mut keep = Vec::new();
    let mut dropped_samples = Vec::new();
    let mut max_depth = 0u64;
    for s in 0..table.n_samples() {
        let mut total = 0u64;
        for (o, c) in table.sample(s) {
            if c.fract() != 0.0 {
                return Err(DataError::Parameter {
                    name: "--rarefy-depth",
                    message: format!(
                        "sample '{}', ASV {} has a non-integer count {c}; rarefaction needs raw read counts (omit --rarefy-depth for relative abundances)",
                        table.sample_ids[s],
                        short_asv(&table.observation_ids[o as usize])
                    ),
                });
            }
            total = whole_reads(c)
                .and_then(|c| total.checked_add(c))
                .ok_or_else(|| DataError::Parameter {
                    name: "--rarefy-depth",
                    message: format!(
                        "sample '{}' has more than 2^64 reads (ASV {} has {c}); rarefaction needs raw read counts",
                        table.sample_ids[s],
                        short_asv(&table.observation_ids[o as usize])
                    ),
                })?;
        }
        max_depth = max_depth.max(total);
        if total >= depth {
            keep.push(s);
        } else {
            dropped_samples.push(table.sample_ids[s].clone());
        }
    }
    if keep.is_empty() {
        return Err(DataError::Parameter {
            name: "--rarefy-depth",
            message: format!(
                "no sample has {depth} reads (the deepest has {max_depth}); choose a smaller depth"
            ),
        });
    }
    let mut indptr = vec![0usize];
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for &s in &keep {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(s as u64);
        let entries: Vec<(u32, u64)> = table.sample(s).map(|(o, c)| (o, c as u64)).collect();
        let drawn = if with_replacement {
            draw_with_replacement(&entries, depth, &mut rng)
        } else {
            // The sample's total was checked above (≤ u64::MAX, ≥ depth).
            draw_without_replacement(&entries, depth, &mut rng).expect("checked total")
        };
        for (k, &(o, _)) in entries.iter().enumerate() {
            if drawn[k] > 0 {
                indices.push(o);
                values.push(drawn[k] as f64);
            }
        }
        indptr.push(indices.len());
    }
    let rarefied = FeatureTable {
        sample_ids: keep.iter().map(|&s| table.sample_ids[s].clone()).collect(),
        observation_ids: table.observation_ids.clone(),
        indptr,
        indices,
        values,
    };
    // Re-selecting every sample drops the ASVs that are now all-zero.
    let compact = rarefied.select_samples(&(0..rarefied.n_samples()).collect::<Vec<_>>());
    let removed_asvs = table.n_asv() - compact.n_asv();
    Ok((
        compact,
        RarefyReport {
            dropped_samples,
            removed_asvs,
        },
    ))
}

/// A whole, non-negative count as a number of reads (`None` beyond `u64::MAX`).
fn whole_reads(c: f64) -> Option<u64> {
    // 2^64 is exactly representable; every f64 below it converts without saturating.
    (c >= 0.0 && c < 18_446_744_073_709_551_616.0).then_some(c as u64)
}

/// Draws `depth` of the sample's reads without replacement; returns the new count
/// of each entry. Read by read: a uniform position among the reads left picks the
/// entry whose cumulative range holds it (a Fenwick tree of the counts left), and that
/// entry loses one read, which is an exact uniform draw without replacement in memory
/// that follows the entries and time `depth · log(entries)`. `None` when the entries
/// hold more than `u64::MAX` reads in all or fewer than `depth`.
pub(crate) fn draw_without_replacement(
    entries: &[(u32, u64)],
    depth: u64,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<u64>> {
    let mut left = entries
        .iter()
        .try_fold(0u64, |t, &(_, c)| t.checked_add(c))?;
    if depth > left {
        return None;
    }
    let n = entries.len();
    // tree[i] (1-based) holds the reads left of entries (i − lowbit(i), i].
    let mut tree = vec![0u64; n + 1];
    for (k, &(_, c)) in entries.iter().enumerate() {
        let i = k + 1;
        tree[i] += c;
        let parent = i + (i & i.wrapping_neg());
        if parent <= n {
            let t = tree[i];
            tree[parent] += t;
        }
    }
    let top = if n == 0 { 0 } else { 1usize << n.ilog2() };
    let mut out = vec![0u64; n];
    for _ in 0..depth {
        let mut r = rng.random_range(0..left);
        // Descend to the entry whose cumulative range holds read r.
        let (mut pos, mut step) = (0usize, top);
        while step > 0 {
            let next = pos + step;
            if next <= n && tree[next] <= r {
                r -= tree[next];
                pos = next;
            }
            step >>= 1;
        }
        out[pos] += 1;
        left -= 1;
        let mut i = pos + 1;
        while i <= n {
            tree[i] -= 1;
            i += i & i.wrapping_neg();
        }
    }
    Some(out)
}

/// Draws `depth` reads with replacement (multinomial with p = count / total).
fn draw_with_replacement(entries: &[(u32, u64)], depth: u64, rng: &mut ChaCha8Rng) -> Vec<u64> {
    let mut out = vec![0u64; entries.len()];
    // Totals were checked against u64::MAX and are ≥ depth ≥ 1 here, so the weights
    // are valid.
    let dist = WeightedIndex::new(entries.iter().map(|e| e.1)).expect("positive weights");
    for _ in 0..depth {
        out[dist.sample(rng)] += 1;
    }
    out
}
