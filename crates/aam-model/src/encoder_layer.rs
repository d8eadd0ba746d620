//! One pre-norm transformer encoder layer (PyTorch `TransformerEncoderLayer`,
//! `norm_first=True`, LayerNorm eps 1e-5):
//! `y = x + Drop(MHA(LN1(x)))`, `z = y + Drop(W2 · Drop(act(W1 · LN2(y))))`.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, relu};

use crate::attention::SelfAttention;
use crate::config::{Activation, MixedPrecision, StackConfig};
use crate::mixed_precision::{linear_in, to_compute, to_f32};
use crate::weights::{
    load_layer_norm, load_linear, save_layer_norm, save_linear, WeightError, WeightMap, WeightSink,
};

pub use aam_config::architecture::LAYER_NORM_EPS;

/// A pre-norm encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    /// Self-attention (`self_attn`).
    pub self_attn: SelfAttention<B>,
    /// `linear1` (D → F).
    pub linear1: Linear<B>,
    /// `linear2` (F → D).
    pub linear2: Linear<B>,
    /// `norm1` before attention.
    pub norm1: LayerNorm<B>,
    /// `norm2` before the feed-forward block.
    pub norm2: LayerNorm<B>,
    dropout: Dropout,
    activation: Activation,
    /// Format of the attention and feed-forward blocks (residual sums stay f32).
    mixed_precision: MixedPrecision,
}

impl<B: Backend> EncoderLayer<B> {
    /// A freshly initialised layer.
    pub fn new(c: &StackConfig, device: &B::Device) -> Self {
        EncoderLayer {
            self_attn: SelfAttention::new(
                c.dim,
                c.heads,
                c.dropout,
                c.attention,
                c.mixed_precision,
                device,
            ),
            linear1: LinearConfig::new(c.dim, c.ffn).init(device),
            linear2: LinearConfig::new(c.ffn, c.dim).init(device),
            norm1: LayerNormConfig::new(c.dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            norm2: LayerNormConfig::new(c.dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            dropout: DropoutConfig::new(c.dropout).init(),
            activation: c.activation,
            mixed_precision: c.mixed_precision,
        }
    }

    /// Loads the layer at `prefix` (e.g. `…encoder.layers.0`).
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &StackConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(EncoderLayer {
            self_attn: SelfAttention::load(
                w,
                &format!("{prefix}.self_attn"),
                c.dim,
                c.heads,
                c.dropout,
                c.attention,
                c.mixed_precision,
                device,
            )?,
            linear1: load_linear(w, &format!("{prefix}.linear1"), c.dim, c.ffn, true, device)?,
            linear2: load_linear(w, &format!("{prefix}.linear2"), c.ffn, c.dim, true, device)?,
            norm1: load_layer_norm(w, &format!("{prefix}.norm1"), c.dim, LAYER_NORM_EPS, device)?,
            norm2: load_layer_norm(w, &format!("{prefix}.norm2"), c.dim, LAYER_NORM_EPS, device)?,
            dropout: DropoutConfig::new(c.dropout).init(),
            activation: c.activation,
            mixed_precision: c.mixed_precision,
        })
    }

    /// Writes the layer at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        self.self_attn.save(&format!("{prefix}.self_attn"), sink);
        save_linear(&self.linear1, &format!("{prefix}.linear1"), sink);
        save_linear(&self.linear2, &format!("{prefix}.linear2"), sink);
        save_layer_norm(&self.norm1, &format!("{prefix}.norm1"), sink);
        save_layer_norm(&self.norm2, &format!("{prefix}.norm2"), sink);
    }

    /// `x`: `[n, t, D]` f32, `key_bias`: `[n, 1, 1, t]` f32 (`None`: no key is padding).
    /// Returns `[n, t, D]` f32;
    /// under mixed precision the two blocks compute in half precision between the
    /// LayerNorm and the residual sum.
    pub fn forward(&self, x: Tensor<B, 3>, key_bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let p = self.mixed_precision;
        let attended = self
            .self_attn
            .forward(to_compute(self.norm1.forward(x.clone()), p), key_bias);
        let y = x + crate::dropout::dropout(to_f32(attended, p), self.dropout.prob);
        let hidden = linear_in(
            &self.linear1,
            to_compute(self.norm2.forward(y.clone()), p),
            p,
        );
        let hidden = match self.activation {
            Activation::Gelu => gelu(hidden),
            Activation::Relu => relu(hidden),
        };
        let out = linear_in(
            &self.linear2,
            crate::dropout::dropout(hidden, self.dropout.prob),
            p,
        );
        y + crate::dropout::dropout(to_f32(out, p), self.dropout.prob)
    }

    /// The layer's attention weights `[n, heads, t, t]` for input `x` `[n, t, D]`
    /// (see [`SelfAttention::weights`]).
    pub fn attention_weights(&self, x: Tensor<B, 3>, key_bias: Tensor<B, 4>) -> Tensor<B, 4> {
        self.self_attn.weights(self.norm1.forward(x), key_bias)
    }
}
