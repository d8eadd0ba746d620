//! `aam predict --backend burn`: an exported `model.safetensors` (weights plus the
//! `aam_config` metadata) loaded back into the Burn model, as a runtime runner.

use std::path::Path;

use aam_config::{CheckpointConfig, ModelKind};
use aam_model::{
    AamModel, CpuBackend, ModelOutputs, SequenceEncoder, SequencePredictor, WeightMap,
};
use aam_runtime::{RawOutputs, RuntimeError};
use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

/// The Burn model of an exported safetensors file.
pub struct BurnModel {
    net: Net,
    is_classifier: bool,
    /// The architecture (which inputs the forward pass takes).
    config: aam_config::ModelConfig,
}

enum Net {
    Encoder(SequenceEncoder<CpuBackend>),
    Predictor(SequencePredictor<CpuBackend>),
}

/// Reads `path` (safetensors written by `aam export` or a checkpoint): its configuration
/// from the `aam_config` metadata and its weights.
pub fn load(path: &Path) -> Result<(CheckpointConfig, BurnModel)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes, path)
}

/// The configuration (`aam_config` metadata) and weights of the bytes of a
/// safetensors file; `path` names it in messages.
pub fn config_and_weights(bytes: &[u8], path: &Path) -> Result<(CheckpointConfig, WeightMap)> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("aam_config"))
        .with_context(|| {
            format!(
                "{}: no `aam_config` metadata; pass a model.safetensors written by `aam export`",
                path.display()
            )
        })?;
    let config = CheckpointConfig::from_json(json, &path.display().to_string())
        .map_err(anyhow::Error::msg)?;
    let w = WeightMap::from_safetensors(bytes, &path.display().to_string())?;
    Ok((config, w))
}

/// [`load`] from the bytes of a safetensors file; `path` names it in messages.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<(CheckpointConfig, BurnModel)> {
    let (config, w) = config_and_weights(bytes, path)?;
    let device = Default::default();
    let net = match config.kind {
        ModelKind::Encoder => {
            Net::Encoder(SequenceEncoder::load_weights(&w, &config.model, &device)?)
        }
        ModelKind::Predictor => {
            Net::Predictor(SequencePredictor::load_weights(&w, &config.model, &device)?)
        }
    };
    let model = BurnModel {
        net,
        is_classifier: config.model.is_classifier,
        config: config.model.clone(),
    };
    Ok((config, model))
}

fn to_array2(t: Tensor<CpuBackend, 2>) -> Array2<f32> {
    let [a, b] = t.dims();
    let v = t.into_data().to_vec::<f32>().expect("f32 tensor");
    Array2::from_shape_vec((a, b), v).expect("consistent shape")
}

impl BurnModel {
    /// One eval-mode forward pass on tokens int64 `[batch, n_asv, max_bp + 1]` with the
    /// slots' read counts f32 `[batch, n_asv, 1]` (`None`: a model without a count
    /// embedding) and the category indices int64 `[batch, n_columns]` of a model
    /// conditioned on metadata categories.
    ///
    /// Errors: the model has a count embedding and `counts` is `None`, or they do not
    /// have the tokens' `[batch, n_asv, 1]` shape; category indices missing, given to a
    /// model without conditioning, or out of range ([`aam_runtime::checked_categorical_ids`]).
    pub fn run(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        categorical_ids: Option<ArrayView2<'_, i64>>,
    ) -> Result<RawOutputs, RuntimeError> {
        let (b, s, l) = tokens.dim();
        let device = Default::default();
        let input = Tensor::<CpuBackend, 3, Int>::from_data(
            TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            &device,
        );
        let uses_counts = match &self.net {
            Net::Encoder(m) => m.uses_counts(),
            Net::Predictor(m) => m.uses_counts(),
        };
        let counts = aam_runtime::checked_counts(uses_counts, counts, b, s)?.map(|c| {
            Tensor::<CpuBackend, 3>::from_data(
                TensorData::new(c.iter().copied().collect::<Vec<_>>(), [b, s, 1]),
                &device,
            )
        });
        let ids =
            aam_runtime::checked_categorical_ids(&self.config, categorical_ids, b)?.map(|i| {
                Tensor::<CpuBackend, 2, Int>::from_data(
                    TensorData::new(
                        i.iter().copied().collect::<Vec<_>>(),
                        [i.nrows(), i.ncols()],
                    ),
                    &device,
                )
            });
        let out: ModelOutputs<CpuBackend> = match &self.net {
            Net::Encoder(m) => m.forward_all(input, counts),
            Net::Predictor(m) => AamModel::forward_masked(m, input, None, counts, ids),
        };
        let is_classifier = self.is_classifier;
        let target = out.target_prediction.map(to_array2);
        Ok(RawOutputs {
            embeddings: to_array2(out.embeddings),
            class_probabilities: target
                .as_ref()
                .filter(|_| is_classifier)
                .map(|t| t.mapv(f32::exp)),
            target_prediction: target,
            count_prediction: out.count_prediction.map(|t| {
                let [a, b, c] = t.dims();
                let v = t.into_data().to_vec::<f32>().expect("f32 tensor");
                Array3::from_shape_vec((a, b, c), v).expect("consistent shape")
            }),
        })
    }
}
