//! The matmul FLOP count of a forward pass, for achieved GFLOP/s and a roofline.
//!
//! Per pre-norm transformer layer at sequence length `n`, width `d` and feed-forward width
//! `f`: Q, K, V and output projections `8·n·d²`, feed-forward `4·n·d·f`, `QKᵀ` and `A·V`
//! `4·n²·d` (FLOPs = 2 · multiply-adds; softmax, LayerNorm, GELU and pooling are under 2%
//! and ignored). Source: `shared/docs/runtime-notes.md` §C3 (71.05 MFLOP per ASV and
//! layer at the reference default d = 128, f = 512, n = 151).

use aam_config::{ModelConfig, ModelKind, Stack, StackConfig};

/// FLOPs of one transformer layer of `s` at sequence length `n`.
pub fn layer_flops(s: &StackConfig, n: usize) -> f64 {
    let (n, d, f) = (n as f64, s.dim as f64, s.ffn as f64);
    8.0 * n * d * d + 4.0 * n * d * f + 4.0 * n * n * d
}

fn stack_flops(c: &ModelConfig, stack: Stack, n: usize) -> f64 {
    let s = c.stack(stack);
    s.layers as f64 * layer_flops(&s, n)
}

/// FLOPs of the ASV encoder for one ASV (sequence length `max_bp + 1`).
pub fn asv_flops(c: &ModelConfig) -> f64 {
    stack_flops(c, Stack::Asv, c.max_bp + 1)
}

/// FLOPs of everything after the ASV encoder for one sample of `n_asv` ASV slots.
pub fn sample_flops(c: &ModelConfig, kind: ModelKind, n_asv: usize) -> f64 {
    let mut f = stack_flops(c, Stack::Sample, n_asv) + stack_flops(c, Stack::Encoder, n_asv);
    if kind == ModelKind::Predictor {
        f += stack_flops(c, Stack::Count, n_asv) + stack_flops(c, Stack::Target, n_asv);
    }
    f
}

/// FLOPs of a forward pass whose sample level runs on `sample_slots[i]` ASV slots for
/// sample `i` and that encodes `encoded_asvs` ASVs (every slot without the cache; the
/// unique new ones with it).
pub fn forward_flops(
    c: &ModelConfig,
    kind: ModelKind,
    sample_slots: &[usize],
    encoded_asvs: usize,
) -> f64 {
    encoded_asvs as f64 * asv_flops(c)
        + sample_slots
            .iter()
            .map(|&n| sample_flops(c, kind, n))
            .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_default_matches_the_hand_computed_budget() {
        let c = ModelConfig::default();
        // 71.05 MFLOP per ASV and layer, 2 layers (runtime-notes §C3).
        let per_layer = layer_flops(&c.stack(Stack::Asv), 151);
        assert_eq!(
            per_layer,
            8.0 * 151.0 * 16384.0 + 4.0 * 151.0 * 128.0 * 512.0 + 4.0 * 151.0 * 151.0 * 128.0
        );
        assert!((per_layer / 1e6 - 71.05).abs() < 0.01, "{per_layer}");
        // Sample level at 1024 slots: 0.9395 GFLOP per layer, 8 layers = 7.5 GFLOP.
        let sample = sample_flops(&c, ModelKind::Predictor, 1024);
        assert!((sample / 1e9 - 7.516).abs() < 0.01, "{sample}");
        // 153.1 GFLOP per sample of 1024 ASVs without the cache.
        let total = forward_flops(&c, ModelKind::Predictor, &[1024], 1024);
        assert!((total / 1e9 - 153.1).abs() < 0.1, "{total}");
    }
}
