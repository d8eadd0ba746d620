//! Perceiver fusion (reference `perceiver_fusion`, spec §3.11 "Fusion `perceiver`"): in
//! place of the target transformer and pooling, learned latents read the ASVs and the
//! category token, so the categories shape what the head attends to.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::attention::SelfAttention;
use crate::config::{Activation, AttentionKind, MixedPrecision, ModelConfig, StackConfig};
use crate::encoder_layer::{EncoderLayer, LAYER_NORM_EPS};
use crate::transformer::key_bias;
use crate::weights::{
    load_layer_norm, load_linear, save_layer_norm, save_linear, WeightError, WeightMap, WeightSink,
    WeightTensors,
};

/// `seq_projection` and `cat_projection` `Linear(· → D)` build the tokens `[s ; c]`
/// `[batch, n_asv + 1, D]`; `latents` `[n_lat, D]` cross-attend to them (`cross_attn`;
/// empty slots masked out, except in models imported from the reference, whose
/// Perceiver attends to them) with a residual and `cross_norm`; then
/// `self_attn_layers` (pre-norm, ReLU, FFN 4·D), the mean over latents and
/// `output_projection` `Linear(D → D)`.
#[derive(Module, Debug)]
pub struct PerceiverFusion<B: Backend> {
    /// `seq_projection`.
    pub seq_projection: Linear<B>,
    /// `cat_projection`.
    pub cat_projection: Linear<B>,
    /// `latents` `[n_lat, D]`.
    pub latents: Param<Tensor<B, 2>>,
    /// `cross_attn`.
    pub cross_attn: SelfAttention<B>,
    /// `cross_norm`.
    pub cross_norm: LayerNorm<B>,
    /// `self_attn_layers`.
    pub self_attn_layers: Vec<EncoderLayer<B>>,
    /// `output_projection`.
    pub output_projection: Linear<B>,
    /// Empty ASV slots are keys of the cross-attention (the reference's behaviour).
    attends_padding: bool,
}

/// The latents' self-attention layers: PyTorch `TransformerEncoderLayer` defaults
/// (ReLU, FFN 4·D) with the model's dropout, pre-norm.
fn latent_stack(c: &ModelConfig) -> StackConfig {
    StackConfig {
        layers: c.head.perceiver_num_layers,
        heads: c.head.cross_attn_heads,
        dim: c.embedding_dim,
        ffn: 4 * c.embedding_dim,
        activation: Activation::Relu,
        dropout: c.dropout,
        attention: AttentionKind::Math,
        mixed_precision: MixedPrecision::None,
    }
}

impl<B: Backend> PerceiverFusion<B> {
    /// Freshly initialised (latents N(0, 0.02²) as the reference).
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        let d = c.embedding_dim;
        let h = &c.head;
        let stack = latent_stack(c);
        PerceiverFusion {
            seq_projection: LinearConfig::new(d, d).init(device),
            cat_projection: LinearConfig::new(h.categorical_width(), d).init(device),
            latents: Param::from_tensor(Tensor::random(
                [h.perceiver_num_latents, d],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            cross_attn: SelfAttention::new(
                d,
                h.cross_attn_heads,
                c.dropout,
                AttentionKind::Math,
                MixedPrecision::None,
                device,
            ),
            cross_norm: LayerNormConfig::new(d)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            self_attn_layers: (0..stack.layers)
                .map(|_| EncoderLayer::new(&stack, device))
                .collect(),
            output_projection: LinearConfig::new(d, d).init(device),
            attends_padding: h.perceiver_attends_padding,
        }
    }

    /// Loads the fusion under `prefix` (`perceiver_fusion`).
    ///
    /// Errors: a tensor is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let d = c.embedding_dim;
        let h = &c.head;
        let stack = latent_stack(c);
        Ok(PerceiverFusion {
            seq_projection: load_linear(
                w,
                &format!("{prefix}.seq_projection"),
                d,
                d,
                true,
                device,
            )?,
            cat_projection: load_linear(
                w,
                &format!("{prefix}.cat_projection"),
                h.categorical_width(),
                d,
                true,
                device,
            )?,
            latents: Param::from_tensor(w.tensor(
                &format!("{prefix}.latents"),
                [h.perceiver_num_latents, d],
                device,
            )?),
            cross_attn: SelfAttention::load(
                w,
                &format!("{prefix}.cross_attn"),
                d,
                h.cross_attn_heads,
                c.dropout,
                AttentionKind::Math,
                MixedPrecision::None,
                device,
            )?,
            cross_norm: load_layer_norm(
                w,
                &format!("{prefix}.cross_norm"),
                d,
                LAYER_NORM_EPS,
                device,
            )?,
            self_attn_layers: (0..stack.layers)
                .map(|i| {
                    EncoderLayer::load(w, &format!("{prefix}.self_attn_layers.{i}"), &stack, device)
                })
                .collect::<Result<_, _>>()?,
            output_projection: load_linear(
                w,
                &format!("{prefix}.output_projection"),
                d,
                d,
                true,
                device,
            )?,
            attends_padding: h.perceiver_attends_padding,
        })
    }

    /// Writes the fusion under `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        save_linear(
            &self.seq_projection,
            &format!("{prefix}.seq_projection"),
            sink,
        );
        save_linear(
            &self.cat_projection,
            &format!("{prefix}.cat_projection"),
            sink,
        );
        sink.put(&format!("{prefix}.latents"), self.latents.val());
        self.cross_attn.save(&format!("{prefix}.cross_attn"), sink);
        save_layer_norm(&self.cross_norm, &format!("{prefix}.cross_norm"), sink);
        for (i, layer) in self.self_attn_layers.iter().enumerate() {
            layer.save(&format!("{prefix}.self_attn_layers.{i}"), sink);
        }
        save_linear(
            &self.output_projection,
            &format!("{prefix}.output_projection"),
            sink,
        );
    }

    /// `s`: per-ASV sample embeddings `[batch, n_asv, D]`, `asv_mask` `[batch, n_asv]`
    /// (1 real, 0 padding), `c`: category embeddings `[batch, C]`. Returns the pooled
    /// vector `[batch, D]` and the cross-attention weights `[batch, heads, n_lat,
    /// n_asv + 1]` (the last key is the category token).
    pub fn forward(
        &self,
        s: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        c: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 4>) {
        let [batch, n_asv, d] = s.dims();
        let s_device = s.device();
        // Empty slots enter as zero vectors (the reference's base embeddings there), so
        // their keys are the projection's bias whatever the encoder left in them.
        let s = s * asv_mask.clone().reshape([batch, n_asv, 1]);
        let tokens = Tensor::cat(
            vec![
                self.seq_projection.forward(s),
                self.cat_projection.forward(c).reshape([batch, 1, d]),
            ],
            1,
        );
        let [n_lat, _] = self.latents.dims();
        let latents = self
            .latents
            .val()
            .reshape([1, n_lat, d])
            .expand([batch, n_lat, d]);
        // Empty slots are keys only in a model imported from the reference; the category
        // token always is one.
        let key_bias = (!self.attends_padding).then(|| {
            let valid = Tensor::cat(vec![asv_mask, Tensor::ones([batch, 1], &s_device)], 1);
            key_bias(valid)
        });
        let (attended, weights) = self.cross_attn.cross(latents.clone(), tokens, key_bias);
        let mut x = self.cross_norm.forward(latents + attended);
        for layer in &self.self_attn_layers {
            x = layer.forward(x, None);
        }
        let pooled = self
            .output_projection
            .forward(x.mean_dim(1).reshape([batch, d]));
        (pooled, weights)
    }
}
