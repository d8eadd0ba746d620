//! `aam baseline`: the classical baseline every model is compared with — a random forest
//! on the relative abundances of the ASVs, trained on the train set of a split and scored
//! on its validation set with the metrics, intervals, tables and plots of `aam evaluate`.
//!
//! Classification grows one multi-class Gini forest ([`aam_train::random_forest`], as
//! scikit-learn's `RandomForestClassifier`); regression a variance-split forest of the
//! `biosphere` crate.

use std::path::PathBuf;

use aam_data::evaluation::Bootstrap;
use aam_data::{split, Metadata, TargetKind};
use aam_train::random_forest::{ForestParams, RandomForest};
use anyhow::{bail, Context, Result};
use biosphere::{MaxFeatures, RandomForest as RegressionForest, RandomForestParameters};
use clap::{Args, ValueEnum};
use ndarray::{Array1, Array2};

use super::evaluate::{
    check_output, print_summary, unusable_samples, write_report, LabelledSamples,
};
use aam_data::evaluation_report::{covariate_correlations, EvaluatedSample as Row};
use aam_data::files::write_atomic;

/// Arguments of `aam baseline`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub data: LabelledSamples,
    /// Directory for metrics.tsv, per_sample.tsv, error_correlations.tsv,
    /// confusion_matrix.tsv (classification) and the plots.
    #[arg(long)]
    pub output: PathBuf,
    /// Train/validation split to use (`split.tsv` of an `aam train` run, so the baseline
    /// is scored on the model's validation samples). Default: a new split.
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Fraction of samples held out for validation when no --split is given.
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// Metadata column grouping samples that must stay on one side of a new split
    /// (e.g. host_subject_id).
    #[arg(long)]
    pub group_column: Option<String>,
    /// Regression or classification (default: numeric when every value is a number).
    #[arg(long, value_enum)]
    pub target_type: Option<TargetKind>,
    /// Trees per forest.
    #[arg(long, default_value_t = 500)]
    pub n_trees: usize,
    /// ASVs tried at each split: `sqrt` (of the ASV count; the classification
    /// default of scikit-learn), `third` (a third: the regression default of R's
    /// randomForest) or `all`.
    #[arg(long, value_enum, default_value_t = MaxFeaturesArg::Sqrt)]
    pub max_features: MaxFeaturesArg,
    /// Fewest samples in a leaf.
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    /// Seed of the split, the forests and the bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Bootstrap resamples for the 95% confidence intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Replace the files of an earlier run in --output.
    #[arg(long)]
    pub overwrite: bool,
}

/// `--max-features` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MaxFeaturesArg {
    /// √(ASVs).
    Sqrt,
    /// ASVs / 3.
    Third,
    /// Every ASV.
    All,
}

