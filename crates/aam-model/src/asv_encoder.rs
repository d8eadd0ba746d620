//! ASV encoder (reference `ASVEncoder`, spec §3.5): nucleotide tokens of each ASV →
//! one embedding per ASV, plus optional nucleotide logits.

use std::collections::HashMap;

use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{IndexingUpdateOp, TensorData};

use crate::attention_pooling::AttentionPooling;
use crate::config::{ModelConfig, Stack};
use crate::kmer_embedding::KmerEmbedding;
use crate::transformer::TransformerStack;
use crate::weights::{
    load_embedding, load_linear, save_linear, WeightError, WeightMap, WeightSink,
};

/// The distinct rows of `values` (row-major `[n, width]`): the index of each distinct
/// row's first occurrence, in order, and for every row the position of its distinct
/// row in that list.
pub fn unique_rows(values: &[i64], width: usize) -> (Vec<usize>, Vec<usize>) {
    let mut seen: HashMap<&[i64], usize> = HashMap::new();
    let mut first = Vec::new();
    let slot_row = values
        .chunks(width)
        .enumerate()
        .map(|(i, row)| {
            *seen.entry(row).or_insert_with(|| {
                first.push(i);
                first.len() - 1
            })
        })
        .collect();
    (first, slot_row)
}

/// Most ASVs whose nucleotide attention runs at once (the reference HEAD's default
/// `asv_chunk_size`).
pub const ASV_CHUNK_ROWS: usize = 256;

/// Nucleotide-level encoder shared by every ASV slot.
#[derive(Module, Debug)]
pub struct AsvEncoder<B: Backend> {
    /// `token_embedding` `[V, D]`.
    pub token_embedding: Embedding<B>,
    /// `position_embedding.position_embedding` `[max_bp + 1, D]`.
    pub position_embedding: Embedding<B>,
    /// `transformer`: the nucleotide-level stack.
    pub transformer: TransformerStack<B>,
    /// `attention_pooling` over nucleotide positions.
    pub attention_pooling: AttentionPooling<B>,
    /// `nucleotide_head` `Linear(D → V)`, when `predict_nucleotides`.
    pub nucleotide_head: Option<Linear<B>>,
    /// `kmer_embedding` `[4^k, D]`, when `kmer_size > 0`: its sum over the ASV's k-mers / √n
    /// is added to the pooled embedding.
    pub kmer_embedding: Option<KmerEmbedding<B>>,
}

/// ASV encoder outputs.
#[derive(Debug, Clone)]
pub struct AsvEncoding<B: Backend> {
    /// One embedding per ASV slot, `[batch, n_asv, D]` (the pooling LN's β on empty slots).
    pub embeddings: Tensor<B, 3>,
    /// Nucleotide logits `[batch, n_asv, max_bp + 1, V]` when the head exists.
    pub nuc_logits: Option<Tensor<B, 4>>,
}

