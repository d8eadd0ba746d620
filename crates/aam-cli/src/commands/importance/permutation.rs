//! `aam importance --method permutation`: how much a predictor relies on each ASV.
//!
//! Permutation importance (Breiman 2001, "Random Forests", §10; the model-reliance form of
//! Fisher, Rudin & Dominici 2019, JMLR 20:177): the counts of one ASV are shuffled among
//! the evaluated samples (every other ASV untouched), the samples are predicted again,
//! and the importance is the mean increase of the per-sample loss — the absolute error
//! for regression, the log-loss −ln p(true class) for classification — averaged over
//! `--repeats` shuffles. The per-sample table keeps each sample's own increase. The ASV
//! embeddings are cached across the re-predictions, so each shuffle only reruns the
//! sample-level graph. The model's input is the set of ASV sequences a sample holds
//! (counts only choose them under the token limit), so a shuffle matters where it moves
//! an ASV's presence: the scored ASVs are those whose presence varies most.

use std::fmt::Write as _;
use std::path::Path;

use aam_data::files::write_atomic;
use aam_data::{FeatureTable, Metadata, TargetKind};
use aam_runtime::{PredictOptions, Predictions};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::evaluate::{unusable_samples, validation_ids};
use super::super::predict::{load_onnx_model, PlacementArgs};
use super::ImportanceArgs;
use aam_train::plots;

/// Per-sample loss of the predictions at table positions `samples` against `truth`
/// (regression: |prediction − truth|; classification: −ln p(true class), p floored at
/// 1e-12; a regressor of several columns: of target column `column`). `None` for a
/// sample without a prediction.
fn losses(
    preds: &Predictions,
    samples: &[usize],
    truth: &[f64],
    kind: TargetKind,
    column: Option<usize>,
) -> Vec<Option<f64>> {
    samples
        .iter()
        .zip(truth)
        .map(|(&i, &t)| {
            let p = &preds.samples[i];
            match kind {
                TargetKind::Numeric => column
                    .map_or(p.value, |k| p.values.get(k).copied())
                    .map(|v| (v - t).abs()),
                TargetKind::Categorical => p
                    .probabilities
                    .get(t as usize)
                    .map(|&q| -(f64::from(q).max(1e-12)).ln()),
            }
        })
        .collect()
}

/// `table` with ASV `asv`'s counts over `samples` moved along `order` (sample
/// `samples[k]` gets the count of `samples[order[k]]`); other entries unchanged.
fn permuted(
    table: &FeatureTable,
    asv: u32,
    samples: &[usize],
    order: &[usize],
) -> Result<FeatureTable> {
    let count_of = |s: usize| {
        table
            .sample(s)
            .find(|&(a, _)| a == asv)
            .map_or(0.0, |(_, c)| c)
    };
    let moved: Vec<f64> = order.iter().map(|&k| count_of(samples[k])).collect();
    let mut position = vec![None; table.n_samples()];
    for (k, &s) in samples.iter().enumerate() {
        position[s] = Some(k);
    }
    let mut triplets = Vec::with_capacity(table.nnz());
    for s in 0..table.n_samples() {
        let in_set = position[s];
        for (a, c) in table.sample(s) {
            if a != asv || in_set.is_none() {
                triplets.push((s as u32, a, c));
            }
        }
        if let Some(k) = in_set {
            triplets.push((s as u32, asv, moved[k]));
        }
    }
    Ok(FeatureTable::from_triplets(
        std::path::Path::new("(permuted table)"),
        table.sample_ids.clone(),
        table.observation_ids.clone(),
        triplets,
    )?)
}

