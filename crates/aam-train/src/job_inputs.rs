//! What a training job reads and where it writes ([`JobInputs`]), and the data it makes
//! of them: the table (rarefied or streamed), the distance targets aligned to it, the
//! groups and the train/validation split. Shared by [`crate::pretrain_job`] and
//! [`crate::fine_tune_job`]; what each step drops or decides is printed to standard error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aam_config::{AttentionKind, CheckpointConfig, DataSettings, ModelConfig};

use aam_data::error::name_list;
use aam_data::{
    beta_diversity, distance, load_table_with_sequences, rarefy, split, BetaMetric, Dataset,
    DistanceMatrix, FeatureTable, Metadata, SampleStream,
};
use anyhow::{bail, Context, Result};

use crate::{TrainData, TrainOptions};

/// Which distances the sample embeddings learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DistanceTarget {
    /// The matrix given with --unifrac-matrix (unweighted or weighted normalized UniFrac,
    /// or any user-supplied distance matrix in [0, 1]).
    #[default]
    Unifrac,
    /// Bray-Curtis on counts, computed from the table.
    Braycurtis,
    /// Jaccard on presence/absence, computed from the table.
    Jaccard,
    /// Robust Aitchison (Euclidean on robust CLR), computed from the table.
    Aitchison,
}

impl DistanceTarget {
    /// The table-computed metric (`None` for `unifrac`, read from a file).
    pub fn metric(self) -> Option<BetaMetric> {
        match self {
            DistanceTarget::Unifrac => None,
            DistanceTarget::Braycurtis => Some(BetaMetric::BrayCurtis),
            DistanceTarget::Jaccard => Some(BetaMetric::Jaccard),
            DistanceTarget::Aitchison => Some(BetaMetric::RobustAitchison),
        }
    }
}

/// The inputs and output of a training job (the flags of `aam pretrain` / `aam train` of
/// the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct JobInputs {
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2
    /// `FeatureTable[Frequency]` `.qza`); observation IDs are ASV sequences, or feature
    /// IDs that `sequences` maps to them.
    pub table: PathBuf,
    /// Sequences of hashed feature IDs (FASTA or a `FeatureData[Sequence]` `.qza`).
    pub sequences: Option<PathBuf>,
    /// Distance matrix (ssu `.h5`, `.npy` with `*_ids.txt` sidecar, labelled `.csv`/`.tsv`).
    pub unifrac_matrix: Option<PathBuf>,
    /// Sample order of a `.npy` matrix, one ID per line.
    pub unifrac_ids: Option<PathBuf>,
    /// Which distances the sample embeddings learn.
    pub distance: DistanceTarget,
    /// Keep the samples shared by the table and the matrix / metadata instead of failing.
    pub allow_sample_subset: bool,
    /// Rarefy to this depth before training.
    pub rarefy_depth: Option<u64>,
    /// Rarefy with replacement.
    pub rarefy_with_replacement: bool,
    /// Sample metadata TSV.
    pub metadata: Option<PathBuf>,
    /// Metadata column whose values keep a group (e.g. a subject) on one side of the split.
    pub group_column: Option<String>,
    /// Fraction of samples (or groups) held out for validation, in [0, 1).
    pub validation_fraction: f64,
    /// A split written by an earlier run (`split.tsv`) to re-use.
    pub split: Option<PathBuf>,
    /// Checkpoint directory to write.
    pub output: PathBuf,
    /// Continue the run in `output` from its last epoch.
    pub resume: bool,
    /// Replace an existing checkpoint in `output`.
    pub overwrite: bool,
    /// Read the table (BIOM 2.1 HDF5) `chunk_samples` samples at a time.
    pub streaming: bool,
    /// Samples per chunk with `streaming` (at least 1).
    pub chunk_samples: usize,
}

