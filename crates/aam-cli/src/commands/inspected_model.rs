//! What `aam attention` and `aam importance --method integrated-gradients|attention`
//! share: an exported model's Burn modules (CPU, f32) and one sample's model input with
//! the ASV of each slot.

use std::path::{Path, PathBuf};

use aam_config::{CheckpointConfig, ModelKind};
use aam_data::Dataset;
use aam_model::asv_encoder::AsvEncoder;
use aam_model::inspect::SampleAttention;
use aam_model::{AamModel, CpuBackend, SequenceEncoder, SequencePredictor};
use aam_runtime::prepare_table;
use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::predict::load_safetensors;

/// Backend of the inspected model.
pub type B = CpuBackend;

/// The Burn modules of an exported model.
pub enum Net {
    /// A pretrained encoder.
    Encoder(SequenceEncoder<B>),
    /// A fine-tuned predictor.
    Predictor(SequencePredictor<B>),
}

/// An exported model loaded for inspection.
pub struct InspectedModel {
    /// `model.safetensors` it was read from.
    pub path: PathBuf,
    /// Its configuration.
    pub config: CheckpointConfig,
    /// Its modules.
    pub net: Net,
}

impl InspectedModel {
    /// `model.safetensors` of `model` (an export directory or file; `None`: the shipped
    /// model).
    ///
    /// Errors: a model conditioned on metadata categories (its categories would be read
    /// as unknown).
    pub fn load(model: Option<&Path>) -> Result<Self> {
        let (path, config, weights) = load_safetensors(model)?;
        let columns = config.conditioning_columns();
        if !columns.is_empty() {
            bail!("{} is conditioned on the metadata categories {}, which integrated gradients and attention maps do not read yet; use aam importance --method permutation (it reads them from --metadata)", path.display(), columns.join(", "));
        }
        let device = Default::default();
        let net = match config.kind {
            ModelKind::Encoder => Net::Encoder(SequenceEncoder::load_weights(
                &weights,
                &config.model,
                &device,
            )?),
            ModelKind::Predictor => Net::Predictor(SequencePredictor::load_weights(
                &weights,
                &config.model,
                &device,
            )?),
        };
        Ok(InspectedModel { path, config, net })
    }

    /// The nucleotide-level encoder.
    pub fn asv_encoder(&self) -> &AsvEncoder<B> {
        match &self.net {
            Net::Encoder(m) => &m.sample_encoder.asv_encoder,
            Net::Predictor(m) => &m.base_model.sample_encoder.asv_encoder,
        }
    }

    /// ASV-level attention and pooling weights for `tokens` int `[1, n_asv, max_bp + 1]`
    /// with read counts `[1, n_asv, 1]`.
    pub fn sample_attention(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Tensor<B, 3>,
    ) -> SampleAttention<B> {
        match &self.net {
            Net::Encoder(m) => m.sample_attention(tokens, Some(counts)).0,
            Net::Predictor(m) => m.sample_attention(tokens, Some(counts)),
        }
    }
}

/// A table prepared for a model (tokens, token-limit selection), warnings printed;
/// `sequences` maps hashed feature IDs to sequences (`--sequences`).
pub fn prepare(
    table_path: &Path,
    sequences: Option<&Path>,
    config: &CheckpointConfig,
) -> Result<Dataset> {
    let (table, _) = aam_data::load_table_with_sequences(table_path, sequences)?;
    let prepared = prepare_table(table, config, &table_path.display().to_string())?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    Ok(prepared.dataset)
}

/// One sample's model input.
pub struct SampleInput {
    /// Tokens int `[1, n_asv, max_bp + 1]` (n_asv: the ASVs kept under the token limit).
    pub tokens: Tensor<B, 3, Int>,
    /// Read counts of each slot, `[1, n_asv, 1]` (read by a model that reads counts: a count embedding or abundance-weighted pooling).
    pub counts: Tensor<B, 3>,
    /// ASV of each slot: (table observation index, count), `[n_asv]`.
    pub slots: Vec<(u32, f64)>,
    /// The sample's reads (all ASVs, before the token limit).
    pub depth: f64,
}

impl SampleInput {
    /// The input of sample `sample` (table position) as prediction builds it.
    ///
    /// Errors: the sample has no ASV with reads.
    pub fn new(ds: &Dataset, sample: usize) -> Result<Self> {
        let slots = ds.kept_asvs(sample, 0);
        if slots.iter().all(|&(_, c)| c <= 0.0) {
            bail!(
                "sample '{}' has no ASV with reads; choose samples with reads",
                ds.table.sample_ids[sample]
            );
        }
        let batch = ds.batch(&[sample], None, 0);
        let (b, s, l) = batch.tokens.dim();
        let tokens = Tensor::from_data(
            TensorData::new(batch.tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            &Default::default(),
        );
        let counts = Tensor::from_data(
            TensorData::new(batch.counts.iter().copied().collect::<Vec<_>>(), [b, s, 1]),
            &Default::default(),
        );
        Ok(SampleInput {
            tokens,
            counts,
            slots,
            depth: ds.table.sample(sample).map(|(_, c)| c).sum(),
        })
    }
}

/// A name made of `[A-Za-z0-9._-]` for a file (other characters become `_`).
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Row-major values of a tensor.
pub fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}
