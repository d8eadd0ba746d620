//! Dropout whose mask is drawn fast on the CPU backends.
//!
//! Burn's `Dropout` draws a Bernoulli tensor element by element from one ChaCha
//! generator on one thread; on the CPU that took a fifth of a training step, most of it
//! for the `[n, heads, L, L]` attention weights. Here the backend's own seeded generator
//! draws one 64-bit seed per call (so `Backend::seed` still fixes every mask), and the
//! mask is filled in parallel from SplitMix64 streams, one per block of 65,536
//! elements (the same mask whatever the number of threads). On other backends (GPUs)
//! Burn's on-device draw is kept: a host mask would cost a sync and an upload.

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use rayon::prelude::*;

/// Elements per independently seeded block of the mask.
const BLOCK: usize = 1 << 16;

/// Inverted dropout: in training (an autodiff backend) each element of `input` is kept
/// with probability `1 − prob` and scaled by `1 / (1 − prob)`, else zeroed; the identity
/// in inference or when `prob` is 0. Same shape and dtype as `input`.
pub fn dropout<B: Backend, const D: usize>(input: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    let device = input.device();
    if prob <= 0.0 || !B::ad_enabled(&device) {
        return input;
    }
    if prob >= 1.0 {
        return input.zeros_like();
    }
    let name = B::name(&device);
    if !(name.contains("flex") || name.contains("ndarray")) {
        return burn::nn::DropoutConfig::new(prob).init().forward(input);
    }
    // Two uniform draws of the backend's generator make the seed (24 random bits each).
    let draws: Vec<f32> = Tensor::<B, 1>::random([2], Distribution::Default, &device)
        .into_data()
        .iter::<f32>()
        .collect();
    let seed = (u64::from(draws[0].to_bits()) << 32) ^ u64::from(draws[1].to_bits());
    let shape = input.shape();
    let mask = keep_mask(shape.num_elements(), 1.0 - prob, seed);
    let dtype = input.dtype();
    let mask = Tensor::<B, D>::from_data(TensorData::new(mask, shape), &device);
    // Half-precision blocks (`--mixed-precision`) get the mask in their own format.
    input
        * if dtype == mask.dtype() {
            mask
        } else {
            mask.cast(dtype)
        }
}

/// `n` values, each `1 / keep` with probability `keep`, else 0, from `seed`. Each
/// 64-bit draw decides four elements with 16 bits each: `keep` is honoured to 1/65,536.
pub fn keep_mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let threshold = (keep * 65_536.0).round() as u64;
    let scale = (1.0 / keep) as f32;
    let mut mask = vec![0f32; n];
    mask.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, out)| {
            let mut state = seed ^ (block as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            for quad in out.chunks_mut(4) {
                let r = splitmix64(&mut state);
                for (k, v) in quad.iter_mut().enumerate() {
                    let u = (r >> (16 * k)) & 0xFFFF;
                    *v = if u < threshold { scale } else { 0.0 };
                }
            }
        });
    mask
}

/// SplitMix64 (Steele, Lea & Flood 2014): one 64-bit output per step.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_the_asked_share_scaled_and_repeats_for_a_seed() {
        let n = 1_000_003;
        let m = keep_mask(n, 0.9, 7);
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64;
        // Binomial(n, 0.9): sd 300; 5 sd.
        assert!((kept - 0.9 * n as f64).abs() < 1500.0, "{kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        assert_eq!(m, keep_mask(n, 0.9, 7));
        assert_ne!(m, keep_mask(n, 0.9, 8));
        // Blocks are not copies of each other.
        assert_ne!(m[..BLOCK], m[BLOCK..2 * BLOCK]);
        // The mean of the scaled mask is 1 (inverted dropout keeps expectations).
        let mean = m.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 2e-3, "{mean}");
    }

    #[test]
    fn dropout_is_the_identity_in_inference() {
        type B = crate::CpuBackend;
        let x = Tensor::<B, 2>::ones([3, 4], &Default::default());
        let y = dropout(x.clone(), 0.5);
        assert_eq!(x.into_data(), y.into_data());
    }

    #[test]
    fn dropout_in_training_zeroes_and_scales_and_follows_the_backend_seed() {
        type B = crate::CpuFlexAutodiff;
        let device = Default::default();
        let draw = |seed| {
            B::seed(&device, seed);
            let x = Tensor::<B, 2>::ones([64, 64], &device);
            dropout(x, 0.25)
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>()
        };
        let a = draw(1);
        assert!(a.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let zeros = a.iter().filter(|&&v| v == 0.0).count();
        assert!(
            (800..1250).contains(&zeros),
            "{zeros} of 4096 dropped at p 0.25"
        );
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        // The fast path ran: the mask is `keep_mask` of the seed drawn from the backend's
        // generator (Burn's own Bernoulli draw would give another mask).
        B::seed(&device, 1);
        let u: Vec<f32> = Tensor::<B, 1>::random([2], Distribution::Default, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        let seed = (u64::from(u[0].to_bits()) << 32) ^ u64::from(u[1].to_bits());
        assert_eq!(a, keep_mask(64 * 64, 0.75, seed));
    }
}
