//! Predictions for every sample of a feature table, in the target's original units.

use aam_config::{CheckpointConfig, ModelKind, TargetInfo};
use aam_data::{FeatureTable, TargetKind};
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3, Axis};

use crate::asv_cache::asv_key;
use crate::categories::{category_ids, SampleCategories};
use crate::error::{Result, RuntimeError};
use crate::model::{Model, RawOutputs};
use crate::prepare::{prepare_table_with, PreparedTable};
use crate::split_graphs::CallEmbeddings;
use aam_data::Dataset;

/// How to run prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictOptions {
    /// Samples per forward pass.
    pub batch_size: usize,
    /// Worker threads (each runs whole batches).
    pub threads: usize,
    /// Forward passes per sample, each on its own random subset of the ASVs beyond the
    /// token limit (the random policy): predictions are their mean, with the standard
    /// deviation as [`SamplePrediction::value_std`]. With another policy every pass
    /// would see the same ASVs: one pass is run, with a warning.
    pub passes: usize,
    /// Which ASVs beyond the token limit the model sees (`aam predict --asv-sampling`);
    /// `None`: the model's own policy, as in training.
    pub token_limit_policy: Option<aam_data::TokenLimitPolicy>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            batch_size: 16,
            threads: 1,
            passes: 1,
            token_limit_policy: None,
        }
    }
}

impl PredictOptions {
    /// The policy that keeps the ASVs beyond the token limit for the model of `config`.
    fn policy(&self, config: &CheckpointConfig) -> aam_data::TokenLimitPolicy {
        self.token_limit_policy
            .unwrap_or(config.data.token_limit_policy)
    }
}

/// The prediction for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePrediction {
    /// Sample ID from the table.
    pub sample_id: String,
    /// ASVs given to the model (after the token limit).
    pub n_asv: usize,
    /// Regression: the prediction in the target's original units (the inverse of the
    /// target transform; a quantile regressor's middle level; the first column's of a
    /// regressor of several).
    pub value: Option<f64>,
    /// A regressor of several target columns: the prediction of each, in
    /// [`Predictions::target_columns`] order and each column's units; empty otherwise.
    pub values: Vec<f64>,
    /// A regressor of several target columns with several passes: the population
    /// standard deviation of each of `values` over the passes; empty otherwise.
    pub values_std: Vec<f64>,
    /// Quantile regression: the prediction at each level of
    /// [`Predictions::quantile_levels`], in the target's original units.
    pub quantiles: Vec<f64>,
    /// Regression with several passes ([`PredictOptions::passes`]): the population
    /// standard deviation of `value` over the passes, in the target's units.
    pub value_std: Option<f64>,
    /// Classification: the most probable class label.
    pub label: Option<String>,
    /// Classification: one probability per class, in [`Predictions::classes`] order.
    pub probabilities: Vec<f32>,
    /// Pooled sample embedding `[D]` (empty when the sample could not be predicted).
    pub embedding: Vec<f32>,
    /// Why there is no prediction (a sample with no ASV with reads), else `None`.
    pub note: Option<String>,
}

/// Predictions for a whole table, in table sample order.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Encoder (embeddings only) or predictor.
    pub kind: ModelKind,
    /// Regression or classification (predictors).
    pub target_kind: Option<TargetKind>,
    /// Metadata column the model predicts, if recorded (the first of several).
    pub target_column: Option<String>,
    /// Every target column of a regressor of several, in the order of each sample's
    /// `values`; empty for a model of one target.
    pub target_columns: Vec<String>,
    /// Class labels in probability order (classifiers).
    pub classes: Vec<String>,
    /// Quantile levels τ of a quantile regressor, in the order of each sample's
    /// `quantiles`; empty otherwise.
    pub quantile_levels: Vec<f64>,
    /// Forward passes averaged per sample (see [`PredictOptions::passes`]).
    pub passes: usize,
    /// One entry per table sample.
    pub samples: Vec<SamplePrediction>,
    /// Notes for the user (input preparation, unpredictable samples).
    pub warnings: Vec<String>,
}

