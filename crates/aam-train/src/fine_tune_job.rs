//! Fine-tuning as a library call (`aam train`): a predictor of one metadata column
//! (regression or classification) or a regressor of several, fresh or on top of a
//! pretrained encoder.
//!
//! `crates/aam-train/examples/train_tiny.rs` trains a tiny classifier this way.

use std::collections::HashMap;
use std::path::PathBuf;

use aam_config::{
    AttentionKind, CheckpointConfig, CountEmbeddingMethod, DataSettings, HeadConfig,
    MixedPrecision, ModelConfig, ModelKind, TargetColumn, TargetInfo, TargetTransform,
};
use aam_data::error::name_list;
use aam_data::{CategoryIndices, Metadata, TargetKind};
use aam_model::count_embedding::CountEmbedding;
use aam_model::{AamModel, SequenceEncoder, SequencePredictor};
use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;

use crate::collective::{Collective, SingleProcess};
use crate::job_inputs::{
    check_output, dataset_and_stream, distance_targets, groups, load_table_input, make_split,
    warn_fused_dropout, JobInputs, PreparedRun,
};
use crate::regression_loss::{LossConfig, LossType};
use crate::sample_weights::CategoricalLossWeights;
use crate::tracking::Tracker;
use crate::trainer::fit_in_group;
use crate::{checkpoint, FitReport, TrainData, TrainOptions};

/// A fine-tuning run.
#[derive(Debug, Clone)]
pub struct FineTuneJob {
    /// What it reads (`metadata` is required) and where it writes.
    pub inputs: JobInputs,
    /// Metadata column to predict.
    pub metadata_column: String,
    /// Further numeric columns regressed together with `metadata_column`
    /// (`--metadata-column a,b`): one output each, in this order, each transformed with
    /// its own training statistics. Only regression; not with a quantile loss or
    /// `zscore-category`.
    pub more_target_columns: Vec<String>,
    /// The loss of each target column (`--loss-config`), resolved against the columns
    /// into `options.regression.per_column`.
    pub loss_config: Option<LossConfig>,
    /// Regression or classification; `None` detects it from the column's values.
    pub target_type: Option<TargetKind>,
    /// How a regression target is transformed for training (statistics from the
    /// training samples only, stored in the checkpoint, inverted at prediction).
    pub target_transform: TargetTransform,
    /// The architecture of a fresh model (`out_dim` and `is_classifier` are set from the
    /// target); unused with `pretrained_encoder`, which brings its own.
    pub model: ModelConfig,
    /// Input preparation of a fresh model (with `pretrained_encoder`: the encoder's).
    pub data: DataSettings,
    /// Checkpoint folder of `aam pretrain` to start from; its split is inherited when it
    /// covers every sample.
    pub pretrained_encoder: Option<PathBuf>,
    /// Keep the pretrained encoder's weights fixed (its ASV embeddings are then computed
    /// once and cached).
    pub freeze_base: bool,
    /// A count embedding added to a pretrained encoder that has none (fresh layers).
    pub count_embedding: Option<CountEmbeddingMethod>,
    /// Abundance-weighted pooling added to a pretrained encoder that lacks it.
    pub abundance_pooling: bool,
    /// Metadata columns the target head is conditioned on (`--categorical-columns`):
    /// their labels in the training samples become category indices (unseen or missing:
    /// 0), stored in the checkpoint; how they enter the head, and the head's other
    /// options, come from `model.head` (also on top of a pretrained encoder).
    pub categorical_columns: Vec<String>,
    /// The categorical column of `--target-transform zscore-category` (one of
    /// `categorical_columns`).
    pub normalize_by: Option<String>,
    /// Per-sample weights of the target loss from one categorical column
    /// (`--categorical-loss-weights`).
    pub categorical_loss_weights: Option<CategoricalLossWeights>,
    /// The column of `categorical_loss_weights` (one of `categorical_columns`; `None`:
    /// the first of them).
    pub categorical_loss_weight_column: Option<String>,
    /// Self-attention implementation of the run.
    pub attention: AttentionKind,
    /// Half-precision matrix products of the run.
    pub mixed_precision: MixedPrecision,
    /// Optimisation (the UniFrac weight is set to 0 without distances).
    pub options: TrainOptions,
}

