//! `aam attention`: the attention weights of every stack, layer and head and the
//! pooling weights for chosen samples, as TSV tables and heatmaps.
//!
//! ASV level (per sample): every ASV-level stack (`sample_transformer`,
//! `encoder_transformer`, and for predictors `count_encoder`, `target_encoder`), and the
//! pooling weights over ASVs (`attention_pooling`: the sample embedding;
//! `target_pooling`: what a predictor's target head reads). Nucleotide level (for the
//! sample's top ASVs by pooling weight, and any `--asv`): the nucleotide stack and its
//! pooling over positions. Weights are the eval-mode softmax rows (queries) over keys.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;

use aam_data::files::write_atomic;
use aam_model::inspect::SampleAttention;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use clap::Args;

use super::inspected_model::{file_safe, prepare, values, InspectedModel, SampleInput, B};
use aam_train::plots::{self, Panel};

/// Arguments of `aam attention`.
#[derive(Args, Debug)]
pub struct AttentionArgs {
    /// Exported model (directory from `aam export`, or its model.safetensors).
    /// Default: the shipped model.
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
    /// Sample IDs to inspect (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub samples: Vec<String>,
    /// Directory for the TSV tables and heatmaps/.
    #[arg(long)]
    pub output: PathBuf,
    /// Nucleotide-level maps for this many ASVs of each sample, those with the largest
    /// pooling weight (target pooling for predictors).
    #[arg(long, default_value_t = 3)]
    pub top_asvs: usize,
    /// Also show this ASV (its sequence) at nucleotide level in the samples holding it;
    /// repeatable.
    #[arg(long = "asv")]
    pub asvs: Vec<String>,
    /// Largest number of ASVs in an ASV-level heatmap (the top ones by pooling weight,
    /// in rank order); the TSV tables hold every ASV.
    #[arg(long, default_value_t = 64)]
    pub heatmap_asvs: usize,
    /// Replace the files of an earlier run in --output.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub taxa: super::taxonomy_args::TaxonomyArgs,
}

const TABLES: [&str; 5] = [
    "asv_ranking.tsv",
    "asv_attention.tsv",
    "nucleotide_attention.tsv",
    "nucleotide_pooling.tsv",
    "taxon_ranking.tsv",
];

/// A TSV written row by row into a hidden temporary file beside `path`, synced and
/// renamed into place by [`StreamedTsv::finish`]: a large table never sits in memory,
/// and a failed run leaves no partial file under the final name (the temporary file is
/// removed when the writer is dropped unfinished).
struct StreamedTsv {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Drop for StreamedTsv {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl StreamedTsv {
    fn create(path: PathBuf, header: &str) -> Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let file = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut t = StreamedTsv {
            path,
            tmp,
            out: Some(BufWriter::new(file)),
        };
        t.row(format_args!("{header}"))?;
        Ok(t)
    }

    fn row(&mut self, line: std::fmt::Arguments<'_>) -> Result<()> {
        let out = self.out.as_mut().expect("rows are written before finish");
        writeln!(out, "{line}").with_context(|| format!("cannot write {}", self.tmp.display()))
    }

    fn finish(mut self) -> Result<()> {
        let out = self.out.take().expect("finish is called once");
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all().map(|_| f))
            .with_context(|| format!("cannot write {}", self.tmp.display()));
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                return Err(e);
            }
        };
        drop(file);
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })
    }
}

/// Nucleotide letter of a token (`^` the start token).
fn letter(token: i64) -> char {
    match token {
        1 => 'A',
        2 => 'C',
        3 => 'G',
        4 => 'T',
        5 => '^',
        _ => 'N',
    }
}

