//! Sequence predictor (reference `SequencePredictor`, spec §3.8): the base model plus a
//! count head and a target head reading the per-ASV sample embeddings.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::attention_pooling::AttentionPooling;
use crate::categorical_embedder::CategoricalEmbedder;
use crate::categorical_projection::CategoricalProjection;
use crate::config::{CategoricalFusion, ModelConfig, Stack};
use crate::cross_attention_fusion::CrossAttentionFusion;
use crate::encoder_layer::LAYER_NORM_EPS;
use crate::gmu::Gmu;
use crate::output_transform::OutputTransform;
use crate::perceiver_fusion::PerceiverFusion;
use crate::sequence_encoder::{EncoderOutput, SequenceEncoder};
use crate::target_head::TargetHead;
use crate::transformer::TransformerStack;
use crate::weights::{
    load_layer_norm, load_linear, save_layer_norm, save_linear, WeightError, WeightMap, WeightSink,
};

pub use aam_config::architecture::BASE_PREFIX;

/// The fine-tuned model. Beside the reference's plain head (`target_encoder`,
/// `target_pooling`, `target_head`), the options of its latest version
/// ([`crate::config::HeadConfig`]): category embeddings fused in one of five ways,
/// `target_norm`, an MLP or residual head, quantiles and output transforms.
#[derive(Module, Debug)]
pub struct SequencePredictor<B: Backend> {
    /// `base_model`.
    pub base_model: SequenceEncoder<B>,
    /// `count_encoder`.
    pub count_encoder: TransformerStack<B>,
    /// `count_head` `Linear(D → 1)`.
    pub count_head: Linear<B>,
    /// `target_encoder`.
    pub target_encoder: TransformerStack<B>,
    /// `target_pooling`.
    pub target_pooling: AttentionPooling<B>,
    /// `categorical_embedder` (a model conditioned on metadata categories).
    pub categorical_embedder: Option<CategoricalEmbedder<B>>,
    /// `categorical_projection` (`concat` and `add` fusions).
    pub categorical_projection: Option<CategoricalProjection<B>>,
    /// `cross_attn_fusion` (`cross-attention` fusion).
    pub cross_attn_fusion: Option<CrossAttentionFusion<B>>,
    /// `perceiver_fusion` (`perceiver` fusion: replaces the target transformer and pooling).
    pub perceiver_fusion: Option<PerceiverFusion<B>>,
    /// `target_norm` LayerNorm on the pooled vector.
    pub target_norm: Option<LayerNorm<B>>,
    /// `gmu` (`gmu` fusion, after `target_norm`).
    pub gmu: Option<Gmu<B>>,
    /// `target_head`.
    pub target_head: TargetHead<B>,
    /// Conditional scaling, learned scale and the output's activation.
    pub output: OutputTransform<B>,
    is_classifier: bool,
    /// A sigmoid on `count_prediction`.
    bounded_count: bool,
}

/// Predictor outputs (reference names).
#[derive(Debug, Clone)]
pub struct PredictorOutput<B: Backend> {
    /// `target_prediction` `[batch, out_dim]` (`[batch, out_dim · num_quantiles]` for a
    /// quantile model, quantiles fastest): standardized value, or class log-probabilities.
    pub target_prediction: Tensor<B, 2>,
    /// `count_prediction` `[batch, n_asv, 1]`: unbounded (trained on log1p relative
    /// abundance), or in (0, 1) with `bounded_count_prediction`.
    pub count_prediction: Tensor<B, 3>,
    /// `gmu_gate` `[batch, D]` of the `gmu` fusion.
    pub gmu_gate: Option<Tensor<B, 2>>,
    /// Attention weights of the `cross-attention` fusion (`cross_attn_weights`
    /// `[batch, heads, n_asv, 1]`) or of the `perceiver` fusion
    /// (`perceiver_attn_weights` `[batch, heads, n_latents, n_asv + 1]`).
    pub fusion_attention: Option<Tensor<B, 4>>,
    /// The base model's outputs (`embeddings`, `base_embeddings`, `nuc_predictions`, …).
    pub base: EncoderOutput<B>,
}

