//! Attention pooling (reference `AttentionPooling`, spec §3.4):
//! `α = softmax_valid(q·h_t / √D)`, `pooled = LN(Σ_t α_t h_t)` (LN eps 1e-5).
//!
//! With abundance-weighted pooling ([`abundance_bias`]) each slot's score also gets
//! `ln(count + 1)`, so `α_t ∝ (count_t + 1) · exp(q·h_t / √D)`.
//!
//! An all-padding row gets uniform weights (the masked scores are all equal), never
//! NaN. The reference also renormalises `α ⊙ m / (Σ + 1e-8)`; the masked weights are
//! exactly 0 here already, so that step changes values by ~1e-8 relative and is
//! omitted.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::attention::MASKED_SCORE;
use crate::weights::{
    load_layer_norm, load_linear, save_layer_norm, save_linear, WeightError, WeightMap, WeightSink,
};

pub use aam_config::architecture::POOLING_NORM_EPS;

/// Attention pooling over a sequence.
#[derive(Module, Debug)]
pub struct AttentionPooling<B: Backend> {
    /// `query`: `Linear(D → 1, bias=False)`.
    pub query: Linear<B>,
    /// `norm`: LayerNorm after pooling.
    pub norm: LayerNorm<B>,
    dim: usize,
}

impl<B: Backend> AttentionPooling<B> {
    /// Freshly initialised pooling of width `dim`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        AttentionPooling {
            query: LinearConfig::new(dim, 1).with_bias(false).init(device),
            norm: LayerNormConfig::new(dim)
                .with_epsilon(POOLING_NORM_EPS)
                .init(device),
            dim,
        }
    }

    /// Loads `{prefix}.query.weight`, `{prefix}.norm.*`.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        dim: usize,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(AttentionPooling {
            query: load_linear(w, &format!("{prefix}.query"), dim, 1, false, device)?,
            norm: load_layer_norm(w, &format!("{prefix}.norm"), dim, POOLING_NORM_EPS, device)?,
            dim,
        })
    }

    /// Writes the pooling at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        save_linear(&self.query, &format!("{prefix}.query"), sink);
        save_layer_norm(&self.norm, &format!("{prefix}.norm"), sink);
    }

    /// Pooling weights `[n, t]` for `h` `[n, t, D]` and `mask` `[n, t]`.
    pub fn weights(&self, h: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
        self.weights_with_bias(h, mask, None)
    }

    /// [`AttentionPooling::weights`] with `bias` `[n, t]` added to the scores before the
    /// softmax (e.g. [`abundance_bias`]).
    pub fn weights_with_bias(
        &self,
        h: Tensor<B, 3>,
        mask: Tensor<B, 2>,
        bias: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let [n, t, _] = h.dims();
        let mut scores = self
            .query
            .forward(h)
            .reshape([n, t])
            .div_scalar((self.dim as f64).sqrt());
        if let Some(bias) = bias {
            scores = scores + bias;
        }
        let scores = scores + (mask.neg() + 1.0).mul_scalar(MASKED_SCORE);
        softmax(scores, 1)
    }

    /// `h`: `[n, t, D]`, `mask`: `[n, t]` (1 valid, 0 padding). Returns `[n, D]`.
    pub fn forward(&self, h: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_with_bias(h, mask, None)
    }

    /// [`AttentionPooling::forward`] with `bias` `[n, t]` added to the pooling scores.
    pub fn forward_with_bias(
        &self,
        h: Tensor<B, 3>,
        mask: Tensor<B, 2>,
        bias: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let [n, t, d] = h.dims();
        let alpha = self
            .weights_with_bias(h.clone(), mask, bias)
            .reshape([n, 1, t]);
        let pooled = alpha.matmul(h).reshape([n, d]);
        self.norm.forward(pooled)
    }
}

/// The score bias of abundance-weighted pooling: `ln(max(count, 0) + 1)` `[batch, n_asv]`
/// from read counts float32 `[batch, n_asv, 1]`. Softmax is shift-invariant, so this
/// weights each slot by `count + 1`, its relative abundance up to the pseudo-count, and
/// a zero or negative count never gives `-inf` (or NaN) scores.
pub fn abundance_bias<B: Backend>(counts: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, s, _] = counts.dims();
    crate::count_embedding::log_counts(counts).reshape([b, s])
}
