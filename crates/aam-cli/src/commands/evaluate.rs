//! `aam evaluate`: how right an exported model is on samples with known targets —
//! metrics with bootstrap confidence intervals, per-sample errors, a confusion matrix,
//! the correlation of errors with sequencing depth, ASV count and numeric metadata, and
//! plots (PNG and SVG).

use std::path::{Path, PathBuf};

use aam_data::error::name_list;
use aam_data::evaluation::{classification_metrics, regression_metrics, Bootstrap, MetricValue};
use aam_data::evaluation_report::{
    confusion_tsv, covariate_correlations, metrics_tsv, per_sample_tsv, EvaluatedSample as Row,
};
use aam_data::files::write_atomic;
use aam_data::metrics::confusion_matrix;
use aam_data::{Metadata, Target, TargetKind};
use anyhow::{bail, Context, Result};
use clap::Args;

use super::predict::{self, Backend, PlacementArgs, PredictArgs};
use aam_train::plots;

/// A feature table and the metadata column of its samples' true values (shared by
/// `evaluate`, `baseline` and `importance`).
#[derive(Args, Debug, Clone)]
pub struct LabelledSamples {
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2
    /// FeatureTable[Frequency] .qza); observation IDs are ASV sequences, or feature IDs
    /// that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// Metadata TSV holding the true values.
    #[arg(long)]
    pub metadata: PathBuf,
    /// Column of the true values (the model's target).
    #[arg(long)]
    pub metadata_column: String,
}

/// Arguments of `aam evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Exported predictor: a directory from `aam export` (or its model.onnx /
    /// model.safetensors). Default: the shipped model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub data: LabelledSamples,
    /// Directory for metrics.tsv, per_sample.tsv, error_correlations.tsv,
    /// confusion_matrix.tsv (classifiers) and the plots.
    #[arg(long)]
    pub output: PathBuf,
    /// Evaluate only the validation samples of this split (`split.tsv` of an `aam train`
    /// run), the samples `aam baseline --split` scores too.
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Replace the files of an earlier evaluation in --output.
    #[arg(long)]
    pub overwrite: bool,
    /// Bootstrap resamples for the 95% confidence intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Engine that runs the model.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    pub backend: Backend,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// Files written into `--output`.
const OUTPUTS: [&str; 10] = [
    "metrics.tsv",
    "per_sample.tsv",
    "error_correlations.tsv",
    "confusion_matrix.tsv",
    "predicted_vs_true.png",
    "predicted_vs_true.svg",
    "residuals.png",
    "residuals.svg",
    "confusion_matrix.png",
    "confusion_matrix.svg",
];

