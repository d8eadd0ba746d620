//! `aam benchmark`: pretrain → train → export → evaluate → baseline on the standard
//! datasets next to the random forest ([`aam_train::benchmark`]); every step runs as a
//! child process of this binary.

use std::path::PathBuf;

use aam_train::benchmark::{BenchmarkOptions, Preset};
use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `aam benchmark`.
#[derive(Args, Debug)]
pub struct BenchmarkArgs {
    /// Directory of the standard datasets (`<root>/<dataset>/table.biom`, metadata.tsv,
    /// unifrac_unweighted.npy, unifrac_ids.txt), e.g. `../shared/data`.
    #[arg(long, required_unless_present = "dataset")]
    pub data_root: Option<PathBuf>,
    /// Datasets to run (comma-separated; default: every standard dataset).
    #[arg(long, value_delimiter = ',', conflicts_with = "dataset")]
    pub datasets: Vec<String>,
    /// Benchmark one other dataset instead: a folder laid out like the standard ones
    /// (`table.biom` whose observation IDs are the ASV sequences, `metadata.tsv`,
    /// `unifrac_unweighted.npy`, `unifrac_ids.txt`) or as QIIME 2 leaves it (`table.qza`
    /// with `rep-seqs.qza`, `unweighted_unifrac_distance_matrix.qza` from
    /// `core-metrics-phylogenetic`, `sample-metadata.tsv`); needs --target and
    /// --group-column. Samples missing from the UniFrac matrix (rarefied out) are left
    /// out of every step, and the steps read the table written to
    /// `<output>/<dataset>/table.biom`. Its max bp is the longest ASV sequence (at most
    /// 150: longer reads are cut).
    #[arg(long, requires_all = ["target", "group_column"])]
    pub dataset: Option<PathBuf>,
    /// With --dataset: the metadata columns to predict (comma-separated); numeric columns
    /// are regression targets, any other a classification target.
    #[arg(long, value_delimiter = ',', requires = "dataset")]
    pub target: Vec<String>,
    /// With --dataset: the metadata column whose values (e.g. subjects) never sit on
    /// both sides of a split.
    #[arg(long, requires = "dataset")]
    pub group_column: Option<String>,
    /// Directory for the runs and report.md.
    #[arg(long)]
    pub output: PathBuf,
    /// Model size and epochs.
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    /// Seed of every step (splits, initialisation, batches, bootstrap, forest).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Continue in an --output that already holds runs: finished steps are kept, and a
    /// pretraining or fine-tuning stopped mid-way continues from its last epoch.
    #[arg(long)]
    pub resume: bool,
    /// Grouped K-fold cross-validation: every dataset's subjects are dealt into K folds
    /// (seeded), and the whole pipeline runs once per fold with that fold held out, the
    /// model and the forest on the same folds; the report gives each metric's mean and
    /// range over the folds and the paired difference to the forest. A dataset with fewer
    /// subjects than K gets one fold per subject. 1: one split (a quarter of the subjects
    /// held out).
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Fine-tuning seeds averaged per task: member k fine-tunes from the same encoder and
    /// split with seed `--seed` + k − 1, and the members are exported and scored as one
    /// ensemble. 1: one fine-tuned model. Given, it applies to every task; default: the
    /// preset's for regression tasks (quick 3, else 1) and 1 for classification tasks.
    #[arg(long)]
    pub ensemble: Option<usize>,
}

/// Runs `aam benchmark`.
pub fn run(args: &BenchmarkArgs) -> Result<()> {
    aam_train::benchmark::run(&BenchmarkOptions {
        data_root: args.data_root.clone(),
        datasets: args.datasets.clone(),
        dataset: args.dataset.clone(),
        target: args.target.clone(),
        group_column: args.group_column.clone(),
        output: args.output.clone(),
        preset: args.preset,
        seed: args.seed,
        resume: args.resume,
        folds: args.folds,
        ensemble: args.ensemble,
        aam: std::env::current_exe().context("cannot locate the aam binary")?,
    })
}