/// Permutation importance against `metadata_column` of `metadata`.
pub fn run(
    args: &ImportanceArgs,
    metadata_path: &Path,
    column: &str,
    taxonomy: Option<&aam_data::Taxonomy>,
) -> Result<()> {
    if args.top == 0 || args.repeats == 0 {
        bail!("--top and --repeats must be at least 1");
    }
    let placement = PlacementArgs {
        asv_cache: true,
        ..args.placement.clone()
    };
    let model = load_onnx_model(args.model.as_deref(), args.backend, &placement)?;
    let (table, _) = aam_data::load_table_with_sequences(&args.table, args.sequences.as_deref())?;
    let origin = args.table.display().to_string();
    let options = PredictOptions {
        batch_size: args.batch_size,
        threads: 1,
        ..Default::default()
    };
    let metadata = Metadata::load(metadata_path)?;
    // A conditioned model reads each sample's categories from the same metadata.
    let categories = aam_runtime::SampleCategories::from_metadata(&metadata);
    let predict = |t| model.predict_table_with_categories(t, &origin, options, Some(&categories));
    let base = predict(table.clone())?;
    let kind = base
        .target_kind
        .context("this model is an encoder (embeddings only): use a predictor from `aam train`")?;
    let at = base.target_columns.iter().position(|c| c == column);
    let target = metadata.target(column, &table.sample_ids, Some(kind))?;
    for e in unusable_samples(&target, metadata_path, column) {
        eprintln!("excluded: {e}");
    }
    let validation = args.split.as_deref().map(validation_ids).transpose()?;
    let mut samples = Vec::new();
    let mut truth = Vec::new();
    let mut unknown = Vec::new();
    for (i, v) in target.values.iter().enumerate() {
        let Some(v) = *v else { continue };
        if validation
            .as_ref()
            .is_some_and(|ids| !ids.contains(&table.sample_ids[i]))
        {
            continue;
        }
        let t = match kind {
            TargetKind::Numeric => v,
            TargetKind::Categorical => {
                let label = &target.classes[v as usize];
                match base.classes.iter().position(|c| c == label) {
                    Some(t) => t as f64,
                    None => {
                        unknown.push(table.sample_ids[i].clone());
                        continue;
                    }
                }
            }
        };
        samples.push(i);
        truth.push(t);
    }
    if !unknown.is_empty() {
        eprintln!(
            "excluded: {} samples of classes the model does not know ({})",
            unknown.len(),
            aam_data::error::name_list(&unknown, 5)
        );
    }
    let base_loss = losses(&base, &samples, &truth, kind, at);
    // Samples the model cannot predict (no reads) carry no loss to compare.
    let keep: Vec<usize> = (0..samples.len())
        .filter(|&k| base_loss[k].is_some())
        .collect();
    if keep.len() < samples.len() {
        eprintln!(
            "excluded: {} samples without a prediction (no ASV with reads)",
            samples.len() - keep.len()
        );
    }
    let samples: Vec<usize> = keep.iter().map(|&k| samples[k]).collect();
    let truth: Vec<f64> = keep.iter().map(|&k| truth[k]).collect();
    let base_loss: Vec<f64> = keep.iter().filter_map(|&k| base_loss[k]).collect();
    if samples.len() < 2 {
        bail!("only {} samples have a value in column '{}' and a prediction; at least 2 are needed to shuffle", samples.len(), column);
    }

    // Candidate ASVs: prevalence, then mean relative abundance, over the samples.
    let depths = table.depths();
    let mut prevalence = vec![0usize; table.n_asv()];
    let mut abundance = vec![0.0f64; table.n_asv()];
    for &s in &samples {
        for (a, c) in table.sample(s) {
            prevalence[a as usize] += 1;
            abundance[a as usize] += c / depths[s] / samples.len() as f64;
        }
    }
    // A model without counts reads which ASVs a sample has (counts only choose them under
    // the token limit), so shuffling an ASV present in every sample changes almost
    // nothing: the candidates are the ASVs whose presence varies most,
    // min(prevalence, n − prevalence). A model that reads counts (count embedding or
    // abundance-weighted pooling) also sees how abundant an ASV is, which varies even
    // where it is present everywhere: every ASV present somewhere is a candidate, the
    // most abundant first.
    let n = samples.len();
    let reads_counts = model.uses_counts();
    let variability = |a: usize| {
        if reads_counts {
            usize::from(prevalence[a] > 0)
        } else {
            prevalence[a].min(n - prevalence[a])
        }
    };
    let mut asvs: Vec<usize> = (0..table.n_asv()).filter(|&a| variability(a) > 0).collect();
    asvs.sort_by(|&a, &b| {
        variability(b)
            .cmp(&variability(a))
            .then(abundance[b].total_cmp(&abundance[a]))
            .then(a.cmp(&b))
    });
    asvs.truncate(args.top);
    eprintln!(
        "permutation importance: {} ASVs × {} shuffles over {} samples ({} predictions)",
        asvs.len(),
        args.repeats,
        samples.len(),
        asvs.len() * args.repeats
    );

    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    // per_sample[j][k]: mean loss increase of sample k when ASV asvs[j] is shuffled.
    let mut per_sample = vec![vec![0.0; samples.len()]; asvs.len()];
    let mut summary = Vec::with_capacity(asvs.len());
    for (j, &asv) in asvs.iter().enumerate() {
        let mut increases = Vec::with_capacity(args.repeats);
        for _ in 0..args.repeats {
            let mut order: Vec<usize> = (0..samples.len()).collect();
            order.shuffle(&mut rng);
            let shuffled = permuted(&table, asv as u32, &samples, &order)?;
            let preds = predict(shuffled)?;
            let loss = losses(&preds, &samples, &truth, kind, at);
            let mut total = 0.0;
            for (k, l) in loss.iter().enumerate() {
                // A sample keeps its reads under a shuffle of one ASV only if it has
                // others; one left without reads scores its base loss (no change).
                let d = l.map_or(0.0, |l| l - base_loss[k]);
                per_sample[j][k] += d / args.repeats as f64;
                total += d;
            }
            increases.push(total / samples.len() as f64);
        }
        let mean = increases.iter().sum::<f64>() / increases.len() as f64;
        let sd = if increases.len() > 1 {
            (increases.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                / (increases.len() - 1) as f64)
                .sqrt()
        } else {
            f64::NAN
        };
        summary.push((asv, mean, sd));
    }
    let mut ranked: Vec<usize> = (0..summary.len()).collect();
    ranked.sort_by(|&a, &b| summary[b].1.total_cmp(&summary[a].1));

    super::prepare_output(&args.output)?;
    let loss_name = match kind {
        TargetKind::Numeric => "absolute error",
        TargetKind::Categorical => "log-loss",
    };
    let mut tsv =
        String::from("rank\tasv\tprevalence\tmean_relative_abundance\timportance\timportance_sd");
    tsv.push_str(if taxonomy.is_some() {
        "\ttaxon\n"
    } else {
        "\n"
    });
    for (r, &j) in ranked.iter().enumerate() {
        let (asv, mean, sd) = summary[j];
        let seq = &table.observation_ids[asv];
        let _ = write!(
            tsv,
            "{}\t{seq}\t{}\t{}\t{mean}\t{sd}",
            r + 1,
            prevalence[asv],
            abundance[asv]
        );
        if let Some(t) = taxonomy {
            let _ = write!(
                tsv,
                "\t{}",
                t.lineage(seq).unwrap_or(aam_data::taxonomy::UNASSIGNED)
            );
        }
        tsv.push('\n');
    }
    write_atomic(&args.output.join("importance.tsv"), tsv.as_bytes())?;
    let mut long = String::from("sample_id\tasv\timportance\n");
    for &j in &ranked {
        for (k, &s) in samples.iter().enumerate() {
            let _ = writeln!(
                long,
                "{}\t{}\t{}",
                table.sample_ids[s], table.observation_ids[summary[j].0], per_sample[j][k]
            );
        }
    }
    write_atomic(
        &args.output.join("per_sample_importance.tsv"),
        long.as_bytes(),
    )?;
    let bars: Vec<(String, f64)> = ranked
        .iter()
        .take(20)
        .map(|&j| {
            let seq = &table.observation_ids[summary[j].0];
            (super::asv_label(args, taxonomy, seq), summary[j].1)
        })
        .collect();
    let title = format!("permutation importance: mean increase of {loss_name}");
    plots::importance_bars(&args.output.join("importance"), &bars, &title)?;
    if let Some(t) = taxonomy {
        let per_asv: Vec<(&str, f64)> = ranked
            .iter()
            .map(|&j| (table.observation_ids[summary[j].0].as_str(), summary[j].1))
            .collect();
        super::write_by_taxon(args, t, &per_asv, &title)?;
    }
    eprintln!("top ASVs (mean increase of the {loss_name} when shuffled):");
    for &j in ranked.iter().take(5) {
        let (asv, mean, sd) = summary[j];
        eprintln!(
            "  {:+.4} ± {:.4}  {}",
            mean,
            sd,
            aam_data::error::short_asv(&table.observation_ids[asv])
        );
    }
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_moves_one_asv_among_the_chosen_samples() {
        let p = std::path::Path::new("t");
        let t = FeatureTable::from_triplets(
            p,
            vec!["A".into(), "B".into(), "C".into()],
            vec!["ACGT".into(), "GGCC".into()],
            vec![
                (0, 0, 1.0),
                (0, 1, 5.0),
                (1, 0, 2.0),
                (2, 0, 3.0),
                (2, 1, 7.0),
            ],
        )
        .unwrap();
        // Samples 0 and 2, swapped: ASV 1 counts 5 and 7 trade places; B untouched.
        let s = permuted(&t, 1, &[0, 2], &[1, 0]).unwrap();
        let row = |s: &FeatureTable, i| s.sample(i).collect::<Vec<_>>();
        assert_eq!(row(&s, 0), vec![(0, 1.0), (1, 7.0)]);
        assert_eq!(row(&s, 1), vec![(0, 2.0)]);
        assert_eq!(row(&s, 2), vec![(0, 3.0), (1, 5.0)]);
        // An ASV absent from one of them moves as a zero.
        let t2 = permuted(&t, 1, &[0, 1], &[1, 0]).unwrap();
        assert_eq!(row(&t2, 0), vec![(0, 1.0)]);
        assert_eq!(row(&t2, 1), vec![(0, 2.0), (1, 5.0)]);
    }
}
