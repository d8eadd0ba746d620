//! Gated multimodal unit (reference `gmu`, spec §3.11 "Fusion `gmu`"): mixes the
//! category embeddings into the pooled target vector through a learned gate.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

/// `h + σ(W_g [h ; c] + b_g) ⊙ tanh(W_c c + b_c)`: `gate` `Linear(D + C → D)`,
/// `cat_transform` `Linear(C → D)`.
#[derive(Module, Debug)]
pub struct Gmu<B: Backend> {
    /// `gate`.
    pub gate: Linear<B>,
    /// `cat_transform`.
    pub cat_transform: Linear<B>,
}

impl<B: Backend> Gmu<B> {
    /// Freshly initialised for width `dim` and category width `cat_width`.
    pub fn new(dim: usize, cat_width: usize, device: &B::Device) -> Self {
        Gmu {
            gate: LinearConfig::new(dim + cat_width, dim).init(device),
            cat_transform: LinearConfig::new(cat_width, dim).init(device),
        }
    }

    /// Loads `{prefix}.gate`, `{prefix}.cat_transform`.
    ///
    /// Errors: a layer is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        dim: usize,
        cat_width: usize,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(Gmu {
            gate: load_linear(
                w,
                &format!("{prefix}.gate"),
                dim + cat_width,
                dim,
                true,
                device,
            )?,
            cat_transform: load_linear(
                w,
                &format!("{prefix}.cat_transform"),
                cat_width,
                dim,
                true,
                device,
            )?,
        })
    }

    /// Writes the layers under `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        save_linear(&self.gate, &format!("{prefix}.gate"), sink);
        save_linear(
            &self.cat_transform,
            &format!("{prefix}.cat_transform"),
            sink,
        );
    }

    /// `h`: the pooled vector `[batch, D]`; `c`: the category embeddings `[batch, C]`.
    /// Returns the fused vector `[batch, D]` and the gate `[batch, D]` (in (0, 1)).
    pub fn forward(&self, h: Tensor<B, 2>, c: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let gate = sigmoid(
            self.gate
                .forward(Tensor::cat(vec![h.clone(), c.clone()], 1)),
        );
        let fused = h + gate.clone() * self.cat_transform.forward(c).tanh();
        (fused, gate)
    }
}
