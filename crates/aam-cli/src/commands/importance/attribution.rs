//! `aam importance --method integrated-gradients|attention`: per-sample ASV
//! attributions from the Burn model, aggregated over the samples.
//!
//! Integrated gradients ([`aam_model::integrated_gradients`]): the target output is
//! attributed to each ASV's embedding against a baseline of zero embeddings; a
//! regressor's value in the column's units, a classifier's probability of the true class
//! (with `--metadata`) or of the predicted class. Each sample's attributions sum to
//! f(sample) − f(baseline) up to the quadrature error, reported per sample in
//! completeness.tsv. Attention: the target pooling weight of each ASV (a distribution
//! over the sample's ASVs). Aggregated importance: the mean over the scored samples of
//! |attribution| (an absent ASV counts 0), with the signed mean over the samples holding
//! the ASV.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use aam_config::ModelKind;
use aam_data::files::write_atomic;
use aam_data::{Metadata, TargetKind};
use aam_model::integrated_gradients::{integrated_gradients, AttributedOutput};
use aam_model::sample_encoder::asv_mask;
use aam_model::{AamModel, CpuAutodiff, SequencePredictor};
use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;

use super::super::evaluate::{unusable_samples, validation_ids};
use super::super::inspected_model::{prepare, values, SampleInput, B};
use super::super::predict::load_safetensors;
use super::{ImportanceArgs, MethodArg};
use aam_train::plots;

/// Largest relative completeness gap accepted without a warning (the 5%).
const COMPLETENESS_TOLERANCE: f64 = 0.05;

/// One scored sample.
struct Scored {
    sample: usize,
    /// (table observation index, count, attribution) per ASV slot.
    asvs: Vec<(u32, f64, f64)>,
    /// Integrated gradients: (attributed output name, f(x), f(x'), relative gap).
    completeness: Option<(String, f64, f64, f64)>,
}