/// Runs one batch through a model: tokens int64 `[batch, n_asv, max_bp + 1]`, the
/// slots' read counts f32 `[batch, n_asv, 1]` (read by a model that reads counts: a
/// count embedding or abundance-weighted pooling) and, for a model conditioned on
/// metadata categories, the category indices int64 `[batch, n_columns]`.
pub type Runner<'a> = dyn Fn(ArrayView3<'_, i64>, ArrayView3<'_, f32>, Option<ArrayView2<'_, i64>>) -> Result<RawOutputs>
    + Sync
    + 'a;

impl Model {
    /// Predicts a table read a chunk of samples at a time (`chunks`, e.g.
    /// [`aam_data::BiomSampleChunks`]): the predictions of every chunk in table order,
    /// with each distinct warning once (a note about an ASV comes with every chunk that
    /// holds it). Memory follows the chunk, not the table. `categories`: as
    /// [`Model::predict_table_with_categories`].
    ///
    /// Errors: a chunk that cannot be read; as [`Model::predict_table`]; no samples.
    pub fn predict_table_chunks(
        &self,
        chunks: impl IntoIterator<Item = aam_data::Result<FeatureTable>>,
        origin: &str,
        options: PredictOptions,
        categories: Option<&SampleCategories>,
    ) -> Result<Predictions> {
        let mut all: Option<Predictions> = None;
        for chunk in chunks {
            let preds = self.predict_table_with_categories(chunk?, origin, options, categories)?;
            match &mut all {
                None => all = Some(preds),
                Some(a) => {
                    a.samples.extend(preds.samples);
                    for w in preds.warnings {
                        if !a.warnings.contains(&w) {
                            a.warnings.push(w);
                        }
                    }
                }
            }
        }
        all.ok_or_else(|| RuntimeError::Input(format!("{origin}: the table has no samples")))
    }

    /// Predicts every sample of `table` (read from `origin`, used in messages) with
    /// tract; see [`predict_with`].
    ///
    /// Errors: as [`predict_with`]; the model is conditioned on metadata categories (use
    /// [`Model::predict_table_with_categories`]).
    pub fn predict_table(
        &self,
        table: FeatureTable,
        origin: &str,
        options: PredictOptions,
    ) -> Result<Predictions> {
        self.predict_table_with_categories(table, origin, options, None)
    }

    /// [`Model::predict_table`] for a model that may be conditioned on metadata
    /// categories: each sample's labels from `categories` (see
    /// [`crate::category_ids`]; not read for a model without conditioning).
    ///
    /// Errors: as [`predict_with`].
    pub fn predict_table_with_categories(
        &self,
        table: FeatureTable,
        origin: &str,
        options: PredictOptions,
        categories: Option<&SampleCategories>,
    ) -> Result<Predictions> {
        // The split graphs of every model that runs (an ensemble's members, or this one).
        let splits: Option<Vec<_>> = self.members().iter().map(|m| m.split()).collect();
        let Some(splits) = splits else {
            return predict_with(
                self.config(),
                table,
                origin,
                options,
                categories,
                &|t, c, i| self.run_with(t, Some(c), i, &[]),
            );
        };
        // ASV-embedding path: every unique ASV of the table is encoded once per model, up
        // front and in parallel; the batches then only run the sample graphs.
        let calls: Vec<CallEmbeddings> = splits.iter().map(|_| CallEmbeddings::default()).collect();
        let encode_all = |ds: &Dataset, batches: &[&[usize]], passes: u64| {
            let mut keys = std::collections::HashSet::new();
            for (b, pass) in batches
                .iter()
                .flat_map(|b| (0..passes).map(move |p| (b, p)))
            {
                let tokens = ds.batch(b, None, pass).tokens;
                keys.extend(
                    tokens
                        .outer_iter()
                        .flat_map(|s| s.outer_iter().filter_map(asv_key).collect::<Vec<_>>()),
                );
            }
            for (split, call) in splits.iter().zip(&calls) {
                split.encode(keys.iter(), call, options.threads.max(1))?;
            }
            Ok(())
        };
        let policy = options.policy(self.config());
        predict_prepared(
            self.config(),
            prepare_table_with(table, self.config(), origin, policy)?,
            options,
            categories,
            &|t, c, i| self.run_with(t, Some(c), i, &calls),
            Some(&encode_all),
        )
    }

