//! `aam inspect`: what is in the inputs, and whether they agree.
//!
//! Prints a report to stdout. Any inconsistency (a malformed file, a distance
//! matrix failing its checks or missing table samples, table samples absent from
//! the metadata, an unknown column) ends with a non-zero exit and a message naming
//! the file, the sample or ASV, and the fix.

use std::path::PathBuf;

use aam_data::summary::{length_histogram, quantiles, upper_triangle_stats};
use aam_data::{
    distance, load_faith_pd, load_table_with_sequences, rarefy, FeatureTable, Metadata, TargetKind,
    TokenizedAsvs,
};
use anyhow::{bail, Result};
use clap::Args;

/// Arguments of `aam inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Feature table: BIOM 2.1 HDF5, BIOM 1.0 JSON, classic TSV or a QIIME 2
    /// FeatureTable[Frequency] .qza; observation IDs are ASV sequences, or feature IDs
    /// that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// Write the table as inspected (sequence IDs, rarefied if --rarefy-depth) to this
    /// BIOM 2.1 HDF5 file, e.g. to read a QIIME 2 table with --streaming.
    #[arg(long)]
    pub write_table: Option<PathBuf>,
    /// Replace an existing --write-table file.
    #[arg(long, requires = "write_table")]
    pub overwrite: bool,
    /// Distance matrix (ssu .h5, .npy, labelled .csv/.tsv, QIIME 2 DistanceMatrix .qza);
    /// repeat for several.
    #[arg(long = "unifrac-matrix")]
    pub unifrac_matrix: Vec<PathBuf>,
    /// Sample order of a .npy matrix, one ID per line (default: a `*_ids.txt` sidecar, else table order).
    #[arg(long)]
    pub unifrac_ids: Option<PathBuf>,
    /// The matrix holds a non-UniFrac distance: skip the [0, 1] range check.
    #[arg(long)]
    pub not_unifrac: bool,
    /// Faith PD per sample (.tsv sample→value, 1-D .npy in table order, or a QIIME 2
    /// SampleData[AlphaDiversity] .qza).
    #[arg(long)]
    pub faith_pd: Option<PathBuf>,
    /// Sample metadata TSV (QIIME 2 / Qiita style).
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Metadata column to summarise as a target.
    #[arg(long, requires = "metadata")]
    pub metadata_column: Option<String>,
    /// Force the target type instead of detecting it.
    #[arg(long, value_enum)]
    pub target_type: Option<TargetKind>,
    /// Keep the samples shared by all inputs instead of failing on missing ones.
    #[arg(long)]
    pub allow_sample_subset: bool,
    /// Longest sequence the tokenizer keeps, in bp (token rows are max_bp + 1).
    #[arg(long, default_value_t = 150)]
    pub max_bp: usize,
    /// Rarefy to this depth first (without replacement), as training would.
    #[arg(long)]
    pub rarefy_depth: Option<u64>,
    /// Draw with replacement when rarefying.
    #[arg(long, requires = "rarefy_depth")]
    pub with_replacement: bool,
    /// RNG seed for rarefaction.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn fmt_q(values: &[f64]) -> String {
    let q = quantiles(values, &[0.0, 0.25, 0.5, 0.75, 1.0]);
    format!(
        "min {}  q25 {}  median {}  q75 {}  max {}",
        num(q[0]),
        num(q[1]),
        num(q[2]),
        num(q[3]),
        num(q[4])
    )
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

