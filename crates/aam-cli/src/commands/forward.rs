//! `aam forward`: one eval-mode forward pass on a token array, writing every output
//! under the reference names.

use std::collections::HashMap;
use std::path::PathBuf;

use aam_config::ModelKind;
use aam_model::{
    AamModel, CpuBackend, ModelOutputs, SequenceEncoder, SequencePredictor, WeightSink,
};
use aam_train::checkpoint;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::TensorData;
use clap::Args;
use ndarray::{Array2, Array3};

/// Arguments of `aam forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Checkpoint directory (from `aam train`, `aam pretrain` or `aam import-torch`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Tokens, int64 (or int32) .npy `[batch, n_asv, max_bp + 1]`.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Read counts, float32 .npy `[batch, n_asv, 1]` (the count of each ASV slot):
    /// needed by a model trained with `--count-embedding`, ignored by others.
    #[arg(long)]
    pub counts: Option<PathBuf>,
    /// Category indices, int64 .npy `[batch, n_columns]`, columns in the order of the
    /// model's categorical columns (sorted by name), each in `0..cardinality` (0: unknown
    /// or missing): needed by a model conditioned on metadata categories.
    #[arg(long)]
    pub categorical_ids: Option<PathBuf>,
    /// Output safetensors file.
    #[arg(long)]
    pub output: PathBuf,
}

fn read_tokens(path: &std::path::Path) -> Result<Array3<i64>> {
    let context = || {
        format!(
            "{}: expected an int64 or int32 .npy of shape [batch, n_asv, max_bp + 1]",
            path.display()
        )
    };
    aam_data::check_npy_size(path)?;
    // int64 first; only a file of another dtype is read again as int32, so that a
    // misshapen int64 file reports its own fault, not a dtype mismatch.
    match ndarray_npy::read_npy::<_, Array3<i64>>(path) {
        Ok(a) => return Ok(a),
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(_)) => {}
        Err(e) => return Err(e).with_context(context),
    }
    let a: Array3<i32> = ndarray_npy::read_npy(path).with_context(|| {
        format!(
            "{}: expected an int64 or int32 .npy of shape [batch, n_asv, max_bp + 1]",
            path.display()
        )
    })?;
    Ok(a.mapv(i64::from))
}

/// The `--categorical-ids` of a model conditioned on `m`'s categorical columns, checked
/// against `batch` samples and each column's cardinality.
fn categorical_ids(
    args: &ForwardArgs,
    m: &aam_model::ModelConfig,
    batch: usize,
) -> Result<Tensor<CpuBackend, 2, Int>> {
    let columns = m.head.categorical_columns();
    let Some(path) = &args.categorical_ids else {
        bail!(
            "{}: this model is conditioned on the metadata categories {}; pass their indices with --categorical-ids (int64 .npy [batch, {}])",
            args.checkpoint.display(),
            columns.join(", "),
            columns.len()
        );
    };
    aam_data::check_npy_size(path)?;
    let ids: Array2<i64> = ndarray_npy::read_npy(path).with_context(|| {
        format!(
            "{}: expected an int64 .npy of shape [batch, {}]",
            path.display(),
            columns.len()
        )
    })?;
    if ids.dim() != (batch, columns.len()) {
        bail!(
            "{}: shape {:?}; the tokens hold {batch} samples and the model {} categorical columns ({})",
            path.display(),
            ids.shape(),
            columns.len(),
            columns.join(", ")
        );
    }
    for ((sample, col), &id) in ids.indexed_iter() {
        let card = m.head.categorical_cardinalities[columns[col]];
        if id < 0 || id as usize >= card {
            bail!(
                "{}: sample {sample}, column `{}`: index {id} is outside 0..{card} (0 is the unknown category)",
                path.display(),
                columns[col]
            );
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(
            ids.iter().copied().collect::<Vec<_>>(),
            [batch, columns.len()],
        ),
        &Default::default(),
    ))
}