/// Warns that the samples without a value in target column `t` are left out.
fn warn_left_out(t: &aam_data::Target) {
    if !t.missing_samples.is_empty() {
        eprintln!(
            "warning: {} samples have no value in '{}' and are left out: {}",
            t.missing_samples.len(),
            t.column,
            name_list(&t.missing_samples, 10)
        );
    }
}

impl FineTuneJob {
    /// A job predicting `metadata_column` of `inputs.metadata` with a fresh model of the
    /// default architecture ([`ModelConfig::default`]) and [`TrainOptions::default`].
    /// These are the reference's defaults (no k-mer or count embedding, no abundance
    /// pooling, the first ASVs within the token limit), not `aam train`'s, which the CLI
    /// sets explicitly.
    pub fn new(inputs: JobInputs, metadata_column: impl Into<String>) -> Self {
        let model = ModelConfig::default();
        FineTuneJob {
            inputs,
            metadata_column: metadata_column.into(),
            more_target_columns: Vec::new(),
            loss_config: None,
            target_type: None,
            target_transform: TargetTransform::default(),
            data: DataSettings {
                max_bp: model.max_bp,
                token_limit: model.token_limit,
                token_limit_policy: Default::default(),
                rarefy_depth: None,
            },
            attention: model.attention,
            mixed_precision: model.mixed_precision,
            model,
            pretrained_encoder: None,
            freeze_base: false,
            count_embedding: None,
            abundance_pooling: false,
            categorical_columns: Vec::new(),
            normalize_by: None,
            categorical_loss_weights: None,
            categorical_loss_weight_column: None,
            options: TrainOptions::default(),
        }
    }