pub fn run(args: &BaselineArgs) -> Result<()> {
    check_output(&args.output, args.overwrite)?;
    // The split is written next to the results; never over a training run's own.
    if !args.overwrite && args.output.join("split.tsv").exists() {
        bail!(
            "{} already holds a split.tsv; choose another --output (pass the run's split with --split) or --overwrite",
            args.output.display()
        );
    }
    if args.n_trees == 0 || args.min_samples_leaf == 0 {
        bail!("--n-trees and --min-samples-leaf must be at least 1");
    }
    let (table, format) =
        aam_data::load_table_with_sequences(&args.data.table, args.data.sequences.as_deref())?;
    eprintln!(
        "table {} [{format}]: {} samples × {} ASVs",
        args.data.table.display(),
        table.n_samples(),
        table.n_asv()
    );
    let metadata = Metadata::load(&args.data.metadata)?;
    let kind = args.target_type;
    let target = metadata.target(&args.data.metadata_column, &table.sample_ids, kind)?;
    for e in unusable_samples(&target, &args.data.metadata, &args.data.metadata_column) {
        eprintln!("excluded: {e}");
    }
    let depths = table.depths();
    let mut zero_depth = Vec::new();
    // Samples with a value and reads, as table positions.
    let usable: Vec<usize> = (0..table.n_samples())
        .filter(|&i| target.values[i].is_some())
        .filter(|&i| {
            let has_reads = depths[i] > 0.0;
            if !has_reads {
                zero_depth.push(table.sample_ids[i].clone());
            }
            has_reads
        })
        .collect();
    if !zero_depth.is_empty() {
        eprintln!(
            "excluded: {} samples without reads ({})",
            zero_depth.len(),
            aam_data::error::name_list(&zero_depth, 5)
        );
    }
    if target.kind == TargetKind::Categorical {
        let mut present: Vec<usize> = usable
            .iter()
            .filter_map(|&i| target.values[i].map(|v| v as usize))
            .collect();
        present.sort_unstable();
        present.dedup();
        if present.len() < 2 {
            bail!(
                "{}: column '{}' has one class among the usable samples; a classifier needs at least two",
                args.data.metadata.display(),
                args.data.metadata_column
            );
        }
    }
    let ids: Vec<String> = usable
        .iter()
        .map(|&i| table.sample_ids[i].clone())
        .collect();
    let values: Vec<f64> = usable
        .iter()
        .map(|&i| target.values[i].unwrap_or(0.0))
        .collect();
    let s = match &args.split {
        Some(path) => {
            let s = split::read_split_tsv_listed(path, &ids)?;
            let listed = s.train.len() + s.validation.len();
            if listed < ids.len() {
                eprintln!(
                    "excluded: {} samples with a value are not in the split {} (the run left them out)",
                    ids.len() - listed,
                    path.display()
                );
            }
            s
        }
        None => {
            let groups = match &args.group_column {
                Some(column) => {
                    let g = metadata.target(column, &ids, Some(TargetKind::Categorical))?;
                    if let Some(missing) = g.values.iter().position(Option::is_none) {
                        bail!("{}: sample '{}' has no value in --group-column '{column}'; every sample needs a group", args.data.metadata.display(), ids[missing]);
                    }
                    Some(
                        g.values
                            .iter()
                            .map(|v| g.classes[v.unwrap_or(0.0) as usize].clone())
                            .collect::<Vec<_>>(),
                    )
                }
                None => None,
            };
            let classes: Option<Vec<usize>> = (target.kind == TargetKind::Categorical)
                .then(|| values.iter().map(|&v| v as usize).collect());
            split::split_samples(
                ids.len(),
                args.validation_fraction,
                args.seed,
                groups.as_deref(),
                classes.as_deref(),
            )?
        }
    };
    if s.train.len() < 2 || s.validation.len() < 2 {
        bail!(
            "the split has {} train and {} validation samples; both need at least 2",
            s.train.len(),
            s.validation.len()
        );
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    split::write_split_tsv(&args.output.join("split.tsv"), &ids, &s)?;

    // Relative abundances; ASVs without reads in the train set cannot be split on.
    let abundance = |rows: &[usize], columns: &[usize]| {
        let mut column_of = vec![usize::MAX; table.n_asv()];
        for (k, &a) in columns.iter().enumerate() {
            column_of[a] = k;
        }
        let mut x = Array2::<f64>::zeros((rows.len(), columns.len()));
        for (r, &i) in rows.iter().enumerate() {
            let sample = usable[i];
            for (asv, count) in table.sample(sample) {
                let k = column_of[asv as usize];
                if k != usize::MAX {
                    x[[r, k]] = count / depths[sample];
                }
            }
        }
        x
    };
    let mut seen = vec![false; table.n_asv()];
    for &i in &s.train {
        for (asv, _) in table.sample(usable[i]) {
            seen[asv as usize] = true;
        }
    }
    let columns: Vec<usize> = (0..table.n_asv()).filter(|&a| seen[a]).collect();
    let x_train = abundance(&s.train, &columns);
    let x_valid = abundance(&s.validation, &columns);
    let max_features = match args.max_features {
        MaxFeaturesArg::Sqrt => MaxFeatures::Sqrt,
        MaxFeaturesArg::Third => MaxFeatures::Fraction(1.0 / 3.0),
        MaxFeaturesArg::All => MaxFeatures::None,
    };
    let forest = |y: Array1<f64>| -> Array1<f64> {
        let params = RandomForestParameters::default()
            .with_n_estimators(args.n_trees)
            .with_seed(args.seed)
            .with_max_features(max_features.clone())
            .with_min_samples_leaf(args.min_samples_leaf);
        let mut rf = RegressionForest::new(params.with_n_jobs(Some(-1)));
        rf.fit(&x_train.view(), &y.view());
        rf.predict(&x_valid.view())
    };
    eprintln!(
        "random forest: {} trees, {} train samples × {} ASVs, {} validation samples",
        args.n_trees,
        s.train.len(),
        columns.len(),
        s.validation.len()
    );
    let train_values: Vec<f64> = s.train.iter().map(|&i| values[i]).collect();
    let row = |i: usize, predicted: f64, error: f64, probabilities: Vec<f64>| Row {
        sample: ids[i].clone(),
        truth: values[i],
        predicted,
        error,
        probabilities,
        depth: depths[usable[i]],
        n_asv: table.sample_nnz(usable[i]) as f64,
    };
    let rows: Vec<Row> = match target.kind {
        TargetKind::Numeric => {
            let pred = forest(Array1::from(train_values));
            s.validation
                .iter()
                .enumerate()
                .map(|(k, &i)| row(i, pred[k], pred[k] - values[i], Vec::new()))
                .collect()
        }
        TargetKind::Categorical => {
            let n_classes = target.classes.len();
            let p = columns.len();
            let max_features = match args.max_features {
                MaxFeaturesArg::Sqrt => ((p as f64).sqrt() as usize).max(1),
                MaxFeaturesArg::Third => (p / 3).max(1),
                MaxFeaturesArg::All => p.max(1),
            };
            let y: Vec<usize> = train_values.iter().map(|&v| v as usize).collect();
            let x = x_train.as_standard_layout();
            let rf = RandomForest::fit(
                x.as_slice().context("training matrix layout")?,
                p,
                &y,
                n_classes,
                ForestParams {
                    n_trees: args.n_trees,
                    max_features,
                    min_samples_leaf: args.min_samples_leaf,
                    seed: args.seed,
                },
            );
            let xv = x_valid.as_standard_layout();
            // probabilities[k][c] for validation sample k.
            let probabilities =
                rf.predict_proba(xv.as_slice().context("validation matrix layout")?);
            s.validation
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let p = probabilities[k].clone();
                    let predicted = (0..n_classes)
                        .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
                        .unwrap_or(0);
                    let t = values[i] as usize;
                    row(i, predicted as f64, 1.0 - p[t], p)
                })
                .collect()
        }
    };
    let b = Bootstrap {
        resamples: args.bootstrap,
        seed: args.seed,
    };
    let metrics = write_report(
        &args.output,
        target.kind,
        &rows,
        &target.classes,
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
