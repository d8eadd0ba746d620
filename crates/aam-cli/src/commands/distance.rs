//! `aam distance`: a beta-diversity matrix computed from a feature table (the
//! `--distance` targets of pretrain/train), written as `.npy` with its `_ids.txt`
//! sidecar, the layout `--unifrac-matrix` reads.

use std::path::PathBuf;

use aam_data::files::write_atomic;
use aam_data::{beta_diversity, load_table};
use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::Array2;

use aam_train::job_inputs::DistanceTarget;

/// Arguments of `aam distance`.
#[derive(Args, Debug)]
pub struct DistanceArgs {
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2 FeatureTable[Frequency]
    /// .qza; the distances do not read the feature IDs).
    #[arg(long)]
    pub table: PathBuf,
    /// braycurtis (counts), jaccard (presence/absence) or aitchison (Euclidean on robust
    /// CLR, unscaled).
    #[arg(long, value_enum)]
    pub metric: DistanceTarget,
    /// The `.npy` file to write (float64 `[n, n]`, table sample order); the sample IDs go
    /// to `<stem>_ids.txt` beside it.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: &DistanceArgs) -> Result<()> {
    let Some(metric) = args.metric.metric() else {
        bail!("--metric unifrac needs the tree: compute it with `ssu -i table.biom -t tree.nwk -m unweighted_fp32 -o unifrac.h5 --format hdf5_fp32`; aam computes braycurtis, jaccard and aitchison");
    };
    if args.output.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("--output {} must end in .npy", args.output.display());
    }
    let stem = args
        .output
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("distances");
    let ids_path = args.output.with_file_name(format!("{stem}_ids.txt"));
    for p in [&args.output, &ids_path] {
        if p.exists() && !args.overwrite {
            bail!(
                "{} already exists; pass --overwrite to replace it",
                p.display()
            );
        }
    }
    let (table, format) = load_table(&args.table)?;
    eprintln!(
        "table {} [{format}]: {} samples × {} ASVs",
        args.table.display(),
        table.n_samples(),
        table.n_asv()
    );
    let m = beta_diversity(&table, metric, &args.table.display().to_string())?;
    let n = m.n();
    let array = Array2::from_shape_vec((n, n), m.values).expect("n × n values");
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&array, &mut bytes)
        .context("cannot encode the matrix as .npy")?;
    write_atomic(&args.output, &bytes)?;
    let mut ids = m.ids.join("\n");
    ids.push('\n');
    write_atomic(&ids_path, ids.as_bytes())?;
    eprintln!(
        "wrote {} ({n} × {n} {} distances) and {}",
        args.output.display(),
        metric.name(),
        ids_path.display()
    );
    Ok(())
}
