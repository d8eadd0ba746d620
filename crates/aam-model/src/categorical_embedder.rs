//! Category embeddings of metadata columns (reference `CategoricalEmbedder`, spec §3.11):
//! one table per column, looked up by the sample's category index and concatenated.

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

use crate::config::ModelConfig;
use crate::weights::{load_embedding, WeightError, WeightMap, WeightSink};

/// Dropout on the concatenated embeddings in training (the reference's fixed 0.1).
pub const CATEGORICAL_DROPOUT: f64 = 0.1;

/// `categorical_embedder.embeddings.<column>.weight` `[cardinality, e]` per column, in
/// the order of the columns' names; row 0 is the unknown or missing category (the
/// padding row: it embeds as zero and gets no gradient).
#[derive(Module, Debug)]
pub struct CategoricalEmbedder<B: Backend> {
    /// One table per column, columns sorted by name.
    pub tables: Vec<Embedding<B>>,
    /// The columns' names, for the weight keys.
    #[module(skip)]
    columns: Vec<String>,
}

impl<B: Backend> CategoricalEmbedder<B> {
    /// Freshly initialised tables (N(0, 1) as PyTorch's `Embedding`, row 0 zero); `None`
    /// when the model is not conditioned on categories.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Option<Self> {
        let h = &c.head;
        if !h.is_conditioned() {
            return None;
        }
        let e = h.categorical_embed_dim;
        let tables = h
            .categorical_cardinalities
            .values()
            .map(|&card| {
                let mut table = EmbeddingConfig::new(card, e).init(device);
                let zero_row = Tensor::zeros([1, e], device);
                table.weight = table.weight.map(|w| w.slice_assign([0..1, 0..e], zero_row));
                table
            })
            .collect();
        Some(CategoricalEmbedder {
            tables,
            columns: h.categorical_cardinalities.keys().cloned().collect(),
        })
    }

    /// Loads the tables under `prefix` (`categorical_embedder`).
    ///
    /// Errors: a column's table is missing or not `[cardinality, e]`.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Option<Self>, WeightError> {
        let h = &c.head;
        if !h.is_conditioned() {
            return Ok(None);
        }
        let tables = h
            .categorical_cardinalities
            .iter()
            .map(|(column, &card)| {
                load_embedding(
                    w,
                    &format!("{prefix}.embeddings.{column}.weight"),
                    card,
                    h.categorical_embed_dim,
                    device,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(CategoricalEmbedder {
            tables,
            columns: h.categorical_cardinalities.keys().cloned().collect(),
        }))
    }

    /// Writes the tables under `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        for (table, column) in self.tables.iter().zip(&self.columns) {
            sink.put(
                &format!("{prefix}.embeddings.{column}.weight"),
                table.weight.val(),
            );
        }
    }

    /// `ids`: int `[batch, columns]`, each in `0..cardinality` of its column (the
    /// caller maps unseen and missing values to 0). Returns `[batch, columns · e]` f32,
    /// the columns' embeddings side by side, with dropout in training.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [batch, _] = ids.dims();
        let parts = self
            .tables
            .iter()
            .enumerate()
            .map(|(i, table)| {
                let column = ids.clone().slice([0..batch, i..i + 1]);
                let e = table.weight.dims()[1];
                // Index 0 embeds as zero whatever row 0 holds, so that row never learns
                // (PyTorch's `padding_idx`).
                let known = column.clone().not_equal_elem(0).float().reshape([batch, 1]);
                table.forward(column).reshape([batch, e]) * known
            })
            .collect();
        crate::dropout::dropout(Tensor::cat(parts, 1), CATEGORICAL_DROPOUT)
    }

    /// The columns, in input order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}
