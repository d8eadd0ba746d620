//! `aam importance`: how much a model relies on each ASV, per sample and aggregated.
//!
//! Three methods: `integrated-gradients` (attributions of the target output to each
//! ASV's embedding, with a completeness check), `attention` (the pooling weight the
//! target head gives each ASV), `permutation` (loss increase when an ASV's counts are
//! shuffled among the samples; needs the true values).

mod attribution;
mod permutation;

use std::fmt::Write as _;
use std::path::PathBuf;

use aam_data::files::write_atomic;
use aam_data::taxonomy::{short_label, Taxonomy};
use aam_runtime::Backend;
use aam_train::plots;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use super::predict::PlacementArgs;
use super::taxonomy_args::{sum_by_taxon, TaxonomyArgs};

/// Arguments of `aam importance`.
#[derive(Args, Debug)]
pub struct ImportanceArgs {
    /// Exported model (directory from `aam export`). Default: the shipped model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2
    /// FeatureTable[Frequency] .qza); observation IDs are ASV sequences, or feature IDs
    /// that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// Metadata TSV holding the true values: needed by permutation; with
    /// integrated-gradients a classifier's attributions are of the true class (else of
    /// the predicted class) and only samples with a value are scored.
    #[arg(long, requires = "metadata_column")]
    pub metadata: Option<PathBuf>,
    /// Column of the true values (the model's target).
    #[arg(long, requires = "metadata")]
    pub metadata_column: Option<String>,
    /// Directory for importance.tsv, per_sample_importance.tsv and importance.png/.svg
    /// (integrated-gradients: also completeness.tsv).
    #[arg(long)]
    pub output: PathBuf,
    /// Attribution method.
    #[arg(long, value_enum, default_value_t = MethodArg::Permutation)]
    pub method: MethodArg,
    /// Use only the validation samples of this split (`split.tsv` of an `aam train` run).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Permutation: ASVs scored, those whose presence varies most among the samples,
    /// min(prevalence, samples − prevalence) (ties: higher mean relative abundance
    /// first). An ASV in every sample (or none) is not scored: the model reads which ASVs
    /// a sample holds, so shuffling it changes nothing but the token-limit choice.
    #[arg(long, default_value_t = 50)]
    pub top: usize,
    /// Permutation: shuffles per ASV.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Permutation: seed of the shuffles.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Integrated gradients: Gauss–Legendre nodes on the path from the baseline to the
    /// sample (model evaluations: steps + 2).
    #[arg(long, default_value_t = 32)]
    pub steps: usize,
    /// Samples per forward pass (integrated gradients: interpolation points per pass).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Permutation: engine that runs the ONNX graph (the other methods run the Burn model).
    #[arg(long, value_enum, default_value_t = Backend::default())]
    pub backend: Backend,
    /// Replace the files of an earlier run in --output.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub taxa: TaxonomyArgs,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// `--method` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MethodArg {
    /// Integrated gradients of the target output with respect to the ASV embeddings
    /// (baseline: zero embeddings), summed per ASV.
    IntegratedGradients,
    /// The target pooling weight of each ASV (a predictor's attention over its ASVs).
    Attention,
    /// Shuffle one ASV's counts among the samples and measure the loss increase.
    Permutation,
}

const OUTPUTS: [&str; 8] = [
    "importance.tsv",
    "per_sample_importance.tsv",
    "importance.png",
    "importance.svg",
    "completeness.tsv",
    "importance_by_taxon.tsv",
    "importance_by_taxon.png",
    "importance_by_taxon.svg",
];

/// Creates `dir` without the files of an earlier run (`--overwrite` was checked before
/// the work): no file of another method (e.g. completeness.tsv) is left beside the new
/// ones.
fn prepare_output(dir: &std::path::Path) -> Result<()> {
    super::evaluate::fresh_output(dir, &OUTPUTS)
}

pub fn run(args: &ImportanceArgs) -> Result<()> {
    if !args.overwrite {
        if let Some(f) = OUTPUTS.iter().find(|f| args.output.join(f).exists()) {
            bail!(
                "{} already holds {f}; pass --overwrite to replace it or choose another --output",
                args.output.display()
            );
        }
    }
    let labelled = args
        .metadata
        .as_deref()
        .zip(args.metadata_column.as_deref());
    // Read before the work, so that a bad file fails at once.
    let taxonomy = args.taxa.load()?;
    let taxonomy = taxonomy.as_ref();
    match args.method {
        MethodArg::Permutation => match labelled {
            Some((metadata, column)) => permutation::run(args, metadata, column, taxonomy),
            None => bail!(
                "--method permutation measures a loss against the true values: pass --metadata and --metadata-column"
            ),
        },
        MethodArg::IntegratedGradients | MethodArg::Attention => {
            if args.backend != Backend::Tract {
                bail!("--backend applies to --method permutation; integrated-gradients and attention run the Burn model (model.safetensors)");
            }
            attribution::run(args, labelled, taxonomy)
        }
    }
}

/// The bar label of ASV `seq`: its first 12 bases, after its taxon at --rank when there
/// is a taxonomy.
fn asv_label(args: &ImportanceArgs, taxonomy: Option<&Taxonomy>, seq: &str) -> String {
    let bases: String = seq.chars().take(12).collect();
    match taxonomy {
        Some(t) => format!("{} {bases}…", short_label(&t.at_rank(seq, args.taxa.rank))),
        None => format!("{bases}…"),
    }
}

/// With --taxonomy: `importance_by_taxon.tsv` and its plot, a taxon's importance at
/// --rank being the sum of its ASVs' (`ranked`: ASV sequence, importance).
fn write_by_taxon(
    args: &ImportanceArgs,
    taxonomy: &Taxonomy,
    ranked: &[(&str, f64)],
    title: &str,
) -> Result<()> {
    let rank = args.taxa.rank;
    let sums = sum_by_taxon(taxonomy, rank, ranked.iter().copied());
    let mut tsv = format!("rank\t{rank}\tasvs\timportance\n");
    for (k, s) in sums.iter().enumerate() {
        let _ = writeln!(tsv, "{}\t{}\t{}\t{}", k + 1, s.taxon, s.asvs, s.value);
    }
    write_atomic(&args.output.join("importance_by_taxon.tsv"), tsv.as_bytes())?;
    let bars: Vec<(String, f64)> = sums
        .iter()
        .take(20)
        .map(|s| (short_label(&s.taxon), s.value))
        .collect();
    plots::importance_bars(
        &args.output.join("importance_by_taxon"),
        &bars,
        &format!("{title}, summed per {rank}"),
    )?;
    eprintln!("top taxa ({rank}, summed over their ASVs):");
    for s in sums.iter().take(5) {
        eprintln!(
            "  {:.4}  {} ({} ASVs)",
            s.value,
            short_label(&s.taxon),
            s.asvs
        );
    }
    Ok(())
}
