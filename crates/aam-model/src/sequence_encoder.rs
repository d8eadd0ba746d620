//! Sequence encoder (reference `SequenceEncoder`, spec §3.7): the pretrained base.
//! Sample encoder → encoder transformer → attention pooling → sample embedding
//! (`unifrac`) or a linear head (`faith_pd`, `taxonomy`).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::attention_pooling::{abundance_bias, AttentionPooling};
use crate::config::{ModelConfig, Stack};
use crate::sample_encoder::SampleEncoder;
use crate::transformer::TransformerStack;
use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

/// The base model.
#[derive(Module, Debug)]
pub struct SequenceEncoder<B: Backend> {
    /// `sample_encoder`.
    pub sample_encoder: SampleEncoder<B>,
    /// `encoder_transformer`.
    pub encoder_transformer: TransformerStack<B>,
    /// `attention_pooling` to the sample embedding.
    pub attention_pooling: AttentionPooling<B>,
    /// `output_head` for `faith_pd` / `taxonomy`.
    pub output_head: Option<Linear<B>>,
    /// [`ModelConfig::abundance_pooling`]: the poolings to the sample embedding and to the
    /// target add [`abundance_bias`] to their scores.
    pub abundance_pooling: bool,
}

/// Base model outputs.
#[derive(Debug, Clone)]
pub struct EncoderOutput<B: Backend> {
    /// Pooled sample embedding `[batch, D]` (UniFrac distances are computed on it).
    pub embeddings: Tensor<B, 2>,
    /// Per-ASV sample embeddings `[batch, n_asv, D]` (`base_embeddings`).
    pub sample_embeddings: Tensor<B, 3>,
    /// 1 where the slot holds an ASV, `[batch, n_asv]`.
    pub asv_mask: Tensor<B, 2>,
    /// Base head output `[batch, base_output_dim]` for `faith_pd` / `taxonomy`.
    pub base_prediction: Option<Tensor<B, 2>>,
    /// Nucleotide logits `[batch, n_asv, L, V]`.
    pub nuc_predictions: Option<Tensor<B, 4>>,
    /// The pooling score bias `[batch, n_asv]` of abundance-weighted pooling
    /// ([`abundance_bias`]), for the predictor's target pooling; `None` without it.
    pub pooling_bias: Option<Tensor<B, 2>>,
}

impl<B: Backend> SequenceEncoder<B> {
    /// Freshly initialised base model.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        SequenceEncoder {
            sample_encoder: SampleEncoder::new(c, device),
            encoder_transformer: TransformerStack::new(&c.stack(Stack::Encoder), device),
            attention_pooling: AttentionPooling::new(c.embedding_dim, device),
            output_head: c
                .base_output_dim()
                .map(|k| LinearConfig::new(c.embedding_dim, k).init(device)),
            abundance_pooling: c.abundance_pooling,
        }
    }

    /// Loads the base model whose keys start with `prefix` (`""` for a pretrained
    /// encoder file, `"base_model."` inside a predictor).
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(SequenceEncoder {
            sample_encoder: SampleEncoder::load(w, &format!("{prefix}sample_encoder"), c, device)?,
            encoder_transformer: TransformerStack::load(
                w,
                &format!("{prefix}encoder_transformer"),
                &c.stack(Stack::Encoder),
                device,
            )?,
            attention_pooling: AttentionPooling::load(
                w,
                &format!("{prefix}attention_pooling"),
                c.embedding_dim,
                device,
            )?,
            output_head: match c.base_output_dim() {
                Some(k) => Some(load_linear(
                    w,
                    &format!("{prefix}output_head"),
                    c.embedding_dim,
                    k,
                    true,
                    device,
                )?),
                None => None,
            },
            abundance_pooling: c.abundance_pooling,
        })
    }

    /// Writes the base model with key prefix `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        self.sample_encoder
            .save(&format!("{prefix}sample_encoder"), sink);
        self.encoder_transformer
            .save(&format!("{prefix}encoder_transformer"), sink);
        self.attention_pooling
            .save(&format!("{prefix}attention_pooling"), sink);
        if let Some(h) = &self.output_head {
            save_linear(h, &format!("{prefix}output_head"), sink);
        }
    }

    /// `tokens`: int `[batch, n_asv, max_bp + 1]`; `counts`: read counts float32
    /// `[batch, n_asv, 1]`, needed when [`SequenceEncoder::uses_counts`].
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> EncoderOutput<B> {
        self.forward_masked(tokens, None, counts)
    }

    /// [`SequenceEncoder::forward`] in training with nucleotide masking: `unmasked` int
    /// `[batch, n_asv, max_bp + 1]` are `tokens` before masking, read by the k-mer
    /// embedding (see [`crate::asv_encoder::AsvEncoder::forward_masked`]).
    pub fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
    ) -> EncoderOutput<B> {
        let bias = self.pooling_bias(counts.clone());
        let s = self.sample_encoder.forward_masked(tokens, unmasked, counts);
        self.after_sample_encoder(s.sample_embeddings, s.asv_mask, s.nuc_logits, bias)
    }

    /// [`SequenceEncoder::forward`] from the ASV embeddings `[batch, n_asv, D]` (the ASV
    /// encoder's output, e.g. from a cache), `asv_mask` `[batch, n_asv]` and the read
    /// counts `[batch, n_asv, 1]` (see [`SequenceEncoder::forward`]); no nucleotide
    /// logits.
    pub fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
    ) -> EncoderOutput<B> {
        let bias = self.pooling_bias(counts.clone());
        let s = self
            .sample_encoder
            .contextualize(asv_embeddings, asv_mask.clone(), counts);
        self.after_sample_encoder(s, asv_mask, None, bias)
    }

    /// Whether the forward pass reads read counts (a count embedding or
    /// abundance-weighted pooling).
    pub fn uses_counts(&self) -> bool {
        self.sample_encoder.uses_counts() || self.abundance_pooling
    }

    /// The pooling score bias `[batch, n_asv]` of abundance-weighted pooling from the
    /// read counts `[batch, n_asv, 1]`; `None` without it.
    ///
    /// Panics when the model pools by abundance and `counts` is `None` (as
    /// [`crate::sample_encoder::SampleEncoder::stack_input`]: callers check first).
    pub fn pooling_bias(&self, counts: Option<Tensor<B, 3>>) -> Option<Tensor<B, 2>> {
        self.abundance_pooling.then(|| {
            abundance_bias(counts.expect(
                "this model pools by abundance: its forward pass needs the read counts",
            ))
        })
    }

    fn after_sample_encoder(
        &self,
        sample_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        nuc_predictions: Option<Tensor<B, 4>>,
        pooling_bias: Option<Tensor<B, 2>>,
    ) -> EncoderOutput<B> {
        let h = self
            .encoder_transformer
            .forward(sample_embeddings.clone(), asv_mask.clone());
        let embeddings =
            self.attention_pooling
                .forward_with_bias(h, asv_mask.clone(), pooling_bias.clone());
        let base_prediction = self
            .output_head
            .as_ref()
            .map(|head| head.forward(embeddings.clone()));
        EncoderOutput {
            embeddings,
            sample_embeddings,
            asv_mask,
            base_prediction,
            nuc_predictions,
            pooling_bias,
        }
    }
}
