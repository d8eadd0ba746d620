//! The target head (reference `target_head`, spec §3.11 "Target path" step 5): one
//! `Linear`, an MLP, or an MLP beside a linear skip connection.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::config::ModelConfig;
use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

/// `Linear(D → W)` (no hidden widths); an MLP `Sequential(Linear, ReLU[, Dropout])·k,
/// Linear` (keys `target_head.0/2/4…`, or `0/3/6…` with dropout); or, residual, that MLP
/// under `target_head.mlp` plus `target_head.skip` `Linear(D → W)`. W is
/// [`crate::config::HeadConfig::output_width`].
#[derive(Module, Debug)]
pub struct TargetHead<B: Backend> {
    /// The MLP's layers in order (one layer: the plain head).
    pub layers: Vec<Linear<B>>,
    /// `skip` of the residual head.
    pub skip: Option<Linear<B>>,
    /// Dropout after each hidden ReLU.
    dropout: f64,
    /// Each layer's key after the head's prefix (`""`, `.0`, `.mlp.3`, …).
    #[module(skip)]
    keys: Vec<String>,
}

/// The key of each `Linear` of the head's `Sequential`: with dropout every third
/// module is a `Linear`, else every second.
fn keys(c: &ModelConfig) -> Vec<String> {
    let h = &c.head;
    let stride = if h.regressor_dropout > 0.0 { 3 } else { 2 };
    let seq = if h.residual_regression_head {
        ".mlp"
    } else {
        ""
    };
    match h.regressor_hidden_dims.len() {
        0 => vec![String::new()],
        n => (0..=n).map(|i| format!("{seq}.{}", i * stride)).collect(),
    }
}

/// (in, out) of each layer.
fn widths(c: &ModelConfig) -> Vec<(usize, usize)> {
    let mut dims = vec![c.embedding_dim];
    dims.extend(&c.head.regressor_hidden_dims);
    dims.push(c.head.output_width(c.out_dim));
    dims.windows(2).map(|w| (w[0], w[1])).collect()
}

impl<B: Backend> TargetHead<B> {
    /// Freshly initialised.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        let out = c.head.output_width(c.out_dim);
        TargetHead {
            layers: widths(c)
                .into_iter()
                .map(|(i, o)| LinearConfig::new(i, o).init(device))
                .collect(),
            skip: c
                .head
                .residual_regression_head
                .then(|| LinearConfig::new(c.embedding_dim, out).init(device)),
            dropout: c.head.regressor_dropout,
            keys: keys(c),
        }
    }

    /// Loads the head at `prefix` (`target_head`).
    ///
    /// Errors: a layer is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let out = c.head.output_width(c.out_dim);
        Ok(TargetHead {
            layers: keys(c)
                .iter()
                .zip(widths(c))
                .map(|(key, (i, o))| load_linear(w, &format!("{prefix}{key}"), i, o, true, device))
                .collect::<Result<_, _>>()?,
            skip: match c.head.residual_regression_head {
                true => Some(load_linear(
                    w,
                    &format!("{prefix}.skip"),
                    c.embedding_dim,
                    out,
                    true,
                    device,
                )?),
                false => None,
            },
            dropout: c.head.regressor_dropout,
            keys: keys(c),
        })
    }

    /// Writes the head at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        for (layer, key) in self.layers.iter().zip(&self.keys) {
            save_linear(layer, &format!("{prefix}{key}"), sink);
        }
        if let Some(skip) = &self.skip {
            save_linear(skip, &format!("{prefix}.skip"), sink);
        }
    }

    /// `h`: the pooled vector `[batch, D]`. Returns `[batch, W]`.
    pub fn forward(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        let mut x = h.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = crate::dropout::dropout(relu(x), self.dropout);
            }
        }
        match &self.skip {
            Some(skip) => skip.forward(h) + x,
            None => x,
        }
    }
}