    /// Predicts a token batch int64 `[batch, n_asv, max_bp + 1]` (see [`Model::run`]);
    /// sample IDs are the row numbers `0`, `1`, …, and every row gets a prediction (an
    /// all-padding row gives the model's finite output for an empty sample).
    ///
    /// Errors: as [`Model::run`].
    pub fn predict_tokens(&self, tokens: ArrayView3<'_, i64>) -> Result<Predictions> {
        self.predict_tokens_counts(tokens, None, None)
    }

    /// [`Model::predict_tokens`] with each slot's read count f32 `[batch, n_asv, 1]`,
    /// which a model that reads counts (a count embedding or abundance-weighted pooling) needs ([`Model::uses_counts`]).
    ///
    /// Errors: as [`Model::run_with_counts`].
    pub fn predict_tokens_with_counts(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: ArrayView3<'_, f32>,
    ) -> Result<Predictions> {
        self.predict_tokens_counts(tokens, Some(counts), None)
    }

    /// [`Model::predict_tokens`] of a model conditioned on metadata categories: each
    /// sample's category indices int64 `[batch, n_columns]` (columns in
    /// [`aam_config::CheckpointConfig::conditioning_columns`] order; label `k` of a column
    /// is `k + 1`, 0 unknown) and `counts` as [`Model::predict_tokens_with_counts`]
    /// (`None` for a model that reads none).
    ///
    /// Errors: as [`Model::run_with_categories`].
    pub fn predict_tokens_with_categories(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        categorical_ids: ArrayView2<'_, i64>,
    ) -> Result<Predictions> {
        self.predict_tokens_counts(tokens, counts, Some(categorical_ids))
    }

    fn predict_tokens_counts(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        ids: Option<ArrayView2<'_, i64>>,
    ) -> Result<Predictions> {
        let config = self.config();
        let out = self.run_with(tokens, counts, ids, &[])?;
        let mut warnings = Vec::new();
        let layout = TargetLayout::new(config, &mut warnings);
        let samples = (0..tokens.dim().0)
            .map(|row| {
                let mut p = SamplePrediction::empty(row.to_string());
                p.n_asv = tokens
                    .slice(ndarray::s![row, .., ..])
                    .outer_iter()
                    .filter(|slot| slot.iter().any(|&t| t > 0))
                    .count();
                layout.fill(&mut p, &out, row, ids.as_ref().map(|i| i.row(row)));
                p
            })
            .collect();
        Ok(layout.finish(config, samples, warnings))
    }
}

impl SamplePrediction {
    fn empty(sample_id: String) -> Self {
        SamplePrediction {
            sample_id,
            n_asv: 0,
            value: None,
            values: Vec::new(),
            values_std: Vec::new(),
            label: None,
            quantiles: Vec::new(),
            value_std: None,
            probabilities: Vec::new(),
            embedding: Vec::new(),
            note: None,
        }
    }
}

/// How raw outputs become predictions for one model.
struct TargetLayout {
    kind: Option<TargetKind>,
    classes: Vec<String>,
    /// `(offset, scale)` of a regression target's transform.
    scale: (f64, f64),
    /// The regression target's transform (inverted into the target's units).
    transform: aam_config::TargetTransform,
    /// The regression target (its transform's offset and scale by category for
    /// `zscore-category`).
    target: Option<TargetInfo>,
    /// Position of the target's `normalize_by` column among the model's categorical
    /// columns (the index each sample's category is read from).
    category_column: Option<usize>,
    /// Quantile levels of a quantile regressor.
    quantiles: Vec<f64>,
    /// Every target column of a regressor of several (empty for one target).
    columns: Vec<String>,
}

impl TargetLayout {
    fn new(config: &CheckpointConfig, warnings: &mut Vec<String>) -> Self {
        let (kind, classes, scale) = target_layout(
            config.kind,
            config.target.as_ref(),
            config.model.out_dim,
            warnings,
        );
        let target = config
            .target
            .as_ref()
            .filter(|_| config.kind == ModelKind::Predictor);
        let width = config.model.head.num_quantiles.unwrap_or(1);
        let mut quantiles = target.map(|t| t.quantiles.clone()).unwrap_or_default();
        if kind == Some(TargetKind::Numeric) && width > 1 && quantiles.len() != width {
            warnings.push(format!(
                "the model predicts {width} quantiles but records {} levels; they are called by position 1..{width}",
                quantiles.len()
            ));
            quantiles = (1..=width).map(|i| i as f64).collect();
        }
        if kind != Some(TargetKind::Numeric) || width == 1 {
            quantiles.clear();
        }
        TargetLayout {
            kind,
            classes,
            scale,
            transform: target.map(|t| t.transform).unwrap_or_default(),
            category_column: target
                .and_then(|t| t.normalize_by.as_deref())
                .and_then(|c| {
                    config
                        .model
                        .head
                        .categorical_columns()
                        .iter()
                        .position(|k| *k == c)
                }),
            columns: match target {
                Some(t) if t.kind == TargetKind::Numeric && !t.more_columns.is_empty() => {
                    t.column_names().into_iter().map(String::from).collect()
                }
                _ => Vec::new(),
            },
            target: target.filter(|t| t.kind == TargetKind::Numeric).cloned(),
            quantiles,
        }
    }

