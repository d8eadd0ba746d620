//! Attention weights and pooling weights of a forward pass, for inspection
//! (`aam attention`, `aam importance --method attention`). Each function reruns the
//! blocks of the model's forward pass and keeps every layer's softmax weights; the
//! weights are computed in f32 without dropout.

use burn::prelude::*;

use crate::asv_encoder::AsvEncoder;
use crate::sample_encoder::asv_mask;
use crate::sequence_encoder::SequenceEncoder;
use crate::sequence_predictor::SequencePredictor;

/// Nucleotide-level attention of ASV rows.
#[derive(Debug, Clone)]
pub struct NucleotideAttention<B: Backend> {
    /// One tensor per layer of the nucleotide stack, `[n, heads, L, L]` (query, key).
    pub layers: Vec<Tensor<B, 4>>,
    /// Attention-pooling weights over nucleotide positions, `[n, L]` (0 at padding).
    pub pooling: Tensor<B, 2>,
}

/// ASV-level attention of a batch of samples.
#[derive(Debug, Clone)]
pub struct SampleAttention<B: Backend> {
    /// 1 where the slot holds an ASV, `[batch, n_asv]`.
    pub asv_mask: Tensor<B, 2>,
    /// Each ASV-level stack by its reference name (`sample_transformer`,
    /// `encoder_transformer`, then `count_encoder`, `target_encoder` for predictors),
    /// with one `[batch, heads, n_asv, n_asv]` tensor per layer.
    pub stacks: Vec<(&'static str, Vec<Tensor<B, 4>>)>,
    /// Pooling weights over ASV slots `[batch, n_asv]` (0 at empty slots) by pooling
    /// name: `attention_pooling` (the sample embedding), then `target_pooling`
    /// (predictors: what the target head reads).
    pub pooling: Vec<(&'static str, Tensor<B, 2>)>,
}

impl<B: Backend> AsvEncoder<B> {
    /// Attention of the nucleotide stack and pooling for ASV rows `tokens` int `[n, L]`.
    pub fn attention(&self, tokens: Tensor<B, 2, Int>) -> NucleotideAttention<B> {
        let (x, mask) = self.embed(tokens);
        let (h, layers) = self.transformer.forward_with_attention(x, mask.clone());
        NucleotideAttention {
            layers,
            pooling: self.attention_pooling.weights(h, mask),
        }
    }
}

impl<B: Backend> SequenceEncoder<B> {
    /// ASV-level attention for `tokens` int `[batch, n_asv, max_bp + 1]` (and `counts`
    /// `[batch, n_asv, 1]` for a model with a count embedding), with the per-ASV sample
    /// embeddings `[batch, n_asv, D]` the heads read.
    pub fn sample_attention(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> (SampleAttention<B>, Tensor<B, 3>) {
        let [b, s, _] = tokens.dims();
        let asv_mask = asv_mask(tokens.clone());
        let encoder = &self.sample_encoder;
        let asv = encoder.asv_encoder.forward(tokens);
        let bias = self.pooling_bias(counts.clone());
        let input = encoder.stack_input(asv.embeddings, asv_mask.clone(), counts);
        let (h, sample_layers) = encoder
            .sample_transformer
            .forward_with_attention(input, asv_mask.clone());
        let sample_embeddings = h * asv_mask.clone().reshape([b, s, 1]);
        let (h, encoder_layers) = self
            .encoder_transformer
            .forward_with_attention(sample_embeddings.clone(), asv_mask.clone());
        let pooling = self
            .attention_pooling
            .weights_with_bias(h, asv_mask.clone(), bias);
        let attention = SampleAttention {
            asv_mask,
            stacks: vec![
                ("sample_transformer", sample_layers),
                ("encoder_transformer", encoder_layers),
            ],
            pooling: vec![("attention_pooling", pooling)],
        };
        (attention, sample_embeddings)
    }
}

impl<B: Backend> SequencePredictor<B> {
    /// ASV-level attention for `tokens` int `[batch, n_asv, max_bp + 1]`: the base
    /// model's stacks, then the count and target encoders and the target pooling;
    /// `counts` `[batch, n_asv, 1]` for a model with a count embedding.
    pub fn sample_attention(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> SampleAttention<B> {
        let bias = self.base_model.pooling_bias(counts.clone());
        let (mut attention, s) = self.base_model.sample_attention(tokens, counts);
        let mask = attention.asv_mask.clone();
        let (_, count_layers) = self
            .count_encoder
            .forward_with_attention(s.clone(), mask.clone());
        let (t, target_layers) = self.target_encoder.forward_with_attention(s, mask.clone());
        attention.stacks.push(("count_encoder", count_layers));
        attention.stacks.push(("target_encoder", target_layers));
        attention
            .pooling
            .push((
                "target_pooling",
                self.target_pooling.weights_with_bias(t, mask, bias),
            ));
        attention
    }
}