impl JobInputs {
    /// Inputs reading `table` and writing `output`, everything else at its default (no
    /// distance matrix, no metadata, a fifth of the samples held out, whole-table reads).
    pub fn new(table: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        JobInputs {
            table: table.into(),
            sequences: None,
            unifrac_matrix: None,
            unifrac_ids: None,
            distance: DistanceTarget::Unifrac,
            allow_sample_subset: false,
            rarefy_depth: None,
            rarefy_with_replacement: false,
            metadata: None,
            group_column: None,
            validation_fraction: 0.2,
            split: None,
            output: output.into(),
            resume: false,
            overwrite: false,
            streaming: false,
            chunk_samples: 10_000,
        }
    }
}

/// Refuses to overwrite a checkpoint unless `overwrite`; with `resume`, errors when
/// `output` holds nothing to resume.
pub fn check_output(input: &JobInputs) -> Result<()> {
    let has_checkpoint = input.output.join("config.json").exists();
    if input.resume {
        if !crate::resume_file::exists(&input.output) {
            bail!(
                "{}: nothing to resume (no resume.bin: the run was stopped before its first epoch ended); drop --resume and pass --overwrite to start it again",
                input.output.display()
            );
        }
    } else if has_checkpoint && !input.overwrite {
        bail!("{} already holds a checkpoint; pass --resume to continue it, --overwrite to replace it, or choose another --output", input.output.display());
    }
    Ok(())
}

