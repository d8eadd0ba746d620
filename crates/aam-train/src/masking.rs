//! Masked-nucleotide pretraining input (spec §3.11, PYT-20.1 `random` strategy):
//! each real nucleotide position (tokens 1–4, never START or padding) is replaced by
//! MASK (6) independently with probability `ratio`.

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

/// Masks `tokens` with probability `ratio` per nucleotide, seeded by `seed`.
pub fn mask_nucleotides(tokens: &Array3<i64>, ratio: f64, seed: u64) -> MaskedTokens {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = tokens.clone();
    let mut targets = Array3::<i64>::zeros(tokens.raw_dim());
    let mut mask = Array3::<f32>::zeros(tokens.raw_dim());
    for ((idx, t), o) in tokens.indexed_iter().zip(out.iter_mut()) {
        if (1..=4).contains(t) && rng.random::<f64>() < ratio {
            *o = i64::from(MASK);
            targets[idx] = *t;
            mask[idx] = 1.0;
        }
    }
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
        let mut t = Array3::<i64>::zeros((4, 8, 101));
        for ((_, _, k), v) in t.indexed_iter_mut() {
            *v = if k == 0 {
                5
            } else if k <= 90 {
                (k % 4 + 1) as i64
            } else {
                0
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
}