    /// Fills `p` from row `row` of `out`; `ids` holds the sample's category indices
    /// (`[n_columns]`, a model conditioned on categories).
    fn fill(
        &self,
        p: &mut SamplePrediction,
        out: &RawOutputs,
        row: usize,
        ids: Option<ArrayView1<'_, i64>>,
    ) {
        p.note = None;
        p.embedding = out.embeddings.row(row).to_vec();
        match (self.kind, &out.class_probabilities, &out.target_prediction) {
            (Some(TargetKind::Categorical), Some(probs), _) => {
                p.probabilities = probs.row(row).to_vec();
                p.label = Some(self.classes[argmax(&p.probabilities)].clone());
            }
            (Some(TargetKind::Numeric), _, Some(z)) => {
                let category = ids.zip(self.category_column).map(|(i, c)| i[c]);
                let (offset, scale) = match &self.target {
                    Some(t) => t.offset_scale(category),
                    None => self.scale,
                };
                let units = |v: f32| self.transform.inverse(f64::from(v), offset, scale);
                let z = z.row(row);
                if let (false, Some(t)) = (self.columns.is_empty(), &self.target) {
                    // One output per target column, each by its own statistics.
                    p.values = (0..self.columns.len().min(z.len()))
                        .map(|k| {
                            let (o, s) = t.column_offset_scale(k, category).unwrap_or((0.0, 1.0));
                            self.transform.inverse(f64::from(z[k]), o, s)
                        })
                        .collect();
                    p.value = p.values.first().copied();
                    return;
                }
                // A quantile regressor's point prediction is its middle level (index
                // Q / 2), as in training's metrics.
                p.value = Some(units(z[z.len() / 2]));
                if !self.quantiles.is_empty() {
                    p.quantiles = z.iter().map(|&v| units(v)).collect();
                }
            }
            _ => {}
        }
    }

    /// The prediction of several passes over one sample (`each`, non-empty, filled by
    /// [`TargetLayout::fill`]): the mean value, quantiles, probabilities and embedding;
    /// the population standard deviation of the value; a classifier's label from the
    /// mean probabilities. One pass is returned as it is.
    fn mean(&self, mut each: Vec<SamplePrediction>) -> SamplePrediction {
        if each.len() <= 1 {
            return each.pop().expect("one pass at least");
        }
        let n = each.len() as f64;
        let mean_f32 = |rows: Vec<&Vec<f32>>| -> Vec<f32> {
            let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
            (0..len)
                .map(|k| (rows.iter().map(|r| f64::from(r[k])).sum::<f64>() / n) as f32)
                .collect()
        };
        let mut p = SamplePrediction::empty(each[0].sample_id.clone());
        p.embedding = mean_f32(each.iter().map(|e| &e.embedding).collect());
        p.probabilities = mean_f32(each.iter().map(|e| &e.probabilities).collect());
        if !p.probabilities.is_empty() {
            p.label = self.classes.get(argmax(&p.probabilities)).cloned();
        }
        // The mean and population standard deviation of one value over the passes.
        let mean_std = |values: &[f64]| {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt())
        };
        let values: Vec<f64> = each.iter().filter_map(|e| e.value).collect();
        if values.len() == each.len() {
            let (mean, std) = mean_std(&values);
            p.value = Some(mean);
            p.value_std = Some(std);
        }
        let k = each[0].values.len();
        if k > 0 && each.iter().all(|e| e.values.len() == k) {
            (p.values, p.values_std) = (0..k)
                .map(|j| mean_std(&each.iter().map(|e| e.values[j]).collect::<Vec<_>>()))
                .unzip();
        }
        let q = each[0].quantiles.len();
        p.quantiles = (0..q)
            .map(|k| each.iter().map(|e| e.quantiles[k]).sum::<f64>() / n)
            .collect();
        p
    }

    fn finish(
        self,
        config: &CheckpointConfig,
        samples: Vec<SamplePrediction>,
        warnings: Vec<String>,
    ) -> Predictions {
        Predictions {
            kind: config.kind,
            target_kind: self.kind,
            target_column: config.target.as_ref().map(|t| t.column.clone()),
            target_columns: self.columns,
            classes: self.classes,
            quantile_levels: self.quantiles,
            passes: 1,
            samples,
            warnings,
        }
    }
}

