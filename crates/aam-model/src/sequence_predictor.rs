//! Sequence predictor (reference `SequencePredictor`, spec §3.8): the base model plus a
//! count head and a target head reading the per-ASV sample embeddings.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::attention_pooling::AttentionPooling;
use crate::config::{ModelConfig, Stack};
use crate::sequence_encoder::{EncoderOutput, SequenceEncoder};
use crate::transformer::TransformerStack;
use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

pub use aam_config::architecture::BASE_PREFIX;

/// The fine-tuned model.
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
    /// `target_head` `Linear(D → out_dim)`.
    pub target_head: Linear<B>,
    is_classifier: bool,
}

/// Predictor outputs (reference names).
#[derive(Debug, Clone)]
pub struct PredictorOutput<B: Backend> {
    /// `target_prediction` `[batch, out_dim]`: standardized value, or class log-probabilities.
    pub target_prediction: Tensor<B, 2>,
    /// `count_prediction` `[batch, n_asv, 1]` (unbounded; trained on log1p relative abundance).
    pub count_prediction: Tensor<B, 3>,
    /// The base model's outputs (`embeddings`, `base_embeddings`, `nuc_predictions`, …).
    pub base: EncoderOutput<B>,
}

impl<B: Backend> SequencePredictor<B> {
    /// Freshly initialised predictor (base included).
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        Self::with_base(SequenceEncoder::new(c, device), c, device)
    }

    /// A predictor with fresh heads on top of `base` (e.g. a pretrained encoder).
    pub fn with_base(base: SequenceEncoder<B>, c: &ModelConfig, device: &B::Device) -> Self {
        let d = c.embedding_dim;
        SequencePredictor {
            base_model: base,
            count_encoder: TransformerStack::new(&c.stack(Stack::Count), device),
            count_head: LinearConfig::new(d, 1).init(device),
            target_encoder: TransformerStack::new(&c.stack(Stack::Target), device),
            target_pooling: AttentionPooling::new(d, device),
            target_head: LinearConfig::new(d, c.out_dim).init(device),
            is_classifier: c.is_classifier,
        }
    }

    /// Loads a predictor state dict (reference key names).
    pub fn load(w: &WeightMap, c: &ModelConfig, device: &B::Device) -> Result<Self, WeightError> {
        let d = c.embedding_dim;
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
            target_head: load_linear(w, "target_head", d, c.out_dim, true, device)?,
            is_classifier: c.is_classifier,
        })
    }

    /// Writes the state dict with reference key names.
    pub fn save(&self, sink: &mut WeightSink) {
        self.base_model.save(BASE_PREFIX, sink);
        self.count_encoder.save("count_encoder", sink);
        save_linear(&self.count_head, "count_head", sink);
        self.target_encoder.save("target_encoder", sink);
        self.target_pooling.save("target_pooling", sink);
        save_linear(&self.target_head, "target_head", sink);
    }

    /// `tokens`: int `[batch, n_asv, max_bp + 1]`; `counts`: read counts float32
    /// `[batch, n_asv, 1]`, needed when the base model has a count embedding
    /// ([`SequenceEncoder::uses_counts`]).
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> PredictorOutput<B> {
        self.heads(self.base_model.forward(tokens, counts))
    }

    /// [`SequencePredictor::forward`] in training with nucleotide masking: `unmasked`
    /// int `[batch, n_asv, max_bp + 1]` are `tokens` before masking, read by the k-mer
    /// embedding (see [`crate::asv_encoder::AsvEncoder::forward_masked`]).
    pub fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
    ) -> PredictorOutput<B> {
        self.heads(self.base_model.forward_masked(tokens, unmasked, counts))
    }

    /// [`SequencePredictor::forward`] from the ASV embeddings `[batch, n_asv, D]` and
    /// `asv_mask` `[batch, n_asv]` and the read counts `[batch, n_asv, 1]` (see
    /// [`SequenceEncoder::forward_from_asv_embeddings`]).
    pub fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
    ) -> PredictorOutput<B> {
        self.heads(
            self.base_model
                .forward_from_asv_embeddings(asv_embeddings, asv_mask, counts),
        )
    }

    fn heads(&self, base: EncoderOutput<B>) -> PredictorOutput<B> {
        let s = base.sample_embeddings.clone();
        let mask = base.asv_mask.clone();
        let count_prediction = self
            .count_head
            .forward(self.count_encoder.forward(s.clone(), mask.clone()));
        let target_prediction = self.target_with_bias(s, mask, base.pooling_bias.clone());
        PredictorOutput {
            target_prediction,
            count_prediction,
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
    /// abundance-weighted pooling ([`SequenceEncoder::pooling_bias`]).
    pub fn target_with_bias(
        &self,
        sample_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        pooling_bias: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        let t = self
            .target_encoder
            .forward(sample_embeddings, asv_mask.clone());
        let target = self
            .target_head
            .forward(
                self.target_pooling
                    .forward_with_bias(t, asv_mask, pooling_bias),
            );
        if self.is_classifier {
            log_softmax(target, 1)
        } else {
            target
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