/// Runs `aam inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    if let Some(out) = &args.write_table {
        if out.exists() && !args.overwrite {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --write-table",
                out.display()
            );
        }
    }
    let (mut table, format) = load_table_with_sequences(&args.table, args.sequences.as_deref())?;
    println!("table {}  [{format}]", args.table.display());
    if let Some(seqs) = &args.sequences {
        println!(
            "  feature IDs        replaced by their sequences from {}",
            seqs.display()
        );
    }
    if let Some(depth) = args.rarefy_depth {
        let (rarefied, report) = rarefy(&table, depth, args.seed, args.with_replacement)?;
        println!(
            "  rarefied to {depth} reads ({}replacement, seed {}): {} samples dropped{}; {} ASVs removed",
            if args.with_replacement { "with " } else { "without " },
            args.seed,
            report.dropped_samples.len(),
            if report.dropped_samples.is_empty() { String::new() } else { format!(" ({})", aam_data::error::name_list(&report.dropped_samples, 5)) },
            report.removed_asvs
        );
        table = rarefied;
    }
    print_table(&table, args.max_bp);
    for path in &args.unifrac_matrix {
        inspect_matrix(&table, path, args)?;
    }
    if let Some(path) = &args.faith_pd {
        let fp = load_faith_pd(path, &table.sample_ids)?;
        let v = if args.allow_sample_subset {
            // As training would: only the samples that have a value.
            let shared: Vec<String> = table
                .sample_ids
                .iter()
                .filter(|s| fp.values.contains_key(*s))
                .cloned()
                .collect();
            fp.aligned(&shared)?
        } else {
            fp.aligned(&table.sample_ids)?
        };
        println!("faith PD {}", path.display());
        println!(
            "  samples            {} of the table's {} ({} in file)",
            v.len(),
            table.n_samples(),
            fp.values.len()
        );
        println!("  values             {}", fmt_q(&v));
    }
    if let Some(path) = &args.metadata {
        inspect_metadata(&table, path, args)?;
    }
    table.check_sequence_ids(&args.table)?;
    if let Some(out) = &args.write_table {
        let bytes = aam_data::biom::hdf5_bytes(&table, aam_data::biom::Hdf5Layout::default())?;
        aam_data::files::write_atomic(out, &bytes)?;
        println!("wrote {} [BIOM 2.1 (HDF5)]", out.display());
    }
    println!("ok: inputs are consistent");
    Ok(())
}

fn print_table(table: &FeatureTable, max_bp: usize) {
    let depths = table.depths();
    let per_sample: Vec<f64> = (0..table.n_samples())
        .map(|s| table.sample_nnz(s) as f64)
        .collect();
    println!("  samples            {}", table.n_samples());
    println!("  ASVs               {}", table.n_asv());
    println!("  non-zero entries   {}", table.nnz());
    println!("  reads              {}", num(table.total()));
    println!("  depth              {}", fmt_q(&depths));
    println!("  ASVs per sample    {}", fmt_q(&per_sample));
    if table
        .observation_ids
        .iter()
        .all(|id| aam_data::sequences::is_md5_id(id))
    {
        // The sequence lines would describe the hashes; say what is needed instead.
        println!("  feature IDs        MD5 hashes of the sequences (QIIME 2 DADA2): give --sequences rep-seqs.qza (or a FASTA file)");
    } else {
        print_sequences(table, max_bp);
    }
    let empty: Vec<&String> = (0..table.n_samples())
        .filter(|&s| depths[s] == 0.0)
        .map(|s| &table.sample_ids[s])
        .collect();
    if !empty.is_empty() {
        println!(
            "  warning: {} sample(s) have no reads: {}",
            empty.len(),
            aam_data::error::name_list(&empty, 10)
        );
    }
}

fn inspect_matrix(table: &FeatureTable, path: &std::path::Path, args: &InspectArgs) -> Result<()> {
    let m = distance::load_distance_matrix(path, args.unifrac_ids.as_deref(), &table.sample_ids)?;
    println!("distance matrix {}", path.display());
    println!("  sample order from  {}", m.order_source);
    println!("  size               {} × {}", m.n(), m.n());
    m.validate(!args.not_unifrac)?;
    println!(
        "  checks             square, symmetric (±{:e}), zero diagonal, finite{}: ok",
        distance::SYMMETRY_TOLERANCE,
        if args.not_unifrac {
            ""
        } else {
            ", within [0, 1]"
        }
    );
    let (aligned, missing) = m.align(&table.sample_ids, args.allow_sample_subset)?;
    let extra = m.n() - aligned.n();
    println!(
        "  alignment          {} of {} table samples present ({} missing), {} matrix samples not in the table",
        aligned.n(),
        table.n_samples(),
        missing.len(),
        extra
    );
    let (mean, min, max) = upper_triangle_stats(&aligned.values, aligned.n());
    println!("  distances          mean {mean:.4}  min {min:.4}  max {max:.4} (off-diagonal)");
    Ok(())
}