/// Predicts every sample of `table` for the model of `config`, running batches with
/// `runner` (tract here; the CLI also passes a Burn model).
///
/// Samples with no ASV with reads get no prediction and a `note`; they are listed in
/// `warnings`, never dropped. A model conditioned on metadata categories reads each
/// sample's labels from `categories` ([`crate::category_ids`]).
///
/// Errors: the table's observation IDs are not sequences; the model is conditioned and
/// `categories` is `None` or lacks one of its columns; the model fails.
pub fn predict_with(
    config: &CheckpointConfig,
    table: FeatureTable,
    origin: &str,
    options: PredictOptions,
    categories: Option<&SampleCategories>,
    runner: &Runner<'_>,
) -> Result<Predictions> {
    let prepared = prepare_table_with(table, config, origin, options.policy(config))?;
    predict_prepared(config, prepared, options, categories, runner, None)
}

/// Called once with the dataset, the batches and the number of passes before they run.
type BeforeBatches<'a> = dyn Fn(&Dataset, &[&[usize]], u64) -> Result<()> + Sync + 'a;

fn predict_prepared(
    config: &CheckpointConfig,
    prepared: PreparedTable,
    options: PredictOptions,
    categories: Option<&SampleCategories>,
    runner: &Runner<'_>,
    before: Option<&BeforeBatches<'_>>,
) -> Result<Predictions> {
    let mut warnings = prepared.warnings;
    let ds = &prepared.dataset;
    let (ids, notes) = category_ids(config, &ds.table.sample_ids, categories)?;
    warnings.extend(notes);
    let usable: Vec<usize> = (0..ds.table.n_samples())
        .filter(|&s| prepared.asvs_with_reads[s] > 0)
        .collect();
    let batch_size = options.batch_size.max(1);
    let batches: Vec<&[usize]> = usable.chunks(batch_size).collect();
    let mut passes = options.passes.max(1);
    let policy = options.policy(config);
    if passes > 1 && policy != aam_data::TokenLimitPolicy::Random {
        warnings.push(format!(
            "{passes} prediction passes would all see the same ASVs under the '{}' token-limit policy: one pass is run (use --asv-sampling random)",
            format!("{policy:?}").to_lowercase()
        ));
        passes = 1;
    }
    if let Some(before) = before {
        before(ds, &batches, passes as u64)?;
    }
    let threads = options.threads.max(1);
    let outputs: Vec<Vec<RawOutputs>> = (0..passes as u64)
        .map(|pass| run_batches(runner, ds, ids.as_ref(), &batches, threads, pass))
        .collect::<Result<_>>()?;

    let layout = TargetLayout::new(config, &mut warnings);
    let mut samples: Vec<SamplePrediction> = ds
        .table
        .sample_ids
        .iter()
        .map(|id| SamplePrediction {
            note: Some("no ASV with reads in this sample; nothing to predict from".into()),
            ..SamplePrediction::empty(id.clone())
        })
        .collect();
    for (i, batch) in batches.iter().enumerate() {
        for (row, &s) in batch.iter().enumerate() {
            let each: Vec<SamplePrediction> = outputs
                .iter()
                .map(|pass| {
                    let mut p = SamplePrediction::empty(ds.table.sample_ids[s].clone());
                    layout.fill(&mut p, &pass[i], row, ids.as_ref().map(|a| a.row(s)));
                    p
                })
                .collect();
            let p = &mut samples[s];
            *p = layout.mean(each);
            p.n_asv = prepared.asvs_with_reads[s].min(config.model.token_limit);
        }
    }
    let skipped: Vec<&str> = samples
        .iter()
        .filter(|p| p.note.is_some())
        .map(|p| p.sample_id.as_str())
        .collect();
    if !skipped.is_empty() {
        warnings.push(format!(
            "{} samples have no ASV with reads and get no prediction (written with a note): {}",
            skipped.len(),
            aam_data::error::name_list(&skipped, 10)
        ));
    }
    let mut preds = layout.finish(config, samples, warnings);
    preds.passes = passes;
    Ok(preds)
}