pub fn run(args: &AttentionArgs) -> Result<()> {
    if !args.overwrite {
        let heatmaps = args.output.join("heatmaps");
        if let Some(f) = TABLES.iter().find(|f| args.output.join(f).exists()) {
            bail!(
                "{} already holds {f}; pass --overwrite to replace it or choose another --output",
                args.output.display()
            );
        }
        if heatmaps.exists() {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --output",
                heatmaps.display()
            );
        }
    }
    let taxonomy = args.taxa.load()?;
    let model = InspectedModel::load(args.model.as_deref())?;
    eprintln!("model {} (burn backend)", model.path.display());
    let ds = prepare(&args.table, args.sequences.as_deref(), &model.config)?;
    let table = &ds.table;
    let mut positions = Vec::with_capacity(args.samples.len());
    for id in &args.samples {
        match table.sample_ids.iter().position(|s| s == id) {
            Some(i) if positions.contains(&i) => {}
            Some(i) => positions.push(i),
            None => bail!(
                "sample '{id}' is not in {} (its samples include {}); pass IDs from the table",
                args.table.display(),
                aam_data::error::name_list(&table.sample_ids, 5)
            ),
        }
    }
    // Two sample IDs that differ only in characters a file name cannot hold would
    // write the same heatmap files.
    let mut stems = std::collections::HashMap::new();
    for &i in &positions {
        let id = &table.sample_ids[i];
        if let Some(other) = stems.insert(file_safe(id), id) {
            bail!("samples '{other}' and '{id}' map to the same heatmap file names; inspect them in separate runs (--output)");
        }
    }
    for seq in &args.asvs {
        let held = positions.iter().any(|&i| {
            table
                .sample(i)
                .any(|(a, _)| &table.observation_ids[a as usize] == seq)
        });
        if !held {
            eprintln!(
                "warning: --asv {} is in none of the chosen samples; no nucleotide map for it",
                aam_data::error::short_asv(seq)
            );
        }
    }
    let heatmaps = args.output.join("heatmaps");
    if heatmaps.exists() {
        // --overwrite: no heatmap of an earlier run (other samples) is left behind.
        std::fs::remove_dir_all(&heatmaps)
            .with_context(|| format!("cannot replace {}", heatmaps.display()))?;
    }
    std::fs::create_dir_all(&heatmaps)
        .with_context(|| format!("cannot create {}", heatmaps.display()))?;

    let mut ranking = String::from("sample_id\trank\tslot\tasv\tcount\trelative_abundance");
    // The two attention tables grow as stacks × layers × heads × n² rows per sample:
    // written as they are computed, not held in memory.
    let mut asv_tsv = StreamedTsv::create(
        args.output.join(TABLES[1]),
        "sample_id\tstack\tlayer\thead\tquery_slot\tkey_slot\tweight",
    )?;
    let mut nuc_tsv = StreamedTsv::create(
        args.output.join(TABLES[2]),
        "sample_id\tslot\tasv\tlayer\thead\tquery_position\tkey_position\tweight",
    )?;
    let mut pool_tsv = String::from("sample_id\tslot\tasv\tposition\tnucleotide\tweight\n");
    // With --taxonomy: each sample's pooling weights summed per taxon at --rank.
    let mut taxa_tsv = format!("sample_id\trank\t{}\tasvs", args.taxa.rank);
    let mut header_done = false;
    for &sample in &positions {
        let id = &table.sample_ids[sample];
        let input = SampleInput::new(&ds, sample)?;
        let n = input.slots.len();
        let attention: SampleAttention<B> =
            model.sample_attention(input.tokens.clone(), input.counts.clone());
        let pooling: Vec<(&str, Vec<f32>)> = attention
            .pooling
            .iter()
            .map(|(name, p)| (*name, values(p.clone())))
            .collect();
        if !header_done {
            for (name, _) in &pooling {
                let _ = write!(ranking, "\t{name}");
                let _ = write!(taxa_tsv, "\t{name}");
            }
            ranking.push_str(if taxonomy.is_some() {
                "\ttaxon\n"
            } else {
                "\n"
            });
            taxa_tsv.push('\n');
            header_done = true;
        }
        // Ranked by the last pooling: target_pooling for predictors.
        let primary = &pooling.last().expect("every model pools").1;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| primary[b].total_cmp(&primary[a]).then(a.cmp(&b)));
        for (r, &j) in order.iter().enumerate() {
            let (asv, count) = input.slots[j];
            let _ = write!(
                ranking,
                "{id}\t{}\t{j}\t{}\t{count}\t{}",
                r + 1,
                table.observation_ids[asv as usize],
                count / input.depth
            );
            for (_, p) in &pooling {
                let _ = write!(ranking, "\t{}", p[j]);
            }
            if let Some(t) = &taxonomy {
                let lineage = t.lineage(&table.observation_ids[asv as usize]);
                let _ = write!(
                    ranking,
                    "\t{}",
                    lineage.unwrap_or(aam_data::taxonomy::UNASSIGNED)
                );
            }
            ranking.push('\n');
        }
        if let Some(t) = &taxonomy {
            taxon_rows(
                &mut taxa_tsv,
                t,
                args.taxa.rank,
                id,
                &input.slots,
                table,
                &pooling,
            );
        }
        let shown: Vec<usize> = order.iter().take(args.heatmap_asvs).copied().collect();
        for (stack, layers) in &attention.stacks {
            for (layer, w) in layers.iter().enumerate() {
                let [_, heads, _, _] = w.dims();
                let v = values(w.clone());
                let mut panels = Vec::with_capacity(heads);
                for h in 0..heads {
                    let at = |q: usize, k: usize| v[(h * n + q) * n + k];
                    for q in 0..n {
                        for k in 0..n {
                            asv_tsv.row(format_args!(
                                "{id}\t{stack}\t{layer}\t{h}\t{q}\t{k}\t{}",
                                at(q, k)
                            ))?;
                        }
                    }
                    panels.push(Panel {
                        caption: format!("head {h}"),
                        values: shown
                            .iter()
                            .flat_map(|&q| shown.iter().map(move |&k| at(q, k)))
                            .collect(),
                        rows: shown.len(),
                        cols: shown.len(),
                    });
                }
                plots::weight_panels(
                    &heatmaps.join(format!("{}.{stack}.layer{layer}", file_safe(id))),
                    &format!("{id}: {stack} layer {layer} (ASVs by pooling rank)"),
                    "key ASV",
                    &panels,
                )?;
            }
        }
        // Nucleotide level: the top ASVs and any requested one in this sample.
        let mut chosen: Vec<usize> = order.iter().take(args.top_asvs).copied().collect();
        for seq in &args.asvs {
            if let Some(j) =
                (0..n).find(|&j| &table.observation_ids[input.slots[j].0 as usize] == seq)
            {
                if !chosen.contains(&j) {
                    chosen.push(j);
                }
            }
        }
        let tokens = input.tokens.clone();
        let l = tokens.dims()[2];
        for &j in &chosen {
            let row: Tensor<B, 2, Int> =
                tokens.clone().slice([0..1, j..j + 1, 0..l]).reshape([1, l]);
            let toks: Vec<i64> = row.clone().into_data().iter::<i64>().collect();
            let valid: Vec<usize> = (0..l).filter(|&p| toks[p] > 0).collect();
            let asv = &table.observation_ids[input.slots[j].0 as usize];
            let nuc = model.asv_encoder().attention(row);
            let pool = values(nuc.pooling);
            for &p in &valid {
                let _ = writeln!(
                    pool_tsv,
                    "{id}\t{j}\t{asv}\t{p}\t{}\t{}",
                    letter(toks[p]),
                    pool[p]
                );
            }
            for (layer, w) in nuc.layers.iter().enumerate() {
                let heads = w.dims()[1];
                let v = values(w.clone());
                let at = |h: usize, q: usize, k: usize| v[(h * l + q) * l + k];
                let mut panels = Vec::with_capacity(heads);
                for h in 0..heads {
                    for &q in &valid {
                        for &k in &valid {
                            nuc_tsv.row(format_args!(
                                "{id}\t{j}\t{asv}\t{layer}\t{h}\t{q}\t{k}\t{}",
                                at(h, q, k)
                            ))?;
                        }
                    }
                    panels.push(Panel {
                        caption: format!("head {h}"),
                        values: valid
                            .iter()
                            .flat_map(|&q| valid.iter().map(move |&k| at(h, q, k)))
                            .collect(),
                        rows: valid.len(),
                        cols: valid.len(),
                    });
                }
                plots::weight_panels(
                    &heatmaps.join(format!("{}.slot{j}.nucleotide.layer{layer}", file_safe(id))),
                    &format!("{id}: ASV in slot {j}, nucleotide layer {layer}"),
                    "key position",
                    &panels,
                )?;
            }
        }
        eprintln!(
            "{id}: {n} ASVs; top by {}: {}",
            pooling.last().map_or("pooling", |p| p.0),
            order
                .iter()
                .take(3)
                .map(|&j| format!(
                    "{} ({:.3})",
                    aam_data::error::short_asv(&table.observation_ids[input.slots[j].0 as usize]),
                    primary[j]
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    write_atomic(&args.output.join(TABLES[0]), ranking.as_bytes())?;
    asv_tsv.finish()?;
    nuc_tsv.finish()?;
    write_atomic(&args.output.join(TABLES[3]), pool_tsv.as_bytes())?;
    if taxonomy.is_some() {
        write_atomic(&args.output.join(TABLES[4]), taxa_tsv.as_bytes())?;
    } else if args.output.join(TABLES[4]).exists() {
        // --overwrite: no taxon table of an earlier run is left beside the new tables.
        std::fs::remove_file(args.output.join(TABLES[4]))
            .with_context(|| format!("cannot replace {}", args.output.join(TABLES[4]).display()))?;
    }
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// Appends one sample's rows of `taxon_ranking.tsv`: each pooling's weights summed per
/// taxon at `rank`, the taxa ordered by the last pooling (the target pooling of a
/// predictor), largest first.
fn taxon_rows(
    out: &mut String,
    taxonomy: &aam_data::Taxonomy,
    rank: aam_data::TaxonRank,
    id: &str,
    slots: &[(u32, f64)],
    table: &aam_data::FeatureTable,
    pooling: &[(&str, Vec<f32>)],
) {
    let taxa: Vec<String> = slots
        .iter()
        .map(|&(asv, _)| taxonomy.at_rank(&table.observation_ids[asv as usize], rank))
        .collect();
    let mut sums: Vec<(String, usize, Vec<f64>)> = Vec::new();
    for (j, taxon) in taxa.iter().enumerate() {
        let k = match sums.iter().position(|s| &s.0 == taxon) {
            Some(k) => k,
            None => {
                sums.push((taxon.clone(), 0, vec![0.0; pooling.len()]));
                sums.len() - 1
            }
        };
        sums[k].1 += 1;
        for (p, (_, w)) in pooling.iter().enumerate() {
            sums[k].2[p] += f64::from(w[j]);
        }
    }
    let last = pooling.len().saturating_sub(1);
    sums.sort_by(|a, b| b.2[last].total_cmp(&a.2[last]).then_with(|| a.0.cmp(&b.0)));
    for (r, (taxon, asvs, values)) in sums.iter().enumerate() {
        let _ = write!(out, "{id}\t{}\t{taxon}\t{asvs}", r + 1);
        for v in values {
            let _ = write!(out, "\t{v}");
        }
        out.push('\n');
    }
}