/// Mean and standard deviation of `values` at the positions `train` (population
/// standard deviation; 1 when it is 0, so that a constant column standardizes to 0).
pub fn standardization(values: &[f64], train: &[usize]) -> (f64, f64) {
    let n = train.len().max(1) as f64;
    let mean = train.iter().map(|&i| values[i]).sum::<f64>() / n;
    let std = (train
        .iter()
        .map(|&i| (values[i] - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    (mean, if std > 0.0 { std } else { 1.0 })
}

/// Loads (and optionally rarefies) the table, printing what rarefaction dropped. With
/// `--streaming`: the table of the file's sample IDs without ASVs
/// ([`SampleStream::id_table`]) and the stream its batches are read from; select the
/// stream down to the table's samples once they are final
/// ([`SampleStream::select`]).
pub fn load_table_input(
    input: &JobInputs,
    seed: u64,
) -> Result<(FeatureTable, Option<SampleStream>)> {
    if input.streaming {
        if input.sequences.is_some() {
            bail!(
                "{}: --streaming reads a BIOM 2.1 HDF5 table whose observation IDs are the sequences, so it does not take --sequences; write the table with sequence IDs once (`aam inspect --table T --sequences S --write-table table.biom`) or drop --streaming",
                input.table.display()
            );
        }
        let stream = SampleStream::open(&input.table, input.chunk_samples)?;
        // A table of the file's ASVs and no samples, for the sequence-ID check.
        let sequences = FeatureTable {
            sample_ids: Vec::new(),
            observation_ids: stream.observation_ids(),
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        };
        if stream.n_samples() == 0 || sequences.observation_ids.is_empty() {
            bail!(
                "{}: the table is empty ({} samples × {} ASVs); export a table that holds samples and ASVs",
                input.table.display(),
                stream.n_samples(),
                sequences.observation_ids.len()
            );
        }
        sequences.check_sequence_ids(&input.table)?;
        eprintln!(
            "table {} [BIOM 2.1 (HDF5), streaming {} samples at a time]: {} samples × {} ASVs",
            input.table.display(),
            input.chunk_samples,
            stream.n_samples(),
            sequences.observation_ids.len()
        );
        return Ok((stream.id_table(), Some(stream)));
    }
    Ok((load_whole_table(input, seed)?, None))
}

fn load_whole_table(input: &JobInputs, seed: u64) -> Result<FeatureTable> {
    let (table, format) = load_table_with_sequences(&input.table, input.sequences.as_deref())?;
    table.check_sequence_ids(&input.table)?;
    eprintln!(
        "table {} [{format}]: {} samples × {} ASVs",
        input.table.display(),
        table.n_samples(),
        table.n_asv()
    );
    let Some(depth) = input.rarefy_depth else {
        return Ok(table);
    };
    let (t, report) = rarefy(&table, depth, seed, input.rarefy_with_replacement)?;
    if !report.dropped_samples.is_empty() {
        eprintln!(
            "warning: rarefaction to {depth} dropped {} samples below that depth: {}",
            report.dropped_samples.len(),
            name_list(&report.dropped_samples, 10)
        );
    }
    eprintln!(
        "rarefied to {depth}: {} samples × {} ASVs ({} ASVs left empty and removed)",
        t.n_samples(),
        t.n_asv(),
        report.removed_asvs
    );
    Ok(t)
}

/// The distance targets of [`JobInputs::distance`]: the `unifrac_matrix` file aligned to the table
/// (see [`align_matrix`]; `None` without one), or the metric computed from `table`
/// (robust Aitchison divided by its largest value, the predicted distances being
/// `tanh(‖e_i − e_j‖/τ)` in [0, 1)). Returns the table restricted to the matrix's
/// samples and the matrix.
pub fn distance_targets(
    input: &JobInputs,
    table: FeatureTable,
) -> Result<(FeatureTable, Option<DistanceMatrix>)> {
    let Some(metric) = input.distance.metric() else {
        return match &input.unifrac_matrix {
            Some(path) => {
                let (t, m) = align_matrix(input, path, table)?;
                Ok((t, Some(m)))
            }
            None => Ok((table, None)),
        };
    };
    if input.streaming {
        bail!(
            "--distance {} is computed from the whole table, which --streaming does not hold; compute it once (`aam distance`) and pass it as --unifrac-matrix, or drop --streaming",
            metric.name()
        );
    }
    if let Some(path) = &input.unifrac_matrix {
        bail!(
            "--distance {} is computed from the table; drop --unifrac-matrix {} (or pass --distance unifrac to train on it)",
            metric.name(),
            path.display()
        );
    }
    let mut m = beta_diversity(&table, metric, &input.table.display().to_string())?;
    if !metric.is_bounded() {
        let max = m.values.iter().copied().fold(0.0f64, f64::max);
        if max > 0.0 {
            m.values.iter_mut().for_each(|v| *v /= max);
        }
        eprintln!(
            "distance targets: {} computed from the table, divided by its largest value {max:.4}",
            metric.name()
        );
    } else {
        eprintln!(
            "distance targets: {} computed from the table",
            metric.name()
        );
    }
    m.validate(true)?;
    Ok((table, Some(m)))
}

/// Loads, validates and aligns the distance matrix; returns the table restricted to the
/// matrix's samples (only with --allow-sample-subset) and the aligned matrix.
pub fn align_matrix(
    input: &JobInputs,
    path: &Path,
    table: FeatureTable,
) -> Result<(FeatureTable, DistanceMatrix)> {
    let m = distance::load_distance_matrix(path, input.unifrac_ids.as_deref(), &table.sample_ids)?;
    m.validate(true)?;
    let (aligned, missing) = m.align(&table.sample_ids, input.allow_sample_subset)?;
    if missing.is_empty() {
        return Ok((table, aligned));
    }
    eprintln!(
        "warning: {} table samples are not in {} and are left out: {}",
        missing.len(),
        path.display(),
        name_list(&missing, 10)
    );
    let index = table.sample_index();
    let keep: Vec<usize> = aligned.ids.iter().map(|s| index[s.as_str()]).collect();
    Ok((table.select_samples(&keep), aligned))
}

/// Group of each table sample from `--group-column` (error naming samples without one).
pub fn groups(
    input: &JobInputs,
    metadata: Option<&Metadata>,
    sample_ids: &[String],
) -> Result<Option<Vec<String>>> {
    let (Some(column), Some(md)) = (&input.group_column, metadata) else {
        return Ok(None);
    };
    let c = md.column_index(column)?;
    let pos = md
        .sample_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect::<std::collections::HashMap<_, _>>();
    let mut out = Vec::with_capacity(sample_ids.len());
    let mut missing = Vec::new();
    for s in sample_ids {
        match pos
            .get(s.as_str())
            .map(|&r| md.rows[r][c].clone())
            .filter(|v| !aam_data::metadata::is_missing(v))
        {
            Some(g) => out.push(g),
            None => missing.push(s.clone()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: {} samples have no value in group column '{column}': {}; fill them in or drop --group-column",
            md.path.display(),
            missing.len(),
            name_list(&missing, 10)
        );
    }
    Ok(Some(out))
}

/// Computes the split, or reads `--split`, the resumed run's split, or else the
/// pretrained encoder's split (`inherit`) when it covers every sample, so validation
/// samples stay unseen by both stages. Writes `split.tsv` into the output.
pub fn make_split(
    input: &JobInputs,
    sample_ids: &[String],
    groups: Option<&[String]>,
    classes: Option<&[usize]>,
    seed: u64,
    inherit: Option<&Path>,
) -> Result<split::Split> {
    let inherited = match inherit.filter(|p| p.exists() && input.split.is_none() && !input.resume) {
        Some(path) => {
            let s = split::read_split_tsv_covering(path, sample_ids)?;
            match &s {
                Some(_) => eprintln!(
                    "split: reusing the pretrained encoder's split {}",
                    path.display()
                ),
                // An encoder pretrained on every sample (`--validation-fraction 0`)
                // has no split to inherit: a new one is expected, not a surprise.
                None if split::read_split_tsv(path, sample_ids)
                    .is_ok_and(|s| s.validation.is_empty()) =>
                {
                    eprintln!(
                        "split: the pretrained encoder trained on every sample ({}); making a new split",
                        path.display()
                    )
                }
                None => eprintln!(
                    "warning: {} does not cover every sample of this run; making a new split",
                    path.display()
                ),
            }
            s
        }
        None => None,
    };
    let s = match (&input.split, inherited) {
        (Some(path), _) => split::read_split_tsv(path, sample_ids)?,
        (None, _) if input.resume => {
            split::read_split_tsv(&input.output.join("split.tsv"), sample_ids)
                .context("the run to resume has no usable split.tsv")?
        }
        (None, Some(s)) => s,
        (None, None) => split::split_samples(
            sample_ids.len(),
            input.validation_fraction,
            seed,
            groups,
            classes,
        )?,
    };
    std::fs::create_dir_all(&input.output)
        .with_context(|| format!("cannot create {}", input.output.display()))?;
    split::write_split_tsv(&input.output.join("split.tsv"), sample_ids, &s)?;
    eprintln!(
        "split: {} training, {} validation samples (written to {})",
        s.train.len(),
        s.validation.len(),
        input.output.join("split.tsv").display()
    );
    Ok(s)
}

/// The dataset of the final `table` (tokenized with `settings`, with its `distances`; a
/// fine-tuning job then sets its targets, [`Dataset::with_targets`]) and the stream, when
/// reading one, narrowed to its samples.
///
/// Errors: as [`Dataset::new`] and [`SampleStream::select`].
pub fn dataset_and_stream(
    table: FeatureTable,
    settings: &DataSettings,
    seed: u64,
    distances: Option<DistanceMatrix>,
    stream: Option<SampleStream>,
) -> Result<(Dataset, Option<Arc<SampleStream>>)> {
    let dataset = Dataset::new(
        table,
        settings.max_bp,
        settings.token_limit,
        settings.token_limit_policy,
        seed,
        distances,
        None,
    )?;
    let stream = stream
        .map(|s| s.select(&dataset.table.sample_ids))
        .transpose()?
        .map(Arc::new);
    Ok((dataset, stream))
}

/// A job's data, checkpoint configuration and options, ready to fit.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    /// Dataset, split and targets.
    pub data: TrainData,
    /// What `config.json` of the checkpoint will hold.
    pub config: CheckpointConfig,
    /// The options as the run uses them.
    pub options: TrainOptions,
}

/// Warns when a run asks for the fused attention with dropout: its training steps run
/// the math path (the fused kernel has no attention-weight dropout).
pub(crate) fn warn_fused_dropout(model: &ModelConfig) {
    if model.attention == AttentionKind::Fused && model.dropout > 0.0 {
        eprintln!("warning: --attention fused: training steps run the math attention while --dropout is {} (the fused kernel has no attention-weight dropout); validation and inference use the fused one", model.dropout);
    }
}
