//! Multi-head self-attention with a key-padding mask (PyTorch `nn.MultiheadAttention`,
//! batch_first, packed `in_proj` split into q, k, v).

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::config::{AttentionKind, MixedPrecision};
use crate::mixed_precision::{linear_in, to_compute, to_f32};
use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink, WeightTensors};

pub use aam_config::architecture::MASKED_SCORE;

/// `softmax(QKᵀ/√(D/H)) V` over H heads, then the output projection.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// Query projection (rows 0..D of `in_proj_weight`).
    pub query: Linear<B>,
    /// Key projection (rows D..2D).
    pub key: Linear<B>,
    /// Value projection (rows 2D..3D).
    pub value: Linear<B>,
    /// `out_proj`.
    pub output: Linear<B>,
    dropout: Dropout,
    heads: usize,
    /// Runs Burn's fused attention whenever no attention-weight dropout is drawn.
    fused: bool,
    /// Format of the projections and score products.
    mixed_precision: MixedPrecision,
}

impl<B: Backend> SelfAttention<B> {
    /// Freshly initialised attention of width `dim` with `heads` heads.
    pub fn new(
        dim: usize,
        heads: usize,
        dropout: f64,
        attention: AttentionKind,
        mixed_precision: MixedPrecision,
        device: &B::Device,
    ) -> Self {
        let lin = || LinearConfig::new(dim, dim).init(device);
        SelfAttention {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            dropout: DropoutConfig::new(dropout).init(),
            heads,
            fused: attention == AttentionKind::Fused,
            mixed_precision,
        }
    }

    /// Loads `{prefix}.in_proj_weight [3D, D]`, `in_proj_bias [3D]`, `out_proj.*`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        dim: usize,
        heads: usize,
        dropout: f64,
        attention: AttentionKind,
        mixed_precision: MixedPrecision,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let in_w: Tensor<B, 2> =
            w.tensor(&format!("{prefix}.in_proj_weight"), [3 * dim, dim], device)?;
        let in_b: Tensor<B, 1> = w.tensor(&format!("{prefix}.in_proj_bias"), [3 * dim], device)?;
        let part = |i: usize| {
            let mut lin = LinearConfig::new(dim, dim).init(device);
            lin.weight = burn::module::Param::from_tensor(
                in_w.clone()
                    .slice([i * dim..(i + 1) * dim, 0..dim])
                    .transpose(),
            );
            lin.bias = Some(burn::module::Param::from_tensor(
                in_b.clone().slice([i * dim..(i + 1) * dim]),
            ));
            lin
        };
        Ok(SelfAttention {
            query: part(0),
            key: part(1),
            value: part(2),
            output: load_linear(w, &format!("{prefix}.out_proj"), dim, dim, true, device)?,
            dropout: DropoutConfig::new(dropout).init(),
            heads,
            fused: attention == AttentionKind::Fused,
            mixed_precision,
        })
    }

    /// Writes the packed PyTorch layout back.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        let ws = [&self.query, &self.key, &self.value].map(|l| l.weight.val().transpose());
        let bs = [&self.query, &self.key, &self.value].map(|l| {
            l.bias
                .as_ref()
                .expect("attention projections have a bias")
                .val()
        });
        sink.put(
            &format!("{prefix}.in_proj_weight"),
            Tensor::cat(ws.to_vec(), 0),
        );
        sink.put(
            &format!("{prefix}.in_proj_bias"),
            Tensor::cat(bs.to_vec(), 0),
        );
        save_linear(&self.output, &format!("{prefix}.out_proj"), sink);
    }

    /// `x`: `[n, t, D]` in the compute format (f32, or bf16/fp16 under mixed
    /// precision); `key_bias`: `[n, 1, 1, t]` f32, 0 at valid keys and
    /// [`MASKED_SCORE`] at padding, or `None` when every key is valid (the broadcast
    /// add over the `[n, heads, t, t]` scores is then skipped). Returns `[n, t, D]` in
    /// the compute format.
    pub fn forward(&self, x: Tensor<B, 3>, key_bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let [n, t, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        let p = self.mixed_precision;
        let split = |y: Tensor<B, 3>| y.reshape([n, t, h, dh]).swap_dims(1, 2);
        let q = split(linear_in(&self.query, x.clone(), p));
        let k = split(linear_in(&self.key, x.clone(), p));
        let v = split(linear_in(&self.value, x, p));
        let dropout_drawn = self.dropout.prob > 0.0 && B::ad_enabled(&q.device());
        // The fused kernels take a boolean key mask (an additive bias sends Burn's GPU
        // backends to the unfused ops). A row whose keys are all padding (a sample
        // without ASVs) would get zeros from the kernel but uniform weights on the
        // math path, so such a batch passes the bias instead.
        // Under mixed precision the math path always runs: Burn's fused-attention
        // fallback (CPU, and every autodiff step) would take the softmax in half precision.
        let fused = self.fused && !dropout_drawn && p.is_none();
        let fused_mask = key_bias.as_ref().filter(|_| fused).map(|bias| {
            let masked = bias.clone().lower_elem(MASKED_SCORE / 2.0);
            let empty_row = any_true(masked.clone().all_dim(3));
            (masked, empty_row)
        });
        let options = AttentionModuleOptions::default();
        let add_bias = |scores: Tensor<B, 4>| match &key_bias {
            Some(bias) => scores + bias.clone(),
            None => scores,
        };
        let heads_out = match fused_mask {
            None if fused && key_bias.is_none() => attention(q, k, v, None, None, options),
            Some((masked, false)) => {
                attention(q, k, v, Some(masked.expand([n, h, t, t])), None, options)
            }
            Some((_, true)) => {
                let bias = key_bias.expect("a mask came from it").expand([n, h, t, t]);
                attention(q, k, v, None, Some(bias), options)
            }
            None if !p.is_none() => {
                // Q scaled by 1/√dh before the half-precision product (as PyTorch's
                // scaled_dot_product_attention), so raw dot products cannot pass fp16's
                // 65,504; softmax in f32 (exp overflows fp16).
                let q = q.mul_scalar(1.0 / (dh as f64).sqrt());
                let scores = add_bias(to_f32(q.matmul(k.swap_dims(2, 3)), p));
                let weights = to_compute(
                    crate::dropout::dropout(softmax(scores, 3), self.dropout.prob),
                    p,
                );
                weights.matmul(v)
            }
            None => {
                let scores = add_bias(q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()));
                crate::dropout::dropout(softmax(scores, 3), self.dropout.prob).matmul(v)
            }
        };
        let out = heads_out.swap_dims(1, 2).reshape([n, t, d]);
        linear_in(&self.output, out, p)
    }
}