pub fn run(args: &EvaluateArgs) -> Result<()> {
    check_output(&args.output, args.overwrite)?;
    let preds = predict::predictions(&PredictArgs {
        model: args.model.clone(),
        table: args.data.table.clone(),
        sequences: args.data.sequences.clone(),
        // The truth's metadata also gives a conditioned model its categories.
        metadata: Some(args.data.metadata.clone()),
        output: None,
        embeddings: None,
        overwrite: false,
        batch_size: args.batch_size,
        threads: 1,
        backend: args.backend,
        asv_sampling: None,
        prediction_passes: 1,
        streaming: false,
        chunk_samples: 10_000,
        placement: args.placement.clone(),
    })?;
    for w in &preds.warnings {
        eprintln!("warning: {w}");
    }
    let kind = preds.target_kind.with_context(|| {
        "this model is an encoder (embeddings only): evaluate a predictor from `aam train`"
            .to_string()
    })?;
    // A regressor of several columns is evaluated on the one named (else its first).
    let column = preds
        .target_columns
        .iter()
        .position(|c| c == &args.data.metadata_column);
    if let (Some(trained), None) = (&preds.target_column, column) {
        if trained != &args.data.metadata_column {
            eprintln!(
                "warning: the model was trained on column '{trained}', evaluated against '{}'",
                args.data.metadata_column
            );
        }
    }
    let (table, _) =
        aam_data::load_table_with_sequences(&args.data.table, args.data.sequences.as_deref())?;
    let depths = table.depths();
    let metadata = Metadata::load(&args.data.metadata)?;
    // With --split, only its validation samples are considered, so every count below
    // (excluded, unpredicted) is of those samples.
    let mut considered: Vec<usize> = (0..preds.samples.len()).collect();
    if let Some(path) = &args.split {
        let validation = validation_ids(path)?;
        considered.retain(|&i| validation.contains(&preds.samples[i].sample_id));
        eprintln!(
            "split {}: {} of the {} samples are in its validation set",
            path.display(),
            considered.len(),
            preds.samples.len()
        );
    }
    let ids: Vec<String> = considered
        .iter()
        .map(|&i| preds.samples[i].sample_id.clone())
        .collect();
    let target = metadata.target(&args.data.metadata_column, &ids, Some(kind))?;
    let mut excluded = unusable_samples(&target, &args.data.metadata, &args.data.metadata_column);
    let mut unpredicted = Vec::new();
    let mut unknown_labels = std::collections::BTreeSet::new();
    let mut rows: Vec<Row> = Vec::new();
    for (&i, truth) in considered.iter().zip(&target.values) {
        let p = &preds.samples[i];
        let Some(truth) = truth else { continue };
        let (truth, predicted, error, probabilities) = match kind {
            TargetKind::Numeric => {
                let Some(v) = column.map_or(p.value, |k| p.values.get(k).copied()) else {
                    unpredicted.push(p.sample_id.clone());
                    continue;
                };
                (*truth, v, v - truth, Vec::new())
            }
            TargetKind::Categorical => {
                let label = &target.classes[*truth as usize];
                let Some(t) = preds.classes.iter().position(|c| c == label) else {
                    unknown_labels.insert(label.clone());
                    continue;
                };
                let (Some(l), false) = (&p.label, p.probabilities.is_empty()) else {
                    unpredicted.push(p.sample_id.clone());
                    continue;
                };
                let predicted = preds.classes.iter().position(|c| c == l).unwrap_or(0);
                let probs: Vec<f64> = p.probabilities.iter().map(|&x| f64::from(x)).collect();
                (t as f64, predicted as f64, 1.0 - probs[t], probs)
            }
        };
        rows.push(Row {
            sample: p.sample_id.clone(),
            truth,
            predicted,
            error,
            probabilities,
            depth: depths[i],
            n_asv: table.sample_nnz(i) as f64,
        });
    }
    if !unpredicted.is_empty() {
        excluded.push(format!(
            "{} samples have no prediction (no ASV with reads: {})",
            unpredicted.len(),
            name_list(&unpredicted, 5)
        ));
    }
    if !unknown_labels.is_empty() {
        let labels: Vec<String> = unknown_labels.into_iter().collect();
        excluded.push(format!(
            "samples of classes the model does not know were left out: {} (model classes: {})",
            name_list(&labels, 10),
            name_list(&preds.classes, 10)
        ));
    }
    for e in &excluded {
        eprintln!("excluded: {e}");
    }
    if rows.len() < 2 {
        bail!(
            "{}: only {} samples have both a prediction and a value in column '{}'{}; at least 2 are needed",
            args.data.metadata.display(),
            rows.len(),
            args.data.metadata_column,
            if args.split.is_some() { " and are in the --split validation set" } else { "" }
        );
    }
    let b = Bootstrap {
        resamples: args.bootstrap,
        seed: args.seed,
    };
    let metrics = write_report(
        &args.output,
        kind,
        &rows,
        &preds.classes,
        &args.data.metadata_column,
        b,
    )?;
    let correlations = covariate_correlations(&rows, &metadata, &args.data.metadata_column);
    write_atomic(
        &args.output.join("error_correlations.tsv"),
        correlations.as_bytes(),
    )?;
    print_summary(&metrics, rows.len(), &args.data.metadata_column, b);
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// Why samples of `target` have no value: absent from the metadata, or missing.
pub(crate) fn unusable_samples(target: &Target, metadata: &Path, column: &str) -> Vec<String> {
    let mut excluded = Vec::new();
    if !target.absent_samples.is_empty() {
        excluded.push(format!(
            "{} samples have no row in {} ({})",
            target.absent_samples.len(),
            metadata.display(),
            name_list(&target.absent_samples, 5)
        ));
    }
    if !target.missing_samples.is_empty() {
        excluded.push(format!(
            "{} samples have no value in column '{column}' ({})",
            target.missing_samples.len(),
            name_list(&target.missing_samples, 5)
        ));
    }
    excluded
}

/// Sample IDs of the validation set of a `split.tsv`.
pub(crate) fn validation_ids(path: &Path) -> Result<std::collections::HashSet<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the split {}", path.display()))?;
    let ids: std::collections::HashSet<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.trim_end_matches('\r').split_once('\t'))
        .filter(|(_, set)| *set == "validation")
        .map(|(id, _)| id.to_string())
        .collect();
    if ids.is_empty() {
        bail!("{}: no sample is in the validation set (expected `sample_id<TAB>train|validation` rows, as `aam train` writes)", path.display());
    }
    Ok(ids)
}

