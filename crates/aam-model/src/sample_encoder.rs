//! Sample encoder (reference `SampleSequenceEncoder`, spec §3.6): ASV embeddings plus
//! an ASV-slot position embedding through the ASV-level transformer.

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

use crate::asv_encoder::AsvEncoder;
use crate::config::{ModelConfig, Stack};
use crate::count_embedding::CountEmbedding;
use crate::transformer::TransformerStack;
use crate::weights::{load_embedding, WeightError, WeightMap, WeightSink};

pub use aam_config::architecture::SAMPLE_POSITION_EXTRA;

/// 1 where a slot of `tokens` int `[batch, n_asv, L]` holds an ASV (any nucleotide),
/// `[batch, n_asv]` f32.
pub fn asv_mask<B: Backend>(tokens: Tensor<B, 3, Int>) -> Tensor<B, 2> {
    let [b, s, _] = tokens.dims();
    tokens.sum_dim(2).greater_elem(0).float().reshape([b, s])
}

/// ASV-level encoder of a sample.
#[derive(Module, Debug)]
pub struct SampleEncoder<B: Backend> {
    /// `asv_encoder`.
    pub asv_encoder: AsvEncoder<B>,
    /// `sample_position_embedding.position_embedding` `[token_limit + 5, D]`.
    pub sample_position_embedding: Embedding<B>,
    /// `sample_transformer`.
    pub sample_transformer: TransformerStack<B>,
    /// `count_embed` / `count_proj` / `count_film`, when the model reads counts.
    pub count_embedding: Option<CountEmbedding<B>>,
}

/// Sample encoder outputs.
#[derive(Debug, Clone)]
pub struct SampleEncoding<B: Backend> {
    /// Per-ASV sample embeddings `[batch, n_asv, D]`, zero on empty slots.
    pub sample_embeddings: Tensor<B, 3>,
    /// 1 where the slot holds an ASV, `[batch, n_asv]`.
    pub asv_mask: Tensor<B, 2>,
    /// Nucleotide logits `[batch, n_asv, L, V]`, when the head exists.
    pub nuc_logits: Option<Tensor<B, 4>>,
}

impl<B: Backend> SampleEncoder<B> {
    /// Freshly initialised encoder.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        SampleEncoder {
            asv_encoder: AsvEncoder::new(c, device),
            sample_position_embedding: EmbeddingConfig::new(
                c.token_limit + SAMPLE_POSITION_EXTRA,
                c.embedding_dim,
            )
            .init(device),
            sample_transformer: TransformerStack::new(&c.stack(Stack::Sample), device),
            count_embedding: CountEmbedding::new(c, device),
        }
    }

    /// Loads the encoder at `prefix` (e.g. `sample_encoder`).
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        Ok(SampleEncoder {
            asv_encoder: AsvEncoder::load(w, &format!("{prefix}.asv_encoder"), c, device)?,
            sample_position_embedding: load_embedding(
                w,
                &format!("{prefix}.sample_position_embedding.position_embedding.weight"),
                c.token_limit + SAMPLE_POSITION_EXTRA,
                c.embedding_dim,
                device,
            )?,
            sample_transformer: TransformerStack::load(
                w,
                &format!("{prefix}.sample_transformer"),
                &c.stack(Stack::Sample),
                device,
            )?,
            count_embedding: CountEmbedding::load(w, prefix, c, device)?,
        })
    }

    /// Writes the encoder at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        self.asv_encoder
            .save(&format!("{prefix}.asv_encoder"), sink);
        sink.put(
            &format!("{prefix}.sample_position_embedding.position_embedding.weight"),
            self.sample_position_embedding.weight.val(),
        );
        self.sample_transformer
            .save(&format!("{prefix}.sample_transformer"), sink);
        if let Some(c) = &self.count_embedding {
            c.save(prefix, sink);
        }
    }

    /// Whether the encoder reads read counts (see [`CountEmbedding`]).
    pub fn uses_counts(&self) -> bool {
        self.count_embedding.is_some()
    }

    /// `tokens`: int `[batch, n_asv, L]`, `n_asv ≤ token_limit + 5`; `counts`: read
    /// counts float32 `[batch, n_asv, 1]`, read only by a model with a count embedding
    /// (see [`SampleEncoder::stack_input`]).
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> SampleEncoding<B> {
        self.forward_masked(tokens, None, counts)
    }

    /// [`SampleEncoder::forward`] in training with nucleotide masking: `unmasked` int
    /// `[batch, n_asv, L]` are `tokens` before masking, read by the k-mer embedding (see
    /// [`AsvEncoder::forward_masked`]).
    pub fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
    ) -> SampleEncoding<B> {
        let asv_mask = asv_mask(tokens.clone());
        let asv = self.asv_encoder.forward_masked(tokens, unmasked);
        let sample_embeddings = self.contextualize(asv.embeddings, asv_mask.clone(), counts);
        SampleEncoding {
            sample_embeddings,
            asv_mask,
            nuc_logits: asv.nuc_logits,
        }
    }

    /// The sample transformer's input: ASV embeddings `[batch, n_asv, D]` zeroed at
    /// empty slots, with the count embedding of `counts` float32 `[batch, n_asv, 1]`
    /// mixed in (then zeroed again) when the model has one, plus the ASV-slot position
    /// embeddings; `asv_mask` `[batch, n_asv]`.
    ///
    /// Panics when the model has a count embedding and `counts` is `None`: every caller
    /// that feeds such a model (training, export checks, runtimes) checks for counts
    /// first and reports a missing input as an error.
    pub fn stack_input(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let [b, s, d] = asv_embeddings.dims();
        let mask = asv_mask.reshape([b, s, 1]);
        let mut a = asv_embeddings * mask.clone();
        if let Some(ce) = &self.count_embedding {
            let counts = counts
                .expect("this model has a count embedding: its forward pass needs the read counts");
            a = ce.forward(a, counts) * mask;
        }
        let positions = self
            .sample_position_embedding
            .weight
            .val()
            .slice([0..s, 0..d])
            .reshape([1, s, d]);
        a + positions
    }

    /// Per-ASV sample embeddings `[batch, n_asv, D]` (zero on empty slots) from the ASV
    /// embeddings `[batch, n_asv, D]` and `asv_mask` `[batch, n_asv]` (1 where a slot
    /// holds an ASV) and, for a model with a count embedding, the read counts
    /// `[batch, n_asv, 1]`: the part of [`SampleEncoder::forward`] after the ASV encoder.
    pub fn contextualize(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = asv_embeddings.dims();
        let a = self.stack_input(asv_embeddings, asv_mask.clone(), counts);
        self.sample_transformer.forward(a, asv_mask.clone()) * asv_mask.reshape([b, s, 1])
    }
}