/// The target path's outputs before they join [`PredictorOutput`].
struct TargetOutput<B: Backend> {
    prediction: Tensor<B, 2>,
    gmu_gate: Option<Tensor<B, 2>>,
    fusion_attention: Option<Tensor<B, 4>>,
}

impl<B: Backend> SequencePredictor<B> {
    /// Freshly initialised predictor (base included).
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        Self::with_base(SequenceEncoder::new(c, device), c, device)
    }

    /// A predictor with fresh heads on top of `base` (e.g. a pretrained encoder).
    pub fn with_base(base: SequenceEncoder<B>, c: &ModelConfig, device: &B::Device) -> Self {
        let d = c.embedding_dim;
        let h = &c.head;
        let cat = h.categorical_width();
        let fusion = h.is_conditioned().then_some(h.categorical_fusion);
        SequencePredictor {
            base_model: base,
            count_encoder: TransformerStack::new(&c.stack(Stack::Count), device),
            count_head: LinearConfig::new(d, 1).init(device),
            target_encoder: TransformerStack::new(&c.stack(Stack::Target), device),
            target_pooling: AttentionPooling::new(d, device),
            categorical_embedder: CategoricalEmbedder::new(c, device),
            categorical_projection: match fusion {
                Some(f @ (CategoricalFusion::Concat | CategoricalFusion::Add)) => Some(
                    CategoricalProjection::new(d, cat, f == CategoricalFusion::Concat, device),
                ),
                _ => None,
            },
            cross_attn_fusion: (fusion == Some(CategoricalFusion::CrossAttention))
                .then(|| CrossAttentionFusion::new(d, cat, h.cross_attn_heads, c.dropout, device)),
            perceiver_fusion: (fusion == Some(CategoricalFusion::Perceiver))
                .then(|| PerceiverFusion::new(c, device)),
            target_norm: h.target_layer_norm.then(|| {
                LayerNormConfig::new(d)
                    .with_epsilon(LAYER_NORM_EPS)
                    .init(device)
            }),
            gmu: (fusion == Some(CategoricalFusion::Gmu)).then(|| Gmu::new(d, cat, device)),
            target_head: TargetHead::new(c, device),
            output: OutputTransform::new(c, device),
            is_classifier: c.is_classifier,
            bounded_count: h.bounded_count_prediction,
        }
    }

    /// Loads a predictor state dict (reference key names).
    ///
    /// Errors: a tensor the configuration calls for is missing or has the wrong shape.
    pub fn load(w: &WeightMap, c: &ModelConfig, device: &B::Device) -> Result<Self, WeightError> {
        let d = c.embedding_dim;
        let h = &c.head;
        let cat = h.categorical_width();
        let fusion = h.is_conditioned().then_some(h.categorical_fusion);
        Ok(SequencePredictor {
            base_model: SequenceEncoder::load(w, BASE_PREFIX, c, device)?,
            count_encoder: TransformerStack::load(
                w,
                "count_encoder",
                &c.stack(Stack::Count),
                device,
            )?,
            count_head: load_linear(w, "count_head", d, 1, true, device)?,
            target_encoder: TransformerStack::load(
                w,
                "target_encoder",
                &c.stack(Stack::Target),
                device,
            )?,
            target_pooling: AttentionPooling::load(w, "target_pooling", d, device)?,
            categorical_embedder: CategoricalEmbedder::load(w, "categorical_embedder", c, device)?,
            categorical_projection: match fusion {
                Some(f @ (CategoricalFusion::Concat | CategoricalFusion::Add)) => {
                    Some(CategoricalProjection::load(
                        w,
                        "categorical_projection",
                        d,
                        cat,
                        f == CategoricalFusion::Concat,
                        device,
                    )?)
                }
                _ => None,
            },
            cross_attn_fusion: match fusion {
                Some(CategoricalFusion::CrossAttention) => Some(CrossAttentionFusion::load(
                    w,
                    "cross_attn_fusion",
                    d,
                    cat,
                    h.cross_attn_heads,
                    c.dropout,
                    device,
                )?),
                _ => None,
            },
            perceiver_fusion: match fusion {
                Some(CategoricalFusion::Perceiver) => {
                    Some(PerceiverFusion::load(w, "perceiver_fusion", c, device)?)
                }
                _ => None,
            },
            target_norm: match h.target_layer_norm {
                true => Some(load_layer_norm(
                    w,
                    "target_norm",
                    d,
                    LAYER_NORM_EPS,
                    device,
                )?),
                false => None,
            },
            gmu: match fusion {
                Some(CategoricalFusion::Gmu) => Some(Gmu::load(w, "gmu", d, cat, device)?),
                _ => None,
            },
            target_head: TargetHead::load(w, "target_head", c, device)?,
            output: OutputTransform::load(w, c, device)?,
            is_classifier: c.is_classifier,
            bounded_count: h.bounded_count_prediction,
        })
    }

    /// Writes the state dict with reference key names.
    pub fn save(&self, sink: &mut WeightSink) {
        self.base_model.save(BASE_PREFIX, sink);
        self.count_encoder.save("count_encoder", sink);
        save_linear(&self.count_head, "count_head", sink);
        self.target_encoder.save("target_encoder", sink);
        self.target_pooling.save("target_pooling", sink);
        if let Some(e) = &self.categorical_embedder {
            e.save("categorical_embedder", sink);
        }
        if let Some(p) = &self.categorical_projection {
            p.save("categorical_projection", sink);
        }
        if let Some(f) = &self.cross_attn_fusion {
            f.save("cross_attn_fusion", sink);
        }
        if let Some(f) = &self.perceiver_fusion {
            f.save("perceiver_fusion", sink);
        }
        if let Some(n) = &self.target_norm {
            save_layer_norm(n, "target_norm", sink);
        }
        if let Some(g) = &self.gmu {
            g.save("gmu", sink);
        }
        self.target_head.save("target_head", sink);
        self.output.save(sink);
    }

    /// The categorical columns the model is conditioned on, in the order of
    /// `categorical_ids`' columns (empty: none).
    pub fn categorical_columns(&self) -> &[String] {
        self.categorical_embedder
            .as_ref()
            .map_or(&[], |e| e.columns())
    }

    /// `tokens`: int `[batch, n_asv, max_bp + 1]`; `counts`: read counts float32
    /// `[batch, n_asv, 1]`, needed when the base model has a count embedding
    /// ([`SequenceEncoder::uses_counts`]).
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> PredictorOutput<B> {
        self.heads(self.base_model.forward(tokens, counts), None)
    }

    /// [`SequencePredictor::forward`] of a model conditioned on metadata categories:
    /// `categorical_ids` int `[batch, columns]`, columns in the order of
    /// [`SequencePredictor::categorical_columns`], each in `0..cardinality` (0: unknown or
    /// missing). `None`: every category unknown.
    pub fn forward_with_categories(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> PredictorOutput<B> {
        self.heads(self.base_model.forward(tokens, counts), categorical_ids)
    }

    /// [`SequencePredictor::forward`] in training with nucleotide masking: `unmasked`
    /// int `[batch, n_asv, max_bp + 1]` are `tokens` before masking, read by the k-mer
    /// embedding (see [`crate::asv_encoder::AsvEncoder::forward_masked`]);
    /// `categorical_ids` as [`SequencePredictor::forward_with_categories`].
    pub fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> PredictorOutput<B> {
        self.heads(
            self.base_model.forward_masked(tokens, unmasked, counts),
            categorical_ids,
        )
    }

    /// [`SequencePredictor::forward`] from the ASV embeddings `[batch, n_asv, D]` and
    /// `asv_mask` `[batch, n_asv]` and the read counts `[batch, n_asv, 1]` (see
    /// [`SequenceEncoder::forward_from_asv_embeddings`]).
    pub fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> PredictorOutput<B> {
        self.heads(
            self.base_model
                .forward_from_asv_embeddings(asv_embeddings, asv_mask, counts),
            categorical_ids,
        )
    }

    fn heads(
        &self,
        base: EncoderOutput<B>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> PredictorOutput<B> {
        let s = base.sample_embeddings.clone();
        let mask = base.asv_mask.clone();
        let count_prediction = self
            .count_head
            .forward(self.count_encoder.forward(s.clone(), mask.clone()));
        let count_prediction = if self.bounded_count {
            sigmoid(count_prediction)
        } else {
            count_prediction
        };
        let target = self.target_path(s, mask, base.pooling_bias.clone(), categorical_ids);
        PredictorOutput {
            target_prediction: target.prediction,
            count_prediction,
            gmu_gate: target.gmu_gate,
            fusion_attention: target.fusion_attention,
            base,
        }
    }

    /// `target_prediction` `[batch, out_dim]` from the per-ASV sample embeddings
    /// `[batch, n_asv, D]` and `asv_mask` `[batch, n_asv]`.
    /// Not for a model with abundance-weighted pooling: that one needs
    /// [`SequencePredictor::target_with_bias`].
    pub fn target(&self, sample_embeddings: Tensor<B, 3>, asv_mask: Tensor<B, 2>) -> Tensor<B, 2> {
        self.target_with_bias(sample_embeddings, asv_mask, None)
    }

    /// [`SequencePredictor::target`] with the pooling score bias `[batch, n_asv]` of
    /// abundance-weighted pooling ([`SequenceEncoder::pooling_bias`]); a model
    /// conditioned on categories sees every sample's as unknown (index 0).
    pub fn target_with_bias(
        &self,
        sample_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        pooling_bias: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        self.target_path(sample_embeddings, asv_mask, pooling_bias, None)
            .prediction
    }

    /// The target path (spec §3.11 "Target path"): fusion before the target
    /// transformer (`concat`, `add`, `cross-attention`), the transformer and pooling (or
    /// the Perceiver), `target_norm`, the GMU, the head and the output transform.
    /// `categorical_ids` int `[batch, columns]`; `None` on a conditioned model: every
    /// category unknown (index 0), as a sample whose metadata lacks them.
    fn target_path(
        &self,
        s: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        pooling_bias: Option<Tensor<B, 2>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> TargetOutput<B> {
        let [batch, _, _] = s.dims();
        let ids = self.categorical_embedder.as_ref().map(|e| {
            categorical_ids
                .unwrap_or_else(|| Tensor::zeros([batch, e.columns().len()], &s.device()))
        });
        let c = match (&self.categorical_embedder, &ids) {
            (Some(e), Some(ids)) => Some(e.forward(ids.clone())),
            _ => None,
        };
        let mut fusion_attention = None;
        let s = match (&self.categorical_projection, &self.cross_attn_fusion, &c) {
            (Some(p), _, Some(c)) => p.forward(s, c.clone()),
            (_, Some(f), Some(c)) => {
                let (fused, weights) = f.forward(s, c.clone());
                fusion_attention = Some(weights);
                fused
            }
            _ => s,
        };
        let pooled = match (&self.perceiver_fusion, &c) {
            (Some(p), Some(c)) => {
                let (pooled, weights) = p.forward(s, asv_mask, c.clone());
                fusion_attention = Some(weights);
                pooled
            }
            _ => {
                let t = self.target_encoder.forward(s, asv_mask.clone());
                self.target_pooling
                    .forward_with_bias(t, asv_mask, pooling_bias)
            }
        };
        let pooled = match &self.target_norm {
            Some(n) => n.forward(pooled),
            None => pooled,
        };
        let (pooled, gmu_gate) = match (&self.gmu, &c) {
            (Some(g), Some(c)) => {
                let (fused, gate) = g.forward(pooled, c.clone());
                (fused, Some(gate))
            }
            _ => (pooled, None),
        };
        let prediction = self.output.forward(self.target_head.forward(pooled), ids);
        TargetOutput {
            prediction,
            gmu_gate,
            fusion_attention,
        }
    }

    /// `target_prediction` `[batch, out_dim]` from the ASV encoder's embeddings
    /// `[batch, n_asv, D]`, `asv_mask` `[batch, n_asv]` and, for a model with a count
    /// embedding, the read counts `[batch, n_asv, 1]`: everything after the ASV encoder,
    /// the function integrated gradients differentiates.
    pub fn target_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
    ) -> Tensor<B, 2> {
        let bias = self.base_model.pooling_bias(counts.clone());
        let s =
            self.base_model
                .sample_encoder
                .contextualize(asv_embeddings, asv_mask.clone(), counts);
        self.target_with_bias(s, asv_mask, bias)
    }

    /// Whether the target head gives class log-probabilities.
    pub fn is_classifier(&self) -> bool {
        self.is_classifier
    }
}