/// Prints every metric with its interval.
pub(crate) fn print_summary(metrics: &[MetricValue], n: usize, column: &str, b: Bootstrap) {
    eprintln!(
        "{n} samples evaluated against '{column}' ({} bootstrap resamples):",
        b.resamples
    );
    for m in metrics {
        eprintln!(
            "  {:<9} {:.4}  [{:.4}, {:.4}]",
            m.name, m.value, m.ci.0, m.ci.1
        );
    }
}

/// Computes the metrics of `rows` and writes `metrics.tsv`, `per_sample.tsv`, and the
/// plots (regression) or `confusion_matrix.tsv` and its plot (classification) into `dir`.
pub(crate) fn write_report(
    dir: &Path,
    kind: TargetKind,
    rows: &[Row],
    classes: &[String],
    column: &str,
    b: Bootstrap,
) -> Result<Vec<MetricValue>> {
    // An earlier evaluation's files (--overwrite) go first, so none of them (e.g. the
    // plots of another target type) is left beside the new ones.
    fresh_output(dir, &OUTPUTS)?;
    let out = |f: &str| dir.join(f);
    let metrics = match kind {
        TargetKind::Numeric => {
            let pred: Vec<f64> = rows.iter().map(|r| r.predicted).collect();
            let truth: Vec<f64> = rows.iter().map(|r| r.truth).collect();
            plots::predicted_vs_true(&out("predicted_vs_true"), &truth, &pred, column)?;
            plots::residuals(&out("residuals"), &pred, &truth, column)?;
            regression_metrics(&pred, &truth, b)
        }
        TargetKind::Categorical => {
            let n = classes.len();
            let pred: Vec<usize> = rows.iter().map(|r| r.predicted as usize).collect();
            let truth: Vec<usize> = rows.iter().map(|r| r.truth as usize).collect();
            let probs: Vec<Vec<f64>> = rows.iter().map(|r| r.probabilities.clone()).collect();
            let cm = confusion_matrix(&pred, &truth, n);
            write_atomic(
                &out("confusion_matrix.tsv"),
                confusion_tsv(&cm, classes).as_bytes(),
            )?;
            plots::confusion_matrix(&out("confusion_matrix"), &cm, classes)?;
            classification_metrics(&pred, &probs, &truth, n, b)
        }
    };
    write_atomic(
        &out("metrics.tsv"),
        metrics_tsv(&metrics, rows.len(), b).as_bytes(),
    )?;
    write_atomic(
        &out("per_sample.tsv"),
        per_sample_tsv(rows, kind, classes).as_bytes(),
    )?;
    Ok(metrics)
}

/// Creates `dir` and removes the files `names` of an earlier run there (callers check
/// `--overwrite` before their work starts).
pub(crate) fn fresh_output(dir: &Path, names: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for f in names {
        let path = dir.join(f);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot replace {}", path.display()))?;
        }
    }
    Ok(())
}

/// Refuses to replace an earlier evaluation's files unless `--overwrite`.
pub(crate) fn check_output(dir: &Path, overwrite: bool) -> Result<()> {
    if overwrite {
        return Ok(());
    }
    let existing: Vec<&str> = OUTPUTS
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if !existing.is_empty() {
        bail!(
            "{} already holds an evaluation ({}); pass --overwrite to replace it or choose another --output",
            dir.display(),
            existing.join(", ")
        );
    }
    Ok(())
}
