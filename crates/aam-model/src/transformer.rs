//! A stack of pre-norm layers followed by one extra LayerNorm (eps 1e-6), the
//! reference `TransformerEncoder` (keys `{prefix}.encoder.layers.N.*`, `{prefix}.norm.*`).

use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::attention::MASKED_SCORE;
use crate::config::StackConfig;
use crate::encoder_layer::EncoderLayer;
use crate::weights::{load_layer_norm, save_layer_norm, WeightError, WeightMap, WeightSink};

pub use aam_config::architecture::FINAL_NORM_EPS;

/// A transformer stack.
#[derive(Module, Debug)]
pub struct TransformerStack<B: Backend> {
    /// The layers, in order.
    pub layers: Vec<EncoderLayer<B>>,
    /// The LayerNorm after the last layer.
    pub norm: LayerNorm<B>,
}

/// Turns a validity mask `[n, t]` (1 valid, 0 padding) into the additive key bias
/// `[n, 1, 1, t]` used by attention.
pub fn key_bias<B: Backend>(mask: Tensor<B, 2>) -> Tensor<B, 4> {
    let [n, t] = mask.dims();
    (mask.neg() + 1.0)
        .mul_scalar(MASKED_SCORE)
        .reshape([n, 1, 1, t])
}

impl<B: Backend> TransformerStack<B> {
    /// A freshly initialised stack.
    pub fn new(c: &StackConfig, device: &B::Device) -> Self {
        TransformerStack {
            layers: (0..c.layers)
                .map(|_| EncoderLayer::new(c, device))
                .collect(),
            norm: LayerNormConfig::new(c.dim)
                .with_epsilon(FINAL_NORM_EPS)
                .init(device),
        }
    }

    /// Loads the stack at `prefix`.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &StackConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let layers = (0..c.layers)
            .map(|i| EncoderLayer::load(w, &format!("{prefix}.encoder.layers.{i}"), c, device))
            .collect::<Result<_, _>>()?;
        Ok(TransformerStack {
            layers,
            norm: load_layer_norm(w, &format!("{prefix}.norm"), c.dim, FINAL_NORM_EPS, device)?,
        })
    }

    /// Writes the stack at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        for (i, l) in self.layers.iter().enumerate() {
            l.save(&format!("{prefix}.encoder.layers.{i}"), sink);
        }
        save_layer_norm(&self.norm, &format!("{prefix}.norm"), sink);
    }

    /// `x`: `[n, t, D]`; `mask`: `[n, t]` (1 valid, 0 padding). Padded queries are
    /// computed too (they attend to the valid keys). Returns `[n, t, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 3> {
        self.run(x, Some(key_bias(mask)))
    }

    /// [`TransformerStack::forward`] on `x` `[n, t, D]` whose every position is valid
    /// (a mask of ones): the same result without the key bias.
    pub fn forward_unpadded(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.run(x, None)
    }

    fn run(&self, x: Tensor<B, 3>, bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let mut h = x;
        for layer in &self.layers {
            h = layer.forward(h, bias.clone());
        }
        self.norm.forward(h)
    }

    /// [`TransformerStack::forward`] that also returns every layer's attention weights,
    /// one `[n, heads, t, t]` tensor per layer in order (for inspection; the weights are
    /// computed without dropout).
    pub fn forward_with_attention(
        &self,
        x: Tensor<B, 3>,
        mask: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 4>>) {
        let bias = key_bias(mask);
        let mut h = x;
        let mut weights = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            weights.push(layer.attention_weights(h.clone(), bias.clone()));
            h = layer.forward(h, Some(bias.clone()));
        }
        (self.norm.forward(h), weights)
    }
}