fn inspect_metadata(
    table: &FeatureTable,
    path: &std::path::Path,
    args: &InspectArgs,
) -> Result<()> {
    let md = Metadata::load(path)?;
    let index = table.sample_index();
    let in_table = md
        .sample_ids
        .iter()
        .filter(|s| index.contains_key(s.as_str()))
        .count();
    println!("metadata {}", path.display());
    println!(
        "  samples            {} ({} in the table)",
        md.sample_ids.len(),
        in_table
    );
    println!("  columns            {}", md.columns.len());
    let known: std::collections::HashSet<&str> = md.sample_ids.iter().map(String::as_str).collect();
    let absent: Vec<&String> = table
        .sample_ids
        .iter()
        .filter(|s| !known.contains(s.as_str()))
        .collect();
    if !absent.is_empty() {
        let msg = format!(
            "{}: {} of the table's {} samples have no metadata row: {}. Add rows for them, or pass --allow-sample-subset to leave them out",
            path.display(),
            absent.len(),
            table.n_samples(),
            aam_data::error::name_list(&absent, 10)
        );
        if !args.allow_sample_subset {
            bail!(msg);
        }
        println!("  warning: {msg}");
    }
    let Some(column) = &args.metadata_column else {
        return Ok(());
    };
    let target = md.target(column, &table.sample_ids, args.target_type)?;
    let usable = target.values.iter().flatten().count();
    println!(
        "  target '{column}'     {} — {usable} samples usable, {} excluded (missing value){}",
        match target.kind {
            TargetKind::Numeric => "numeric (regression)",
            TargetKind::Categorical => "categorical (classification)",
        },
        target.missing_samples.len(),
        if target.missing_samples.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                aam_data::error::name_list(&target.missing_samples, 5)
            )
        }
    );
    match target.kind {
        TargetKind::Numeric => {
            let v: Vec<f64> = target.values.iter().flatten().copied().collect();
            println!("  values             {}", fmt_q(&v));
        }
        TargetKind::Categorical => {
            let counts: Vec<String> = target
                .class_counts()
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!(
                "  classes            {}: {}",
                counts.len(),
                counts.join(", ")
            );
        }
    }
    Ok(())
}

/// The sequence-length histogram, non-ACGT and over-long ASVs.
fn print_sequences(table: &FeatureTable, max_bp: usize) {
    let hist = length_histogram(&table.observation_ids);
    let lens: Vec<String> = hist.iter().map(|(l, n)| format!("{l} bp: {n}")).collect();
    println!(
        "  sequence lengths   {}",
        aam_data::error::name_list(&lens, 12)
    );
    let tok = TokenizedAsvs::new(&table.observation_ids, max_bp);
    let first = |idx: &[usize]| {
        let ids: Vec<String> = idx
            .iter()
            .map(|&i| aam_data::error::short_asv(&table.observation_ids[i]))
            .collect();
        if ids.is_empty() {
            String::new()
        } else {
            format!(" ({})", aam_data::error::name_list(&ids, 3))
        }
    };
    println!(
        "  non-ACGT ASVs      {}{}",
        tok.non_acgt.len(),
        first(&tok.non_acgt)
    );
    println!(
        "  ASVs > max_bp      {} (max_bp {max_bp}; truncated at the end){}",
        tok.too_long.len(),
        first(&tok.too_long)
    );
}
