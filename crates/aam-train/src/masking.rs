//! Masked-nucleotide pretraining input (spec §3.11, PYT-20.1 `random` strategy):
//! each real nucleotide position (tokens 1–4, never START or padding) is replaced by
//! MASK (6) independently with probability `ratio`. The draw is made once per distinct
//! ASV row of a batch and shared by every slot holding that row, so that repeated ASVs
//! stay identical and the ASV encoder encodes them once
//! ([`aam_model::asv_encoder::AsvEncoder::forward`]).

use aam_data::tokenizer::MASK;
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Masked tokens and what the loss needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedTokens {
    /// Tokens with MASK at the chosen positions, `[batch, n_asv, L]`.
    pub tokens: Array3<i64>,
    /// Original token at masked positions, 0 elsewhere, `[batch, n_asv, L]`.
    pub targets: Array3<i64>,
    /// 1.0 at masked positions, `[batch, n_asv, L]`.
    pub mask: Array3<f32>,
}

/// Masks `tokens` `[batch, n_asv, L]` with probability `ratio` per nucleotide, seeded by
/// `seed`: the distinct rows are drawn in order of first appearance, and a repeated row
/// gets its first copy's mask.
pub fn mask_nucleotides(tokens: &Array3<i64>, ratio: f64, seed: u64) -> MaskedTokens {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (b, s, l) = tokens.dim();
    let mut out = tokens.clone();
    let mut targets = Array3::<i64>::zeros(tokens.raw_dim());
    let mut mask = Array3::<f32>::zeros(tokens.raw_dim());
    let rows: Vec<i64> = tokens.iter().copied().collect();
    let (first, slot_row) = aam_model::asv_encoder::unique_rows(&rows, l.max(1));
    // The masked positions of each distinct row.
    let drawn: Vec<Vec<usize>> = first
        .iter()
        .map(|&r| {
            rows[r * l..(r + 1) * l]
                .iter()
                .enumerate()
                .filter(|(_, t)| (1..=4).contains(*t) && rng.random::<f64>() < ratio)
                .map(|(k, _)| k)
                .collect()
        })
        .collect();
    for (slot, &u) in slot_row.iter().enumerate() {
        let (i, j) = (slot / s.max(1), slot % s.max(1));
        for &k in &drawn[u] {
            targets[[i, j, k]] = tokens[[i, j, k]];
            out[[i, j, k]] = i64::from(MASK);
            mask[[i, j, k]] = 1.0;
        }
    }
    debug_assert_eq!(slot_row.len(), b * s);
    MaskedTokens {
        tokens: out,
        targets,
        mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nucleotides_are_masked_at_the_ratio() {
        // 32 distinct rows: positions 1-3 spell the slot number in base 4.
        let mut t = Array3::<i64>::zeros((4, 8, 101));
        for ((i, j, k), v) in t.indexed_iter_mut() {
            let slot = i * 8 + j;
            *v = match k {
                0 => 5,
                1..=3 => (slot / 4usize.pow(k as u32 - 1) % 4 + 1) as i64,
                4..=90 => (k % 4 + 1) as i64,
                _ => 0,
            };
        }
        let m = mask_nucleotides(&t, 0.15, 3);
        let n_masked = m.mask.sum() as f64;
        let n_real = 4.0 * 8.0 * 90.0;
        // Binomial(2880, 0.15): mean 432, sd 19.2; 5 sd.
        assert!(
            (n_masked - 0.15 * n_real).abs() < 5.0 * (n_real * 0.15 * 0.85f64).sqrt(),
            "{n_masked}"
        );
        for (idx, &v) in m.tokens.indexed_iter() {
            if m.mask[idx] == 1.0 {
                assert_eq!(v, 6);
                assert_eq!(m.targets[idx], t[idx]);
                assert!((1..=4).contains(&t[idx]));
            } else {
                assert_eq!(v, t[idx]);
            }
        }
        assert_eq!(m, mask_nucleotides(&t, 0.15, 3));
    }

    #[test]
    fn repeated_rows_share_their_mask_and_distinct_rows_do_not() {
        // Slots 0 and 2 of sample 0 and slot 1 of sample 1 hold one ASV; slot 1 of
        // sample 0 another; the rest is padding.
        let a: Vec<i64> = std::iter::once(5).chain((1..=90).map(|k| k % 4 + 1)).collect();
        let b: Vec<i64> = std::iter::once(5).chain((1..=90).map(|k| (k + 1) % 4 + 1)).collect();
        let mut t = Array3::<i64>::zeros((2, 3, 91));
        for (i, j, row) in [(0, 0, &a), (0, 1, &b), (0, 2, &a), (1, 1, &a)] {
            for (k, &v) in row.iter().enumerate() {
                t[[i, j, k]] = v;
            }
        }
        let m = mask_nucleotides(&t, 0.3, 11);
        let row = |x: &Array3<f32>, i: usize, j: usize| x.slice(ndarray::s![i, j, ..]).to_vec();
        assert_eq!(row(&m.mask, 0, 0), row(&m.mask, 0, 2));
        assert_eq!(row(&m.mask, 0, 0), row(&m.mask, 1, 1));
        assert_ne!(row(&m.mask, 0, 0), row(&m.mask, 0, 1));
        assert!(row(&m.mask, 0, 0).iter().sum::<f32>() > 0.0);
        assert_eq!(row(&m.mask, 1, 0).iter().sum::<f32>(), 0.0, "padding is never masked");
        assert_eq!(
            m.tokens.slice(ndarray::s![0, 0, ..]),
            m.tokens.slice(ndarray::s![1, 1, ..])
        );
    }
}
