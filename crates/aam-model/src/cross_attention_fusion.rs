//! The `cross-attention` categorical fusion (reference `cross_attn_fusion`, spec §3.11):
//! every ASV's sample embedding attends to one category token. With a single key every
//! query gets the same attention output, so it acts as a learned per-sample shift.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::attention::SelfAttention;
use crate::config::{AttentionKind, MixedPrecision};
use crate::encoder_layer::LAYER_NORM_EPS;
use crate::weights::{
    load_layer_norm, load_linear, save_layer_norm, save_linear, WeightError, WeightMap, WeightSink,
};

/// `LN(s + MHA(q = s, k = v = Linear(C → D)(c)))`: `projection`, `attention`, `norm`
/// under `cross_attn_fusion` (the reference's inner names are not recorded; these are
/// aam's).
#[derive(Module, Debug)]
pub struct CrossAttentionFusion<B: Backend> {
    /// `projection` `Linear(C → D)`.
    pub projection: Linear<B>,
    /// `attention`.
    pub attention: SelfAttention<B>,
    /// `norm`.
    pub norm: LayerNorm<B>,
}

impl<B: Backend> CrossAttentionFusion<B> {
    /// Freshly initialised.
    pub fn new(
        dim: usize,
        cat_width: usize,
        heads: usize,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        CrossAttentionFusion {
            projection: LinearConfig::new(cat_width, dim).init(device),
            attention: SelfAttention::new(
                dim,
                heads,
                dropout,
                AttentionKind::Math,
                MixedPrecision::None,
                device,
            ),
            norm: LayerNormConfig::new(dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
        }
    }

    /// Loads the fusion under `prefix`.
    ///
    /// Errors: a tensor is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        dim: usize,
        cat_width: usize,
        heads: usize,
        dropout: f64,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(CrossAttentionFusion {
            projection: load_linear(
                w,
                &format!("{prefix}.projection"),
                cat_width,
                dim,
                true,
                device,
            )?,
            attention: SelfAttention::load(
                w,
                &format!("{prefix}.attention"),
                dim,
                heads,
                dropout,
                AttentionKind::Math,
                MixedPrecision::None,
                device,
            )?,
            norm: load_layer_norm(w, &format!("{prefix}.norm"), dim, LAYER_NORM_EPS, device)?,
        })
    }

    /// Writes the fusion under `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        save_linear(&self.projection, &format!("{prefix}.projection"), sink);
        self.attention.save(&format!("{prefix}.attention"), sink);
        save_layer_norm(&self.norm, &format!("{prefix}.norm"), sink);
    }

    /// `s`: `[batch, n_asv, D]`, `c`: `[batch, C]`. Returns `[batch, n_asv, D]` and the
    /// attention weights `[batch, heads, n_asv, 1]` (all 1: one key).
    pub fn forward(&self, s: Tensor<B, 3>, c: Tensor<B, 2>) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [batch, _, d] = s.dims();
        let token = self.projection.forward(c).reshape([batch, 1, d]);
        let (attended, weights) = self.attention.cross(s.clone(), token, None);
        (self.norm.forward(s + attended), weights)
    }
}