/// Runs the batches on `threads` workers, keeping batch order; `ids` holds the category
/// indices of every sample of `ds` (conditioned models); `pass` draws the random
/// token-limit subsets (pass 0: those of a single-pass prediction).
fn run_batches(
    runner: &Runner<'_>,
    ds: &aam_data::Dataset,
    ids: Option<&Array2<i64>>,
    batches: &[&[usize]],
    threads: usize,
    pass: u64,
) -> Result<Vec<RawOutputs>> {
    let run_one = |b: &[usize]| {
        let batch = ds.batch(b, None, pass);
        let (n, s) = batch.counts.dim();
        let counts = batch
            .counts
            .view()
            .into_shape_with_order((n, s, 1))
            .map_err(|e| {
                RuntimeError::Run(format!(
                    "the batch's counts do not reshape to [{n}, {s}, 1]: {e}"
                ))
            })?;
        let ids = ids.map(|i| i.select(Axis(0), b));
        runner(batch.tokens.view(), counts, ids.as_ref().map(|i| i.view()))
    };
    if threads == 1 || batches.len() <= 1 {
        return batches.iter().map(|b| run_one(b)).collect();
    }
    let mut results: Vec<Option<Result<RawOutputs>>> = (0..batches.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(batches.len()))
            .map(|t| {
                let run_one = &run_one;
                scope.spawn(move || {
                    (t..batches.len())
                        .step_by(threads)
                        .map(|i| (i, run_one(batches[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        results[i] = Some(r);
                    }
                }
                Err(_) => {}
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RuntimeError::Run("a worker thread stopped".into()))))
        .collect()
}

/// Target kind, class labels and `(mean, std)` for turning outputs into predictions.
fn target_layout(
    kind: ModelKind,
    target: Option<&TargetInfo>,
    out_dim: usize,
    warnings: &mut Vec<String>,
) -> (Option<TargetKind>, Vec<String>, (f64, f64)) {
    if kind == ModelKind::Encoder {
        return (None, Vec::new(), (0.0, 1.0));
    }
    match target {
        Some(t) if t.kind == TargetKind::Categorical => {
            let mut classes = t.classes.clone();
            if classes.len() != out_dim {
                warnings.push(format!(
                    "the model records {} class labels for {out_dim} outputs; unnamed classes are called class_N",
                    classes.len()
                ));
                classes = (0..out_dim)
                    .map(|i| {
                        classes
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("class_{i}"))
                    })
                    .collect();
            }
            (Some(TargetKind::Categorical), classes, (0.0, 1.0))
        }
        Some(t) => (Some(TargetKind::Numeric), Vec::new(), (t.mean, t.std)),
        None if out_dim > 1 => {
            warnings.push("the model records no class labels; classes are called class_N".into());
            (
                Some(TargetKind::Categorical),
                (0..out_dim).map(|i| format!("class_{i}")).collect(),
                (0.0, 1.0),
            )
        }
        None => {
            warnings.push("the model records no target mean/std; predictions are in the model's standardized units".into());
            (Some(TargetKind::Numeric), Vec::new(), (0.0, 1.0))
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use aam_config::{DataSettings, ModelConfig, TargetInfo, TargetTransform};
    use ndarray::{array, Array2};

    /// A predictor of `model` and `target` (max bp 10, token limit 8).
    fn predictor(model: ModelConfig, target: TargetInfo) -> CheckpointConfig {
        CheckpointConfig {
            format_version: aam_config::FORMAT_VERSION,
            kind: ModelKind::Predictor,
            model,
            data: DataSettings {
                max_bp: 10,
                token_limit: 8,
                token_limit_policy: Default::default(),
                rarefy_depth: None,
            },
            target: Some(target),
        }
    }

    #[test]
    fn quantile_outputs_are_inverted_into_the_targets_units() {
        let mut model = ModelConfig::default();
        model.head.num_quantiles = Some(3);
        let config = predictor(
            model,
            TargetInfo {
                more_columns: Vec::new(),
                column: "days".into(),
                kind: TargetKind::Numeric,
                classes: Vec::new(),
                mean: 1.0,
                std: 2.0,
                transform: TargetTransform::LogZscore,
                normalize_by: None,
                by_category: Vec::new(),
                quantiles: vec![0.1, 0.5, 0.9],
                categories: Default::default(),
            },
        );
        let mut warnings = Vec::new();
        let layout = TargetLayout::new(&config, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        let out = RawOutputs {
            embeddings: Array2::zeros((1, 4)),
            target_prediction: Some(array![[0.0f32, 1.0, 2.0]]),
            class_probabilities: None,
            count_prediction: None,
        };
        let mut p = SamplePrediction::empty("s".into());
        layout.fill(&mut p, &out, 0, None);
        // exp(z·2 + 1) − 1 at z = 0, 1, 2; the point prediction is the 0.5 level.
        let want = [1f64.exp() - 1.0, 3f64.exp() - 1.0, 5f64.exp() - 1.0];
        for (g, w) in p.quantiles.iter().zip(want) {
            assert!((g - w).abs() < 1e-9 * w, "{g} vs {w}");
        }
        assert_eq!(p.quantiles.len(), 3);
        assert_eq!(p.value, Some(p.quantiles[1]));
        let preds = layout.finish(&config, vec![p], warnings);
        assert_eq!(preds.quantile_levels, vec![0.1, 0.5, 0.9]);
        let tsv = String::from_utf8(preds.to_tsv()).unwrap();
        assert!(
            tsv.starts_with(
                "sample_id\tprediction\tquantile_0.1\tquantile_0.5\tquantile_0.9\tn_asv"
            ),
            "{tsv}"
        );
    }

    #[test]
    fn several_target_columns_are_each_inverted_by_their_statistics() {
        let model = ModelConfig {
            out_dim: 2,
            ..ModelConfig::default()
        };
        let config = predictor(
            model,
            TargetInfo {
                more_columns: vec![aam_config::TargetColumn {
                    column: "ph".into(),
                    mean: 5.0,
                    std: 0.5,
                }],
                column: "days".into(),
                kind: TargetKind::Numeric,
                classes: Vec::new(),
                mean: 10.0,
                std: 2.0,
                transform: TargetTransform::Zscore,
                normalize_by: None,
                by_category: Vec::new(),
                quantiles: Vec::new(),
                categories: Default::default(),
            },
        );
        let mut warnings = Vec::new();
        let layout = TargetLayout::new(&config, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        let out = |z: [f32; 2]| RawOutputs {
            embeddings: Array2::zeros((1, 4)),
            target_prediction: Some(Array2::from_shape_vec((1, 2), z.to_vec()).unwrap()),
            class_probabilities: None,
            count_prediction: None,
        };
        // z·std + mean per column: 1·2 + 10 = 12 and −1·0.5 + 5 = 4.5; then 14 and 5.5.
        let passes: Vec<SamplePrediction> = [[1.0, -1.0], [2.0, 1.0]]
            .iter()
            .map(|&z| {
                let mut p = SamplePrediction::empty("s".into());
                layout.fill(&mut p, &out(z), 0, None);
                p
            })
            .collect();
        assert_eq!(passes[0].values, vec![12.0, 4.5]);
        assert_eq!(passes[0].value, Some(12.0));
        let mean = layout.mean(passes);
        assert_eq!(mean.values, vec![13.0, 5.0]);
        assert_eq!(mean.values_std, vec![1.0, 0.5]);
        let mut preds = layout.finish(&config, vec![mean], warnings);
        preds.passes = 2;
        assert_eq!(preds.target_columns, vec!["days", "ph"]);
        let tsv = String::from_utf8(preds.to_tsv()).unwrap();
        assert!(
            tsv.starts_with(
                "sample_id\tprediction_days\tprediction_ph\tprediction_std_days\tprediction_std_ph\tn_asv\tnote\ns\t13\t5\t1\t0.5\t"
            ),
            "{tsv}"
        );
    }
}