pub fn run(
    args: &ImportanceArgs,
    labelled: Option<(&Path, &str)>,
    taxonomy: Option<&aam_data::Taxonomy>,
) -> Result<()> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let (path, config, weights) = load_safetensors(args.model.as_deref())?;
    let target = match (&config.kind, &config.target) {
        (ModelKind::Predictor, Some(t)) => t.clone(),
        _ => bail!(
            "{} is a pretrained encoder: importance explains a predictor's target; use a model from `aam train`",
            path.display()
        ),
    };
    eprintln!("model {} (burn backend)", path.display());
    let ds = prepare(&args.table, args.sequences.as_deref(), &config)?;
    let table = &ds.table;
    // The true value of each table sample in the model's terms (class index or value).
    let truth: Option<Vec<Option<f64>>> = match labelled {
        Some((metadata_path, column)) => {
            let metadata = Metadata::load(metadata_path)?;
            let t = metadata.target(column, &table.sample_ids, Some(target.kind))?;
            for e in unusable_samples(&t, metadata_path, column) {
                eprintln!("excluded: {e}");
            }
            let mut unknown = 0;
            let values = t
                .values
                .iter()
                .map(|v| {
                    let v = (*v)?;
                    match target.kind {
                        TargetKind::Numeric => Some(v),
                        TargetKind::Categorical => {
                            let label = &t.classes[v as usize];
                            let class = target.classes.iter().position(|c| c == label);
                            unknown += usize::from(class.is_none());
                            class.map(|c| c as f64)
                        }
                    }
                })
                .collect();
            if unknown > 0 {
                eprintln!("excluded: {unknown} samples of classes the model does not know");
            }
            Some(values)
        }
        None => None,
    };
    let validation = args.split.as_deref().map(validation_ids).transpose()?;
    let samples: Vec<usize> = (0..table.n_samples())
        .filter(|&s| table.sample(s).any(|(_, c)| c > 0.0))
        .filter(|&s| {
            validation
                .as_ref()
                .is_none_or(|ids| ids.contains(&table.sample_ids[s]))
        })
        .filter(|&s| truth.as_ref().is_none_or(|t| t[s].is_some()))
        .collect();
    if samples.is_empty() {
        bail!(
            "no sample of {} has reads{}{}",
            args.table.display(),
            if validation.is_some() {
                " and is in the split's validation set"
            } else {
                ""
            },
            if truth.is_some() {
                " and a usable value"
            } else {
                ""
            }
        );
    }

    let device = Default::default();
    let mut scored = Vec::with_capacity(samples.len());
    match args.method {
        MethodArg::IntegratedGradients => {
            // An autodiff backend draws dropout: attributions are of the eval-mode model.
            let mut model_config = config.model.clone();
            model_config.dropout = 0.0;
            let model =
                SequencePredictor::<CpuAutodiff>::load_weights(&weights, &model_config, &device)?;
            let plain: SequencePredictor<B> = model.valid();
            eprintln!(
                "integrated gradients: {} samples × {} steps",
                samples.len(),
                args.steps
            );
            for &s in &samples {
                let input = SampleInput::new(&ds, s)?;
                let n = input.slots.len();
                let asv = plain
                    .base_model
                    .sample_encoder
                    .asv_encoder
                    .forward(input.tokens.clone())
                    .embeddings;
                let d = asv.dims()[2];
                let mask = asv_mask(input.tokens.clone()).reshape([n]);
                let (output, name, scale) = match target.kind {
                    TargetKind::Numeric => {
                        (AttributedOutput::Raw(0), target.column.clone(), target.std)
                    }
                    TargetKind::Categorical => {
                        let class = match &truth {
                            Some(t) => t[s].expect("filtered to samples with a value") as usize,
                            None => {
                                let logp = values(plain.target_from_asv_embeddings(
                                    asv.clone(),
                                    mask.clone().reshape([1, n]),
                                    Some(input.counts.clone()),
                                ));
                                (0..logp.len())
                                    .max_by(|&a, &b| logp[a].total_cmp(&logp[b]))
                                    .unwrap_or(0)
                            }
                        };
                        (
                            AttributedOutput::Probability(class),
                            format!("p({})", target.classes[class]),
                            1.0,
                        )
                    }
                };
                let a = integrated_gradients(
                    &model,
                    asv.reshape([n, d]),
                    mask,
                    Some(input.counts.clone().reshape([n])),
                    output,
                    args.steps,
                    args.batch_size,
                );
                let gap = a.relative_completeness_gap();
                let shift = match target.kind {
                    TargetKind::Numeric => target.mean,
                    TargetKind::Categorical => 0.0,
                };
                scored.push(Scored {
                    sample: s,
                    asvs: input
                        .slots
                        .iter()
                        .zip(&a.per_asv)
                        .map(|(&(o, c), &v)| (o, c, v * scale))
                        .collect(),
                    completeness: Some((
                        name,
                        a.output * scale + shift,
                        a.baseline_output * scale + shift,
                        gap,
                    )),
                });
            }
        }
        MethodArg::Attention => {
            let model = SequencePredictor::<B>::load_weights(&weights, &config.model, &device)?;
            for &s in &samples {
                let input = SampleInput::new(&ds, s)?;
                let attention =
                    model.sample_attention(input.tokens.clone(), Some(input.counts.clone()));
                let (_, pooling) = attention
                    .pooling
                    .into_iter()
                    .find(|(name, _)| *name == "target_pooling")
                    .context("a predictor has a target pooling")?;
                let w = values(pooling);
                scored.push(Scored {
                    sample: s,
                    asvs: input
                        .slots
                        .iter()
                        .zip(&w)
                        .map(|(&(o, c), &v)| (o, c, f64::from(v)))
                        .collect(),
                    completeness: None,
                });
            }
        }
        MethodArg::Permutation => unreachable!("handled by permutation::run"),
    }
    write(args, &ds.table, &scored, &target.column, taxonomy)
}

/// Per-ASV aggregate: (Σ|attribution|, Σ attribution, samples holding it, Σ relative
/// abundance).
type Totals = (f64, f64, usize, f64);