    /// Checks the configuration and the output folder, reads the pretrained encoder's
    /// configuration, the table, the target column, the distances and the groups;
    /// splits the samples (stratified by class for a classifier; writing `split.tsv`)
    /// and standardizes a numeric target with the training samples' mean and standard
    /// deviation (stored in the checkpoint, inverted at prediction).
    ///
    /// Errors: an invalid architecture; an output that holds a checkpoint (without
    /// `overwrite`) or nothing to resume; a pretrained checkpoint that is not an
    /// encoder; no metadata; table samples without a metadata row (without
    /// `allow_sample_subset`); a classification column with a single class; an
    /// unreadable or inconsistent input, each naming the file.
    pub fn prepare(&self) -> Result<PreparedRun> {
        let input = &self.inputs;
        if self.pretrained_encoder.is_none() {
            // Checked before any input is read or anything is written (out_dim and the
            // categories' cardinalities are set from the data later and checked again).
            let mut early = self.model.clone();
            early.head.categorical_cardinalities = self
                .categorical_columns
                .iter()
                .map(|c| (c.clone(), 2))
                .collect();
            early.validate().map_err(anyhow::Error::msg)?;
        }
        check_output(input)?;
        let pretrained = match &self.pretrained_encoder {
            Some(dir) => {
                let pre = checkpoint::load_config(dir)?;
                if pre.kind != ModelKind::Encoder {
                    bail!("{} holds a {:?} checkpoint; --pretrained-encoder takes the output of `aam pretrain`", dir.display(), pre.kind);
                }
                eprintln!(
                    "pretrained encoder: {} (D={}, max_bp {}, token limit {})",
                    dir.display(),
                    pre.model.embedding_dim,
                    pre.model.max_bp,
                    pre.model.token_limit
                );
                Some(pre)
            }
            None => None,
        };
        let seed = self.options.seed;
        let (table, stream) = load_table_input(input, seed)?;
        let md_path = input.metadata.as_ref().context("--metadata is required")?;
        let metadata = Metadata::load(md_path)?;
        let column = &self.metadata_column;
        let target = metadata.target(column, &table.sample_ids, self.target_type)?;
        let more = self.more_targets(&metadata, &table.sample_ids, &target)?;
        if !target.absent_samples.is_empty() && !input.allow_sample_subset {
            bail!(
                "{}: {} of the table's samples have no metadata row: {}; add them, or pass --allow-sample-subset to leave them out",
                md_path.display(),
                target.absent_samples.len(),
                name_list(&target.absent_samples, 10)
            );
        }
        warn_left_out(&target);
        let n_classes = target.classes.len();
        if target.kind == TargetKind::Categorical && n_classes < 2 {
            bail!(
                "column '{column}' has a single class ({}); classification needs at least two",
                name_list(&target.classes, 3)
            );
        }
        let usable: Vec<usize> = (0..table.n_samples())
            .filter(|&i| target.values[i].is_some() && more.iter().all(|m| m.values[i].is_some()))
            .collect();
        let table = table.select_samples(&usable);
        // Each usable sample's values, first column first.
        let mut values_by_id: HashMap<String, Vec<f64>> = table
            .sample_ids
            .iter()
            .cloned()
            .zip(usable.iter().map(|&i| {
                std::iter::once(&target)
                    .chain(&more)
                    .map(|t| t.values[i].expect("filtered"))
                    .collect()
            }))
            .collect();
        let (table, distances) = distance_targets(input, table)?;
        let rows: Vec<Vec<f64>> = table
            .sample_ids
            .iter()
            .map(|s| values_by_id.remove(s).expect("aligned"))
            .collect();
        let raw: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        let classes: Option<Vec<usize>> = (target.kind == TargetKind::Categorical)
            .then(|| raw.iter().map(|&v| v as usize).collect());
        let groups = groups(input, Some(&metadata), &table.sample_ids)?;
        let inherit = self
            .pretrained_encoder
            .as_ref()
            .map(|d| d.join("split.tsv"));
        let split = make_split(
            input,
            &table.sample_ids,
            groups.as_deref(),
            classes.as_deref(),
            seed,
            inherit.as_deref(),
        )?;
        let transform = self.target_transform;
        let loss = &self.options.regression;
        if target.kind == TargetKind::Categorical
            && (loss.kind != LossType::default() || transform != TargetTransform::default())
        {
            bail!("column '{column}' is categorical (classification): --loss-type and --target-transform apply to regression; drop them");
        }
        if !self.options.best_metric.fits(Some(target.kind)) {
            bail!(
                "--best-metric {} does not apply to {} column '{column}'; use val_loss, {}",
                self.options.best_metric.key(),
                if target.kind == TargetKind::Numeric {
                    "the numeric"
                } else {
                    "the categorical"
                },
                if target.kind == TargetKind::Numeric {
                    "r2 or mae"
                } else {
                    "accuracy or f1"
                }
            );
        }
        // The transform's offset and scale of target column k from the training samples.
        let fit = |k: usize, name: &str| {
            let values: Vec<f64> = rows.iter().map(|r| r[k]).collect();
            transform.fit(&values, &split.train).map_err(|i| {
                anyhow::anyhow!(
                    "{}: sample '{}', column '{name}': {} ≤ −1, where ln(y + 1) of --target-transform {} is undefined; use zscore or minmax",
                    md_path.display(),
                    table.sample_ids[i],
                    values[i],
                    transform.name()
                )
            })
        };
        let (mean, std) = match target.kind {
            TargetKind::Numeric => fit(0, column)?,
            TargetKind::Categorical => (0.0, 1.0),
        };
        let more_columns: Vec<TargetColumn> = more
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let (mean, std) = fit(k + 1, &t.column)?;
                Ok(TargetColumn {
                    column: t.column.clone(),
                    mean,
                    std,
                })
            })
            .collect::<Result<_>>()?;
        let categories = match self.categorical_columns.is_empty() {
            true => None,
            false => {
                let c = CategoryIndices::from_training(
                    &metadata,
                    &self.categorical_columns,
                    &table.sample_ids,
                    &split.train,
                )?;
                for (column, labels) in &c.labels {
                    eprintln!(
                        "categorical column '{column}': {} categories in the training samples ({}); {} samples unknown (missing, or a category training never saw)",
                        labels.len(),
                        name_list(labels, 8),
                        c.unknown[column]
                    );
                }
                Some(c)
            }
        };
        // zscore-category: each sample's offset and scale from the training samples of its
        // category of `normalize_by` (one of the categorical columns).
        let by_category = match (transform, &self.normalize_by, &categories) {
            (TargetTransform::ZscoreCategory, Some(col), Some(c))
                if target.kind == TargetKind::Numeric =>
            {
                let Some(at) = c.labels.keys().position(|k| k == col) else {
                    bail!("--normalize-by '{col}' is not in --categorical-columns ({}); the model must see the category to invert the transform at prediction", self.categorical_columns.join(", "));
                };
                let ids: Vec<i64> = c.ids.column(at).to_vec();
                let stats = TargetTransform::fit_by_category(
                    &raw,
                    &split.train,
                    &ids,
                    c.labels[col].len() + 1,
                    (mean, std),
                );
                eprintln!(
                    "target z-scored within '{col}': {}",
                    c.labels[col]
                        .iter()
                        .zip(&stats[1..])
                        .map(|(l, s)| format!("{l} {:.3} ± {:.3}", s[0], s[1]))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Some((col.clone(), stats, ids))
            }
            (TargetTransform::ZscoreCategory, _, _) if target.kind == TargetKind::Numeric => {
                bail!("--target-transform zscore-category needs --normalize-by COLUMN, one of --categorical-columns")
            }
            (_, Some(_), _) => bail!("--normalize-by needs --target-transform zscore-category"),
            _ => None,
        };
        let offset_scale: Option<Vec<[f64; 2]>> = by_category
            .as_ref()
            .map(|(_, stats, ids)| ids.iter().map(|&k| stats[k as usize]).collect());
        let targets: Vec<f32> = match (target.kind, &offset_scale) {
            (TargetKind::Numeric, Some(os)) => raw
                .iter()
                .zip(os)
                .map(|(&v, [o, s])| transform.forward(v, *o, *s) as f32)
                .collect(),
            // `[n_samples, 1 + more]`, row-major: each column by its own statistics.
            (TargetKind::Numeric, None) => {
                let stats: Vec<(f64, f64)> = std::iter::once((mean, std))
                    .chain(more_columns.iter().map(|c| (c.mean, c.std)))
                    .collect();
                rows.iter()
                    .flat_map(|r| r.iter().zip(&stats))
                    .map(|(&v, &(m, s))| transform.forward(v, m, s) as f32)
                    .collect()
            }
            (TargetKind::Categorical, _) => raw.iter().map(|&v| v as f32).collect(),
        };

        let sample_weights = match (&self.categorical_loss_weights, &categories) {
            (None, _) => None,
            (Some(_), None) => bail!("--categorical-loss-weights weighs samples by a categorical column: give --categorical-columns"),
            (Some(w), Some(c)) => {
                let column = self
                    .categorical_loss_weight_column
                    .as_ref()
                    .unwrap_or(&self.categorical_columns[0]);
                let Some(at) = c.labels.keys().position(|k| k == column) else {
                    bail!("--categorical-loss-weight-column '{column}' is not in --categorical-columns ({})", self.categorical_columns.join(", "));
                };
                let (weights, named, unused) =
                    w.weights(&c.labels[column], c.ids.column(at), &split.train);
                eprintln!(
                    "target loss weights by '{column}': {}",
                    named.iter().map(|(l, w)| format!("{l} {w:.3}")).collect::<Vec<_>>().join(", ")
                );
                if !unused.is_empty() {
                    eprintln!(
                        "warning: --categorical-loss-weights names labels no training sample has in '{column}': {}",
                        name_list(&unused, 10)
                    );
                }
                Some(weights)
            }
        };
        let (model, settings) = match &pretrained {
            Some(pre) => {
                let mut m = pre.model.clone();
                // A count embedding can be added on top of an encoder pretrained without one.
                if let (Some(method), false) = (self.count_embedding, m.count_embedding) {
                    m.count_embedding = true;
                    m.count_embedding_method = method;
                    eprintln!(
                        "count embedding `{}` added to the pretrained encoder (fresh layers)",
                        method.name()
                    );
                }
                if self.abundance_pooling && !m.abundance_pooling {
                    m.abundance_pooling = true;
                    eprintln!("abundance-weighted pooling added to the pretrained encoder");
                }
                (m, pre.data.clone())
            }
            None => (self.model.clone(), self.data.clone()),
        };
        let model = ModelConfig {
            out_dim: if target.kind == TargetKind::Categorical {
                n_classes
            } else {
                1 + more_columns.len()
            },
            is_classifier: target.kind == TargetKind::Categorical,
            attention: self.attention,
            mixed_precision: self.mixed_precision,
            head: HeadConfig {
                categorical_cardinalities: categories
                    .as_ref()
                    .map(CategoryIndices::cardinalities)
                    .unwrap_or_default(),
                num_quantiles: (loss.kind == LossType::Quantile).then(|| loss.quantiles.len()),
                // The reference's log-minmax trains a sigmoid output on targets in [0, 1].
                bounded_targets: self.model.head.bounded_targets
                    || transform == TargetTransform::LogMinmax,
                ..self.model.head.clone()
            },
            ..model
        };
        model.validate().map_err(anyhow::Error::msg)?;
        warn_fused_dropout(&model);
        let config = CheckpointConfig {
            format_version: aam_config::FORMAT_VERSION,
            kind: ModelKind::Predictor,
            model,
            data: DataSettings {
                rarefy_depth: input.rarefy_depth,
                ..settings.clone()
            },
            target: Some(TargetInfo {
                column: column.clone(),
                kind: target.kind,
                classes: target.classes.clone(),
                mean,
                std,
                transform,
                normalize_by: by_category.as_ref().map(|b| b.0.clone()),
                by_category: by_category.map(|b| b.1).unwrap_or_default(),
                quantiles: loss.quantiles.clone(),
                categories: categories
                    .as_ref()
                    .map(|c| c.labels.clone())
                    .unwrap_or_default(),
                more_columns: more_columns.clone(),
            }),
        };
        let (dataset, stream) = dataset_and_stream(table, &settings, seed, distances, stream)?;
        let dataset = dataset.with_targets(targets, 1 + more_columns.len())?;
        let mut options = self.options.clone();
        if let Some(lc) = &self.loss_config {
            if target.kind == TargetKind::Categorical {
                bail!("--loss-config sets the losses of regression targets; column '{column}' is categorical");
            }
            let names: Vec<String> = std::iter::once(column.clone())
                .chain(more_columns.iter().map(|c| c.column.clone()))
                .collect();
            options.regression.per_column = lc
                .resolve(&names, options.regression.kind)
                .map_err(anyhow::Error::msg)?;
        }
        if dataset.distances.is_none() {
            options.weights.unifrac = 0.0;
        }
        options.cache_asv_embeddings = self.freeze_base;
        let data = TrainData {
            dataset,
            stream,
            split,
            faith_pd: None,
            target_kind: Some(target.kind),
            target_column: column.clone(),
            more_targets: more_columns,
            n_classes,
            target_mean: mean,
            target_std: std,
            target_transform: transform,
            sample_weights,
            target_offset_scale: offset_scale,
            categorical_ids: categories.map(|c| c.ids),
        };
        Ok(PreparedRun {
            data,
            config,
            options,
        })
    }

    /// The further target columns (`more_target_columns`) of `sample_ids`, numeric.
    ///
    /// Errors: the first target is categorical; a column is repeated, unknown or not
    /// numeric; a quantile loss or `zscore-category` (one target only).
    fn more_targets(
        &self,
        metadata: &Metadata,
        sample_ids: &[String],
        first: &aam_data::Target,
    ) -> Result<Vec<aam_data::Target>> {
        if self.more_target_columns.is_empty() {
            return Ok(Vec::new());
        }
        let all: Vec<&str> = std::iter::once(self.metadata_column.as_str())
            .chain(self.more_target_columns.iter().map(String::as_str))
            .collect();
        if first.kind == TargetKind::Categorical {
            bail!(
                "--metadata-column {}: several target columns are regressed together, and '{}' is categorical; train a classifier on it alone",
                all.join(","),
                first.column
            );
        }
        if let Some(dup) = all.iter().enumerate().find(|(i, c)| all[..*i].contains(c)) {
            bail!("--metadata-column names '{}' twice", dup.1);
        }
        if self.options.regression.kind == LossType::Quantile {
            bail!("--loss-type quantile predicts one target column; give one --metadata-column (or another --loss-type)");
        }
        if self.target_transform == TargetTransform::ZscoreCategory {
            bail!("--target-transform zscore-category applies to one target column; give one --metadata-column (or zscore)");
        }
        self.more_target_columns
            .iter()
            .map(|c| {
                let t = metadata
                    .target(c, sample_ids, Some(TargetKind::Numeric))
                    .with_context(|| {
                        format!("target column '{c}' (several target columns are all numeric)")
                    })?;
                warn_left_out(&t);
                Ok(t)
            })
            .collect()
    }

    /// Trains the predictor of `run` (from [`FineTuneJob::prepare`]) on `devices` (data
    /// parallel when several), from the pretrained encoder's weights when there is one,
    /// writing the checkpoint into the output folder.
    ///
    /// Errors: the pretrained encoder's weights cannot be read or do not fit its
    /// configuration; as [`crate::fit_data_parallel`].
    pub fn fit<B: AutodiffBackend>(
        &self,
        run: &PreparedRun,
        devices: &[B::Device],
        tracker: &mut dyn Tracker,
    ) -> Result<FitReport> {
        self.fit_in_group::<B>(run, devices, tracker, &SingleProcess)
    }

    /// [`Self::fit`] as one process of a training group (`group`; see
    /// [`crate::trainer::fit_in_group`]): every process calls it with the same job, and
    /// writes into its own job's output folder.
    ///
    /// Errors: as [`Self::fit`] and [`crate::trainer::fit_in_group`].
    pub fn fit_in_group<B: AutodiffBackend>(
        &self,
        run: &PreparedRun,
        devices: &[B::Device],
        tracker: &mut dyn Tracker,
        group: &dyn Collective,
    ) -> Result<FitReport> {
        let device = devices.first().cloned().unwrap_or_default();
        B::seed(&device, run.options.seed);
        let model_config = &run.config.model;
        let model = match &self.pretrained_encoder {
            Some(dir) => {
                // `model_config` is the encoder's own plus the target head's width, which
                // the encoder's weights do not involve, and a count embedding the encoder
                // may lack: fresh layers then.
                let has_counts = checkpoint::load_config(dir)?.model.count_embedding;
                let encoder_config = ModelConfig {
                    count_embedding: has_counts,
                    ..model_config.clone()
                };
                let mut base: SequenceEncoder<B> =
                    checkpoint::load_model(dir, "model.safetensors", &encoder_config, &device)?;
                if !has_counts {
                    base.sample_encoder.count_embedding =
                        CountEmbedding::new(model_config, &device);
                }
                SequencePredictor::with_base(base, model_config, &device)
            }
            None => SequencePredictor::new(model_config, &device),
        };
        let model = if self.freeze_base {
            model.freeze_base()
        } else {
            model
        };
        fit_in_group::<B, _>(
            model,
            &run.data,
            &run.options,
            &self.inputs.output,
            &run.config,
            self.inputs.resume,
            devices,
            tracker,
            group,
        )
    }
}
