//! What follows the target head (reference, spec §3.11 "Target path" step 7):
//! conditional output scaling per category, a learned output scale, then the output's
//! activation (log-softmax for classes, sigmoid for bounded targets, or
//! `--output-activation`). Quantile outputs skip all of it.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, sigmoid};

use crate::config::{ModelConfig, OutputActivation};
use crate::weights::{load_embedding, WeightError, WeightMap, WeightSink, WeightTensors};

/// `output_scales.<col>.weight`, `output_biases.<col>.weight` `[cardinality, out_dim]`
/// (initially 1 and 0) per scaling column; `output_scale`, `output_bias` `[out_dim]`
/// with `learnable_output_scale`.
#[derive(Module, Debug)]
pub struct OutputTransform<B: Backend> {
    /// Per scaling column: (scale table, bias table).
    pub conditional: Vec<(Embedding<B>, Embedding<B>)>,
    /// `output_scale`.
    pub output_scale: Option<Param<Tensor<B, 1>>>,
    /// `output_bias`.
    pub output_bias: Option<Param<Tensor<B, 1>>>,
    /// Scaling columns with their index in `categorical_ids`.
    #[module(skip)]
    columns: Vec<(String, usize)>,
    #[module(skip)]
    activation: Activation,
}

/// The last step on the output.
#[derive(Debug, Clone, Copy)]
enum Activation {
    /// Quantiles: nothing at all (the scaling steps are skipped too).
    Quantiles,
    LogSoftmax,
    Sigmoid,
    Regression(OutputActivation),
}

fn activation(c: &ModelConfig) -> Activation {
    if c.head.num_quantiles.is_some() {
        Activation::Quantiles
    } else if c.is_classifier {
        Activation::LogSoftmax
    } else if c.head.bounded_targets {
        Activation::Sigmoid
    } else {
        Activation::Regression(c.head.output_activation)
    }
}

fn scaling_columns(c: &ModelConfig) -> Vec<(String, usize)> {
    let names = c.head.categorical_columns();
    c.head
        .conditional_scaling_columns
        .iter()
        .filter_map(|col| Some((col.clone(), names.iter().position(|n| n == col)?)))
        .collect()
}

impl<B: Backend> OutputTransform<B> {
    /// Freshly initialised (scales 1, biases 0).
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        let out = c.out_dim;
        let columns = scaling_columns(c);
        let table = |card: usize, value: f32| {
            let mut e = EmbeddingConfig::new(card, out).init(device);
            e.weight = Param::from_tensor(Tensor::full([card, out], value, device));
            e
        };
        OutputTransform {
            conditional: columns
                .iter()
                .map(|(col, _)| {
                    let card = c.head.categorical_cardinalities[col];
                    (table(card, 1.0), table(card, 0.0))
                })
                .collect(),
            output_scale: c
                .head
                .learnable_output_scale
                .then(|| Param::from_tensor(Tensor::ones([out], device))),
            output_bias: c
                .head
                .learnable_output_scale
                .then(|| Param::from_tensor(Tensor::zeros([out], device))),
            columns,
            activation: activation(c),
        }
    }

    /// Loads the tables and scales (keys at the top level of the predictor).
    ///
    /// Errors: a tensor is missing or has the wrong shape.
    pub fn load(w: &WeightMap, c: &ModelConfig, device: &B::Device) -> Result<Self, WeightError> {
        let out = c.out_dim;
        let columns = scaling_columns(c);
        let conditional = columns
            .iter()
            .map(|(col, _)| {
                let card = c.head.categorical_cardinalities[col];
                Ok((
                    load_embedding(w, &format!("output_scales.{col}.weight"), card, out, device)?,
                    load_embedding(w, &format!("output_biases.{col}.weight"), card, out, device)?,
                ))
            })
            .collect::<Result<_, WeightError>>()?;
        let param = |key: &str| -> Result<_, WeightError> {
            Ok(match c.head.learnable_output_scale {
                true => Some(Param::from_tensor(w.tensor(key, [out], device)?)),
                false => None,
            })
        };
        Ok(OutputTransform {
            conditional,
            output_scale: param("output_scale")?,
            output_bias: param("output_bias")?,
            columns,
            activation: activation(c),
        })
    }

    /// Writes the tables and scales.
    pub fn save(&self, sink: &mut WeightSink) {
        for ((scale, bias), (col, _)) in self.conditional.iter().zip(&self.columns) {
            sink.put(&format!("output_scales.{col}.weight"), scale.weight.val());
            sink.put(&format!("output_biases.{col}.weight"), bias.weight.val());
        }
        if let (Some(scale), Some(bias)) = (&self.output_scale, &self.output_bias) {
            sink.put("output_scale", scale.val());
            sink.put("output_bias", bias.val());
        }
    }

    /// `y`: the head's output `[batch, W]`; `categorical_ids` int `[batch, columns]`
    /// (read by conditional scaling). Returns `[batch, W]`: class log-probabilities,
    /// or the regression value after scaling and activation, or the quantiles as they are.
    pub fn forward(
        &self,
        y: Tensor<B, 2>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 2> {
        if let Activation::Quantiles = self.activation {
            return y;
        }
        let [batch, out] = y.dims();
        let mut y = y;
        if let Some(ids) = categorical_ids {
            for ((scale, bias), (_, index)) in self.conditional.iter().zip(&self.columns) {
                let id = ids.clone().slice([0..batch, *index..*index + 1]);
                y = y * scale.forward(id.clone()).reshape([batch, out])
                    + bias.forward(id).reshape([batch, out]);
            }
        }
        if let (Some(scale), Some(bias)) = (&self.output_scale, &self.output_bias) {
            y = y * scale.val().reshape([1, out]) + bias.val().reshape([1, out]);
        }
        match self.activation {
            Activation::Quantiles => y,
            Activation::LogSoftmax => log_softmax(y, 1),
            Activation::Sigmoid => sigmoid(y),
            Activation::Regression(OutputActivation::None) => y,
            Activation::Regression(OutputActivation::Relu) => relu(y),
            Activation::Regression(OutputActivation::Softplus) => stable_softplus(y),
            Activation::Regression(OutputActivation::Exp) => y.exp(),
        }
    }
}

/// `ln(1 + e^y)` computed as `max(y, 0) + ln(1 + e^(-|y|))`, as torch does: Burn's
/// `softplus` is `ln(e^y + 1)`, which is infinite for `y > 88` and exactly 0 for
/// `y < -17` in f32, where the function is `≈ y` and `≈ e^y > 0`.
fn stable_softplus<B: Backend>(y: Tensor<B, 2>) -> Tensor<B, 2> {
    relu(y.clone()) + y.abs().neg().exp().log1p()
}