impl<B: Backend> SelfAttention<B> {
    /// The attention weights `softmax(QKᵀ/√dh + key_bias)` `[n, heads, t, t]` f32 (rows:
    /// queries, columns: keys; each row sums to 1, padded keys get 0), computed in f32
    /// without dropout, for inspection (`aam attention`). `x`: `[n, t, D]` f32, the
    /// layer's normalised input; `key_bias`: `[n, 1, 1, t]`.
    pub fn weights(&self, x: Tensor<B, 3>, key_bias: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, t, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        let split = |y: Tensor<B, 3>| y.reshape([n, t, h, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()) + key_bias;
        softmax(scores, 3)
    }
}

impl<B: Backend> SelfAttention<B> {
    /// PyTorch `nn.MultiheadAttention(query, key = value = context)` in f32 (the
    /// categorical fusions' cross-attention): `query` `[n, tq, D]`, `context`
    /// `[n, tk, D]`, `key_bias` `[n, 1, 1, tk]` (0 at valid keys, [`MASKED_SCORE`] at
    /// padding; `None`: every key valid). Returns the output `[n, tq, D]` and the
    /// attention weights `[n, heads, tq, tk]` per head (rows sum to 1; in training the
    /// output uses them after dropout, the returned ones are before it).
    pub fn cross(
        &self,
        query: Tensor<B, 3>,
        context: Tensor<B, 3>,
        key_bias: Option<Tensor<B, 4>>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [n, tq, d] = query.dims();
        let [_, tk, _] = context.dims();
        let h = self.heads;
        let dh = d / h;
        let split = |y: Tensor<B, 3>, t: usize| y.reshape([n, t, h, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(query), tq);
        let k = split(self.key.forward(context.clone()), tk);
        let v = split(self.value.forward(context), tk);
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt());
        let scores = match key_bias {
            Some(bias) => scores + bias,
            None => scores,
        };
        let weights = softmax(scores, 3);
        let out = crate::dropout::dropout(weights.clone(), self.dropout.prob)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([n, tq, d]);
        (self.output.forward(out), weights)
    }
}

/// Whether any element of a boolean tensor is true (reads one value back).
fn any_true<B: Backend, const D: usize>(t: Tensor<B, D, Bool>) -> bool {
    // Unreadable: answer true, which keeps the bias path (correct for any batch).
    t.any()
        .into_data()
        .to_vec::<bool>()
        .map_or(true, |v| v.contains(&true))
}