fn write(
    args: &ImportanceArgs,
    table: &aam_data::FeatureTable,
    scored: &[Scored],
    column: &str,
    taxonomy: Option<&aam_data::Taxonomy>,
) -> Result<()> {
    let n = scored.len() as f64;
    let mut totals: HashMap<u32, Totals> = HashMap::new();
    let depths = table.depths();
    for s in scored {
        for &(o, c, v) in &s.asvs {
            let t = totals.entry(o).or_default();
            t.0 += v.abs();
            t.1 += v;
            t.2 += 1;
            t.3 += c / depths[s.sample];
        }
    }
    let mut ranked: Vec<(u32, Totals)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    super::prepare_output(&args.output)?;
    let mut tsv = String::from(
        "rank\tasv\tprevalence\tmean_relative_abundance\timportance\tmean_attribution_where_present",
    );
    tsv.push_str(if taxonomy.is_some() {
        "\ttaxon\n"
    } else {
        "\n"
    });
    for (r, (o, (abs, sum, present, abundance))) in ranked.iter().enumerate() {
        let asv = &table.observation_ids[*o as usize];
        let _ = write!(
            tsv,
            "{}\t{asv}\t{present}\t{}\t{}\t{}",
            r + 1,
            abundance / n,
            abs / n,
            sum / *present as f64
        );
        if let Some(t) = taxonomy {
            let _ = write!(
                tsv,
                "\t{}",
                t.lineage(asv).unwrap_or(aam_data::taxonomy::UNASSIGNED)
            );
        }
        tsv.push('\n');
    }
    write_atomic(&args.output.join("importance.tsv"), tsv.as_bytes())?;
    let mut long = String::from("sample_id\tasv\tcount\timportance\n");
    for s in scored {
        for &(o, c, v) in &s.asvs {
            let _ = writeln!(
                long,
                "{}\t{}\t{c}\t{v}",
                table.sample_ids[s.sample], table.observation_ids[o as usize]
            );
        }
    }
    write_atomic(
        &args.output.join("per_sample_importance.tsv"),
        long.as_bytes(),
    )?;
    let title = match args.method {
        MethodArg::IntegratedGradients => {
            let mut text = String::from(
                "sample_id\toutput\tf_sample\tf_baseline\tsum_attributions\trelative_gap\n",
            );
            let mut worst = (0.0f64, "");
            for s in scored {
                let (name, fx, fb, gap) = s.completeness.as_ref().expect("integrated gradients");
                let id = &table.sample_ids[s.sample];
                let sum: f64 = s.asvs.iter().map(|a| a.2).sum();
                let _ = writeln!(text, "{id}\t{name}\t{fx}\t{fb}\t{sum}\t{gap}");
                if *gap > worst.0 {
                    worst = (*gap, id);
                }
            }
            write_atomic(&args.output.join("completeness.tsv"), text.as_bytes())?;
            eprintln!(
                "completeness: attributions sum to f(sample) − f(baseline) within {:.2}% (worst: {})",
                100.0 * worst.0,
                worst.1
            );
            if worst.0 > COMPLETENESS_TOLERANCE {
                eprintln!(
                    "warning: the completeness gap exceeds {:.0}% in some samples (completeness.tsv); pass more --steps",
                    100.0 * COMPLETENESS_TOLERANCE
                );
            }
            format!("integrated gradients: mean |attribution| to {column}")
        }
        _ => "target pooling weight (mean over samples)".to_string(),
    };
    let bars: Vec<(String, f64)> = ranked
        .iter()
        .take(20)
        .map(|(o, t)| {
            let seq = &table.observation_ids[*o as usize];
            (super::asv_label(args, taxonomy, seq), t.0 / n)
        })
        .collect();
    plots::importance_bars(&args.output.join("importance"), &bars, &title)?;
    if let Some(t) = taxonomy {
        let per_asv: Vec<(&str, f64)> = ranked
            .iter()
            .map(|(o, v)| (table.observation_ids[*o as usize].as_str(), v.0 / n))
            .collect();
        super::write_by_taxon(args, t, &per_asv, &title)?;
    }
    eprintln!("top ASVs:");
    for (o, t) in ranked.iter().take(5) {
        eprintln!(
            "  {:.4}  {}",
            t.0 / n,
            aam_data::error::short_asv(&table.observation_ids[*o as usize])
        );
    }
    eprintln!("wrote {} ({} samples)", args.output.display(), scored.len());
    Ok(())
}
