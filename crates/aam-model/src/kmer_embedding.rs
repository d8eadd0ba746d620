//! K-mer embedding of an ASV (not in the reference): the sum of one learnt vector per
//! k-mer over the sequence's k-mer windows divided by the square root of their number,
//! added to the ASV encoder's pooled embedding.
//!
//! Why: the nucleotide transformer must learn sequence features from the training signal
//! alone, and on small tables it does not in the steps available (docs/benchmark/
//! ablation.md). A bag of k-mers is the classic alignment-free sequence representation
//! (k-mer profiles of 16S reads, e.g. the RDP naive Bayes classifier's 8-mers): each
//! k-mer's vector gets a direct gradient from the first step, so ASVs that share k-mers
//! (related taxa) start with related embeddings.
//!
//! Windows: the `max_bp + 1` token columns are scanned for every run of `k` consecutive
//! nucleotide tokens (A, C, G, T = 1–4); a window touching padding, the start token, `N`
//! or a masked nucleotide is skipped. Index = Σ_j (token_j − 1)·4^(k−1−j) (A = 0, … T = 3,
//! first base most significant). A row without a complete window gets zeros.
//!
//! The √n divisor (TensorFlow's `sqrtn` combiner of `embedding_lookup_sparse`) keeps the
//! result at the table's N(0, 1) scale whatever the read length: a mean of ~100 vectors
//! would start 10× smaller than the pooled embedding it is added to, and the ASVs would
//! start nearly alike.

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

use crate::weights::{load_embedding, WeightError, WeightMap, WeightSink};

/// Largest supported k: the table has 4^k rows (65,536 × D at k = 8).
pub const MAX_KMER_SIZE: usize = 8;

/// The k-mer embedding table `kmer_embedding.weight` `[4^k, D]`.
#[derive(Module, Debug)]
pub struct KmerEmbedding<B: Backend> {
    /// `kmer_embedding` `[4^k, D]`.
    pub embedding: Embedding<B>,
    k: usize,
}

impl<B: Backend> KmerEmbedding<B> {
    /// Freshly initialised table for `k`-mers (`1 ≤ k ≤ MAX_KMER_SIZE`, checked by
    /// the configuration's validation) of width `dim`: N(0, 1) as every embedding table.
    pub fn new(k: usize, dim: usize, device: &B::Device) -> Self {
        KmerEmbedding {
            embedding: EmbeddingConfig::new(1 << (2 * k), dim).init(device),
            k,
        }
    }

    /// Loads `{prefix}.kmer_embedding.weight` `[4^k, dim]`.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        k: usize,
        dim: usize,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        // An edited configuration must not reach `1 << (2 * k)`: the table would overflow.
        if k > MAX_KMER_SIZE {
            return Err(WeightError::Format(format!(
                "kmer_size {k} is above {MAX_KMER_SIZE} (its table has 4^k rows); the configuration is not one aam writes"
            )));
        }
        Ok(KmerEmbedding {
            embedding: load_embedding(
                w,
                &format!("{prefix}.kmer_embedding.weight"),
                1 << (2 * k),
                dim,
                device,
            )?,
            k,
        })
    }

    /// Writes `{prefix}.kmer_embedding.weight`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        sink.put(
            &format!("{prefix}.kmer_embedding.weight"),
            self.embedding.weight.val(),
        );
    }

    /// k-mer indices int `[n, W]` (`W = L − k + 1`) and window validity float `[n, W]`
    /// (1 where all `k` tokens are nucleotides) of ASV rows `tokens` int `[n, L]`.
    pub fn windows(&self, tokens: Tensor<B, 2, Int>) -> (Tensor<B, 2, Int>, Tensor<B, 2>) {
        let [n, l] = tokens.dims();
        let k = self.k;
        let w = l + 1 - k.min(l + 1);
        let device = tokens.device();
        if w == 0 {
            return (
                Tensor::zeros([n, 0], &device),
                Tensor::zeros([n, 0], &device),
            );
        }
        let nucleotide = tokens
            .clone()
            .greater_equal_elem(1)
            .int()
            .mul(tokens.clone().lower_equal_elem(4).int());
        let base = tokens.sub_scalar(1).clamp(0, 3);
        let mut index = Tensor::<B, 2, Int>::zeros([n, w], &device);
        let mut valid = Tensor::<B, 2, Int>::ones([n, w], &device);
        for j in 0..k {
            index = index.mul_scalar(4) + base.clone().slice([0..n, j..j + w]);
            valid = valid.mul(nucleotide.clone().slice([0..n, j..j + w]));
        }
        (index, valid.float())
    }

    /// `Σ e_kmer / √n` `[n, D]` over the `n` complete windows of ASV rows `tokens` int
    /// `[n, L]` (zeros for a row without one).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [n, _] = tokens.dims();
        let (index, valid) = self.windows(tokens);
        let [_, w] = index.dims();
        let d = self.embedding.weight.dims()[1];
        if w == 0 {
            return Tensor::zeros([n, d], &index.device());
        }
        let vectors = self.embedding.forward(index) * valid.clone().reshape([n, w, 1]);
        let count = valid.sum_dim(1).clamp_min(1.0).sqrt();
        vectors.sum_dim(1).reshape([n, d]) / count
    }
}