impl<B: Backend> AsvEncoder<B> {
    /// Freshly initialised encoder.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Self {
        let d = c.embedding_dim;
        AsvEncoder {
            token_embedding: EmbeddingConfig::new(c.vocab_size, d).init(device),
            position_embedding: EmbeddingConfig::new(c.max_bp + 1, d).init(device),
            transformer: TransformerStack::new(&c.stack(Stack::Asv), device),
            attention_pooling: AttentionPooling::new(d, device),
            nucleotide_head: c
                .predict_nucleotides
                .then(|| LinearConfig::new(d, c.vocab_size).init(device)),
            kmer_embedding: (c.kmer_size > 0).then(|| KmerEmbedding::new(c.kmer_size, d, device)),
        }
    }

    /// Loads the encoder at `prefix` (e.g. `sample_encoder.asv_encoder`).
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let d = c.embedding_dim;
        Ok(AsvEncoder {
            token_embedding: load_embedding(
                w,
                &format!("{prefix}.token_embedding.weight"),
                c.vocab_size,
                d,
                device,
            )?,
            position_embedding: load_embedding(
                w,
                &format!("{prefix}.position_embedding.position_embedding.weight"),
                c.max_bp + 1,
                d,
                device,
            )?,
            transformer: TransformerStack::load(
                w,
                &format!("{prefix}.transformer"),
                &c.stack(Stack::Asv),
                device,
            )?,
            attention_pooling: AttentionPooling::load(
                w,
                &format!("{prefix}.attention_pooling"),
                d,
                device,
            )?,
            nucleotide_head: if c.predict_nucleotides {
                Some(load_linear(
                    w,
                    &format!("{prefix}.nucleotide_head"),
                    d,
                    c.vocab_size,
                    true,
                    device,
                )?)
            } else {
                None
            },
            kmer_embedding: match c.kmer_size {
                0 => None,
                k => Some(KmerEmbedding::load(w, prefix, k, d, device)?),
            },
        })
    }

    /// Writes the encoder at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        sink.put(
            &format!("{prefix}.token_embedding.weight"),
            self.token_embedding.weight.val(),
        );
        sink.put(
            &format!("{prefix}.position_embedding.position_embedding.weight"),
            self.position_embedding.weight.val(),
        );
        self.transformer
            .save(&format!("{prefix}.transformer"), sink);
        self.attention_pooling
            .save(&format!("{prefix}.attention_pooling"), sink);
        if let Some(h) = &self.nucleotide_head {
            save_linear(h, &format!("{prefix}.nucleotide_head"), sink);
        }
        if let Some(k) = &self.kmer_embedding {
            k.save(prefix, sink);
        }
    }

    /// `tokens`: int `[batch, n_asv, L]` with `L ≤ max_bp + 1`.
    ///
    /// Each distinct token row is encoded once and its embedding (and nucleotide
    /// logits) gathered to every slot that holds it, so an ASV shared by several samples
    /// of a batch costs one encoding; in training the gradients of its slots add up
    /// through the gather. The outputs equal [`AsvEncoder::forward_every_slot`]'s (the
    /// rows are computed independently); with dropout, the copies of a row share one
    /// dropout mask. Reads the tokens back to the host once.
    pub fn forward(&self, tokens: Tensor<B, 3, Int>) -> AsvEncoding<B> {
        self.forward_masked(tokens, None)
    }

    /// [`AsvEncoder::forward`] in training with nucleotide masking: `tokens` int
    /// `[batch, n_asv, L]` hold the mask token at the masked positions and `unmasked`
    /// (same shape) the tokens before masking. The nucleotide transformer reads
    /// `tokens`; the k-mer embedding reads `unmasked`, so that it sees in training the
    /// k-mers it sees at inference (masking 15% of nucleotides would drop about 62% of
    /// the 6-mer windows, 1 − 0.85⁶, and shrink the k-mer sum by √0.38). `None`: the
    /// k-mer embedding reads `tokens`, as in [`AsvEncoder::forward`].
    pub fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
    ) -> AsvEncoding<B> {
        let [b, s, l] = tokens.dims();
        let flat = tokens.reshape([b * s, l]);
        let unmasked = unmasked.map(|t| t.reshape([b * s, l]));
        // Rows are merged by their unmasked tokens: masks are drawn per distinct ASV, so
        // rows equal before masking are equal after, and two ASVs whose masked rows
        // happen to match stay apart. Masking replaces nucleotides only, so the
        // nucleotide counts below are the same either way.
        let values: Vec<i64> = unmasked
            .as_ref()
            .unwrap_or(&flat)
            .to_data()
            .iter::<i64>()
            .collect();
        // Nucleotides per row, from the same read-back (the only one of the pass).
        let counts = |rows: &mut dyn Iterator<Item = usize>| -> Vec<f32> {
            rows.map(|r| values[r * l..(r + 1) * l].iter().filter(|&&t| t > 0).count() as f32)
                .collect()
        };
        let (first, slot_row) = unique_rows(&values, l.max(1));
        if first.len() == b * s {
            let row_counts = counts(&mut (0..b * s));
            return self.assemble(self.encode_rows(flat, Some(row_counts), unmasked), b, s, l);
        }
        let row_counts = counts(&mut first.iter().copied());
        let device = flat.device();
        let index = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [n]), &device)
        };
        let pick = index(first.iter().map(|&r| r as i64).collect());
        let unmasked = unmasked.map(|t| t.select(0, pick.clone()));
        let (embeddings, logits) =
            self.encode_rows(flat.select(0, pick), Some(row_counts), unmasked);
        let back = index(slot_row.iter().map(|&u| u as i64).collect());
        let gathered = (
            embeddings.select(0, back.clone()),
            logits.map(|t| t.select(0, back)),
        );
        self.assemble(gathered, b, s, l)
    }

    /// [`AsvEncoder::forward`] without merging repeated rows: every slot runs through
    /// the transformer (all-padding slots excepted).
    pub fn forward_every_slot(&self, tokens: Tensor<B, 3, Int>) -> AsvEncoding<B> {
        let [b, s, l] = tokens.dims();
        self.assemble(self.encode_rows(tokens.reshape([b * s, l]), None, None), b, s, l)
    }

    /// Embeddings `[n, D]` of ASV rows `tokens` int `[n, L]`, without the nucleotide
    /// logits: what a cache of ASV embeddings stores (zeros through the pooling's
    /// LayerNorm, i.e. its β, for all-padding rows).
    pub fn embed_rows(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let bag = self.kmer_bag(tokens.clone());
        let (x, mask) = self.embed(tokens);
        let h = self.transform_non_empty(x, mask.clone(), None);
        self.with_kmers(self.attention_pooling.forward(h, mask), bag)
    }

    /// The k-mer embedding `[n, D]` of ASV rows `tokens` int `[n, L]`, with one.
    fn kmer_bag(&self, tokens: Tensor<B, 2, Int>) -> Option<Tensor<B, 2>> {
        self.kmer_embedding.as_ref().map(|k| k.forward(tokens))
    }

    fn with_kmers(&self, pooled: Tensor<B, 2>, bag: Option<Tensor<B, 2>>) -> Tensor<B, 2> {
        match bag {
            Some(bag) => pooled + bag,
            None => pooled,
        }
    }

    /// ASV rows `tokens` int `[n, L]` → embeddings `[n, D]` and, with the head,
    /// nucleotide logits `[n, L, V]`; `row_counts`: each row's nucleotides when the
    /// caller already read them (else they are read back here); `unmasked`: the rows
    /// before nucleotide masking, read by the k-mer embedding (else `tokens`).
    fn encode_rows(
        &self,
        tokens: Tensor<B, 2, Int>,
        row_counts: Option<Vec<f32>>,
        unmasked: Option<Tensor<B, 2, Int>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 3>>) {
        let bag = self.kmer_bag(unmasked.unwrap_or_else(|| tokens.clone()));
        let (x, mask) = self.embed(tokens);
        let h = self.transform_non_empty(x, mask.clone(), row_counts);
        let logits = self
            .nucleotide_head
            .as_ref()
            .map(|head| head.forward(h.clone()));
        (self.with_kmers(self.attention_pooling.forward(h, mask), bag), logits)
    }

    /// Per-slot rows `[b · s, …]` reshaped to the batch's `[b, s, …]`.
    fn assemble(
        &self,
        (embeddings, logits): (Tensor<B, 2>, Option<Tensor<B, 3>>),
        b: usize,
        s: usize,
        l: usize,
    ) -> AsvEncoding<B> {
        let d = embeddings.dims()[1];
        AsvEncoding {
            embeddings: embeddings.reshape([b, s, d]),
            nuc_logits: logits.map(|t| {
                let v = t.dims()[2];
                t.reshape([b, s, l, v])
            }),
        }
    }

    /// The nucleotide transformer's input for ASV rows `tokens` int `[n, L]`: token plus
    /// position embeddings `[n, L, D]`, and the validity mask `[n, L]` (1 at nucleotides).
    pub fn embed(&self, tokens: Tensor<B, 2, Int>) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let l = tokens.dims()[1];
        let mask = tokens.clone().greater_elem(0).float();
        let d = self.position_embedding.weight.dims()[1];
        let positions = self
            .position_embedding
            .weight
            .val()
            .slice([0..l, 0..d])
            .reshape([1, l, d]);
        (self.token_embedding.forward(tokens) + positions, mask)
    }

    /// The transformer on the rows of `x` `[n, L, D]` with a valid position (`mask`
    /// `[n, L]`), in chunks of [`ASV_CHUNK_ROWS`] rows; zeros for the all-padding rows.
    /// A chunk whose rows are all full length runs without the key bias. `counts`: the
    /// valid positions of each row, read back from `mask` when not given.
    fn transform_non_empty(
        &self,
        x: Tensor<B, 3>,
        mask: Tensor<B, 2>,
        counts: Option<Vec<f32>>,
    ) -> Tensor<B, 3> {
        let [n, l, d] = x.dims();
        let counts: Vec<f32> = counts
            .unwrap_or_else(|| mask.clone().sum_dim(1).into_data().iter::<f32>().collect());
        let valid: Vec<i64> = (0..n).filter(|&i| counts[i] > 0.0).map(|i| i as i64).collect();
        let full = |rows: &[i64]| rows.iter().all(|&r| counts[r as usize] >= l as f32);
        let device = x.device();
        let index = |rows: &[i64]| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), &device)
        };
        let run = |x: Tensor<B, 3>, mask: Tensor<B, 2>, rows: &[i64]| {
            if full(rows) {
                self.transformer.forward_unpadded(x)
            } else {
                self.transformer.forward(x, mask)
            }
        };
        if valid.len() == n && n <= ASV_CHUNK_ROWS {
            return run(x, mask, &valid);
        }
        let parts: Vec<Tensor<B, 3>> = valid
            .chunks(ASV_CHUNK_ROWS)
            .map(|rows| {
                let idx = index(rows);
                run(x.clone().select(0, idx.clone()), mask.clone().select(0, idx), rows)
            })
            .collect();
        if parts.is_empty() {
            return Tensor::<B, 3>::zeros([n, l, d], &device);
        }
        let h = Tensor::cat(parts, 0);
        if valid.len() == n {
            return h;
        }
        Tensor::<B, 3>::zeros([n, l, d], &device).select_assign(
            0,
            index(&valid),
            h,
            IndexingUpdateOp::Add,
        )
    }
}
