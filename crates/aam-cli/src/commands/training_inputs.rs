//! The data of a training run from its `InputArgs`: the table (rarefied or streamed),
//! the distance targets aligned to it, the groups and the train/validation split.

use std::path::Path;

use aam_data::error::name_list;
use aam_data::{
    beta_diversity, distance, load_table, rarefy, split, DistanceMatrix, FeatureTable, Metadata,
    SampleStream,
};
use anyhow::{bail, Context, Result};

use super::training_args::InputArgs;

/// Loads (and optionally rarefies) the table, printing what rarefaction dropped. With
/// `--streaming`: the table of the file's sample IDs without ASVs
/// ([`SampleStream::id_table`]) and the stream its batches are read from; select the
/// stream down to the table's samples once they are final
/// ([`SampleStream::select`]).
pub fn load_input_table(
    input: &InputArgs,
    seed: u64,
) -> Result<(FeatureTable, Option<SampleStream>)> {
    if input.streaming {
        let stream = SampleStream::open(&input.table, input.chunk_samples as usize)?;
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

fn load_whole_table(input: &InputArgs, seed: u64) -> Result<FeatureTable> {
    let (table, format) = load_table(&input.table)?;
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

/// The distance targets of `--distance`: the --unifrac-matrix file aligned to the table
/// (see [`align_matrix`]; `None` without one), or the metric computed from `table`
/// (robust Aitchison divided by its largest value, the predicted distances being
/// `tanh(‖e_i − e_j‖/τ)` in [0, 1)). Returns the table restricted to the matrix's
/// samples and the matrix.
pub fn distance_targets(
    input: &InputArgs,
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
    input: &InputArgs,
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
    input: &InputArgs,
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
    input: &InputArgs,
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