/// Runs `aam forward`.
pub fn run(args: &ForwardArgs) -> Result<()> {
    let config = checkpoint::load_config(&args.checkpoint)?;
    let tokens = read_tokens(&args.tokens)?;
    let (b, s, l) = tokens.dim();
    let m = &config.model;
    if b == 0
        || s == 0
        || l == 0
        || l > m.max_bp + 1
        || s > m.token_limit + aam_model::sample_encoder::SAMPLE_POSITION_EXTRA
    {
        bail!(
            "{}: tokens have shape [{b}, {s}, {l}]; this model takes [batch ≥ 1, 1 ≤ n_asv ≤ {}, 1 ≤ L ≤ {}]",
            args.tokens.display(),
            m.token_limit + aam_model::sample_encoder::SAMPLE_POSITION_EXTRA,
            m.max_bp + 1
        );
    }
    if let Some((idx, v)) = tokens
        .indexed_iter()
        .find(|(_, &v)| v < 0 || v as usize >= m.vocab_size)
    {
        bail!(
            "{}: token {v} at {idx:?} is outside the vocabulary 0..{}",
            args.tokens.display(),
            m.vocab_size
        );
    }
    let device = Default::default();
    let input = Tensor::<CpuBackend, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    let counts = match (&args.counts, m.uses_counts()) {
        (_, false) => None,
        (None, true) => bail!(
            "{}: this model reads read counts (a count embedding or abundance-weighted pooling); pass each ASV slot's read count with --counts (float32 .npy [batch, n_asv, 1])",
            args.checkpoint.display()
        ),
        (Some(path), true) => {
            aam_data::check_npy_size(path)?;
            let c: Array3<f32> = ndarray_npy::read_npy(path).with_context(|| {
                format!(
                    "{}: expected a float32 .npy of shape [batch, n_asv, 1]",
                    path.display()
                )
            })?;
            aam_runtime::checked_counts(true, Some(c.view()), b, s)
                .with_context(|| format!("{}", path.display()))?;
            Some(Tensor::<CpuBackend, 3>::from_data(
                TensorData::new(c.iter().copied().collect::<Vec<_>>(), [b, s, 1]),
                &device,
            ))
        }
    };
    let mut sink = WeightSink::default();
    let out: ModelOutputs<CpuBackend> = match config.kind {
        ModelKind::Predictor if m.head.is_conditioned() => {
            let ids = categorical_ids(args, m, b)?;
            let model = checkpoint::load_model::<CpuBackend, SequencePredictor<CpuBackend>>(
                &args.checkpoint,
                "model.safetensors",
                m,
                &device,
            )?;
            let out = model.forward_with_categories(input, counts, Some(ids));
            if let Some(gate) = out.gmu_gate {
                sink.put("gmu_gate", gate);
            }
            if let Some(weights) = out.fusion_attention {
                let name = match m.head.categorical_fusion {
                    aam_model::CategoricalFusion::Perceiver => "perceiver_attn_weights",
                    _ => "cross_attn_weights",
                };
                sink.put(name, weights);
            }
            ModelOutputs {
                embeddings: out.base.embeddings,
                base_embeddings: out.base.sample_embeddings,
                asv_mask: out.base.asv_mask,
                base_prediction: out.base.base_prediction,
                nuc_predictions: out.base.nuc_predictions,
                target_prediction: Some(out.target_prediction),
                count_prediction: Some(out.count_prediction),
            }
        }
        ModelKind::Predictor => {
            if args.categorical_ids.is_some() {
                bail!("--categorical-ids: {} is not conditioned on metadata categories; drop the flag", args.checkpoint.display());
            }
            checkpoint::load_model::<CpuBackend, SequencePredictor<CpuBackend>>(
                &args.checkpoint,
                "model.safetensors",
                m,
                &device,
            )?
            .forward_all(input, counts)
        }
        ModelKind::Encoder => checkpoint::load_model::<CpuBackend, SequenceEncoder<CpuBackend>>(
            &args.checkpoint,
            "model.safetensors",
            m,
            &device,
        )?
        .forward_all(input, counts),
    };
    match (out.target_prediction, m.head.num_quantiles) {
        // Quantile models: `[batch, out_dim, num_quantiles]`, the reference's shape.
        (Some(t), Some(q)) => sink.put("target_prediction", t.reshape([b, m.out_dim, q])),
        (Some(t), None) => sink.put("target_prediction", t),
        (None, _) => {}
    }
    if let Some(c) = out.count_prediction {
        sink.put("count_prediction", c);
    }
    sink.put("base_embeddings", out.base_embeddings);
    sink.put("embeddings", out.embeddings);
    if let Some(n) = out.nuc_predictions {
        sink.put("nuc_predictions", n);
    }
    if let Some(p) = out.base_prediction {
        sink.put("base_prediction", p);
    }
    let names: Vec<String> = sink
        .entries
        .iter()
        .map(|e| format!("{} {:?}", e.0, e.1))
        .collect();
    let mut meta = HashMap::new();
    meta.insert(
        "checkpoint".to_string(),
        args.checkpoint.display().to_string(),
    );
    aam_data::files::write_atomic(&args.output, &sink.to_safetensors(Some(meta))?)?;
    println!("wrote {}: {}", args.output.display(), names.join(", "));
    Ok(())
}
