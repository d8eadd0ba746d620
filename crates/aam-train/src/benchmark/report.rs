//! The benchmark's `report.md`: per task, the model's and the random forest's metrics
//! with their 95% bootstrap intervals (read back from the `metrics.tsv` that `aam
//! evaluate` and `aam baseline` wrote), step times, learning curves and the evaluation
//! plots; `commands.sh` holds every step's command line; `summary.tsv` the headline
//! metrics, machine-readable (one row per target and metric: `dataset`, `target`,
//! `metric`, `aam`, `aam_low`, `aam_high`, `random_forest`, `rf_low`, `rf_high`, the
//! bounds those of the 95% bootstrap intervals; NaN where a value is undefined; with
//! folds, the mean over folds and the pooled out-of-fold values as `<metric>_pooled`).

use std::fmt::Write as _;
use std::path::Path;

use aam_data::files::write_atomic;
use anyhow::{Context, Result};

use super::{BenchmarkOptions, TaskRun};
use crate::plots;

/// One row of a `metrics.tsv`: (metric, value, ci95_low, ci95_high, n_samples).
type MetricRow = (String, f64, f64, f64, usize);

fn read_metrics(path: &Path) -> Result<Vec<MetricRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            continue;
        }
        let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        rows.push((
            f[0].to_string(),
            num(f[1]),
            num(f[2]),
            num(f[3]),
            f[4].parse().unwrap_or(0),
        ));
    }
    Ok(rows)
}

/// (epoch, validation loss) of a run's `metrics.jsonl`.
fn validation_curve(path: &Path) -> Vec<(f64, f64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["epoch"].as_f64()?, v["validation"]["loss"].as_f64()?)))
        .collect()
}

fn cell(row: Option<&MetricRow>) -> String {
    match row {
        Some((_, v, lo, hi, _)) if lo.is_finite() && hi.is_finite() => {
            format!("{v:.3} [{lo:.3}, {hi:.3}]")
        }
        Some((_, v, ..)) => format!("{v:.3}"),
        None => "–".into(),
    }
}

/// The headline metrics of a task of `kind` (`categorical` or `numeric`), in the order
/// of `summary.tsv`.
pub(super) fn headline_metrics(kind: &str) -> [&'static str; 3] {
    if kind == "categorical" {
        ["accuracy", "macro_f1", "roc_auc"]
    } else {
        ["r2", "mae", "spearman"]
    }
}

/// One headline value of one run: dataset, target, metric, validation samples, the
/// model's and the forest's metric rows.
type Headline<'a> = (
    &'a str,
    &'a str,
    &'a str,
    usize,
    Option<MetricRow>,
    Option<MetricRow>,
);

/// The summary table of `report.md` and the rows of `summary.tsv` from the headline
/// values of every run. One split: each value with its bootstrap interval, the difference
/// AAM − forest. Several folds of a task: the mean over folds with the fold range as
/// bounds, and the paired difference (per fold, then averaged) with its range.
fn summarise(headlines: &[Headline<'_>], md: &mut String, tsv: &mut String) {
    let folded = headlines
        .iter()
        .filter(|h| (h.0, h.1, h.2) == (headlines[0].0, headlines[0].1, headlines[0].2))
        .count()
        > 1;
    if folded {
        md.push_str("## Summary\n\nGrouped cross-validation: mean over the folds [lowest, highest fold]; the difference is AAM − random forest on the same fold, averaged.\n\n| dataset | target | folds | validation samples (all folds) | metric | AAM | random forest | difference |\n|---|---|---|---|---|---|---|---|\n");
    } else {
        md.push_str("## Summary\n\n| dataset | target | validation samples | metric | AAM | random forest |\n|---|---|---|---|---|---|\n");
    }
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for h in headlines {
        if !keys.contains(&(h.0, h.1, h.2)) {
            keys.push((h.0, h.1, h.2));
        }
    }
    // Over the folds where the metric is defined (a fold of one class has no ROC-AUC).
    let stats = |v: &[f64]| -> [f64; 3] {
        let v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return [f64::NAN; 3];
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        [mean, lo, hi]
    };
    let range = |[m, lo, hi]: [f64; 3]| format!("{m:.3} [{lo:.3}, {hi:.3}]");
    for (dataset, target, metric) in keys {
        let rows: Vec<&Headline<'_>> = headlines
            .iter()
            .filter(|h| (h.0, h.1, h.2) == (dataset, target, metric))
            .collect();
        let value = |r: &Option<MetricRow>| r.as_ref().map_or(f64::NAN, |r| r.1);
        let aam: Vec<f64> = rows.iter().map(|h| value(&h.4)).collect();
        let rf: Vec<f64> = rows.iter().map(|h| value(&h.5)).collect();
        let diff: Vec<f64> = aam.iter().zip(&rf).map(|(a, b)| a - b).collect();
        let n: usize = rows.iter().map(|h| h.3).sum();
        let defined = diff.iter().filter(|x| !x.is_nan()).count();
        let (a, r, d) = if rows.len() > 1 {
            (stats(&aam), stats(&rf), stats(&diff))
        } else {
            let interval =
                |x: &Option<MetricRow>| x.as_ref().map_or([f64::NAN; 3], |x| [x.1, x.2, x.3]);
            (
                interval(&rows[0].4),
                interval(&rows[0].5),
                [diff[0], f64::NAN, f64::NAN],
            )
        };
        let cells = |x: [f64; 3]| x.map(|v| v.to_string()).join("\t");
        let _ = writeln!(
            tsv,
            "{dataset}\t{target}\t{metric}\t{}\t{}\t{}\t{}",
            cells(a),
            cells(r),
            cells(d),
            rows.len()
        );
        if rows.len() > 1 {
            let folds = if defined < rows.len() {
                format!("{} ({defined} with a value)", rows.len())
            } else {
                rows.len().to_string()
            };
            let _ = writeln!(
                md,
                "| {dataset} | `{target}` | {folds} | {n} | {metric} | {} | {} | {} |",
                range(a),
                range(r),
                range(d)
            );
        } else {
            let _ = writeln!(
                md,
                "| {dataset} | `{target}` | {n} | {metric} | {} | {} |",
                cell(rows[0].4.as_ref()),
                cell(rows[0].5.as_ref())
            );
        }
    }
}

/// With folds: the pooled out-of-fold metrics ([`super::pooled`]) as a second table of
/// `report.md` and as `summary.tsv` rows whose metric is `<metric>_pooled` (no interval:
/// the bounds are NaN; `difference` = AAM − forest; `folds` = the folds pooled).
fn pooled_summary(runs: &[TaskRun], md: &mut String, tsv: &mut String) -> Result<()> {
    let rows = super::pooled::pooled_rows(runs)?;
    if rows.is_empty() {
        return Ok(());
    }
    md.push_str("\nPooled over the folds: every held-out prediction scored together, each sample once (each fold's model scores its own fold, so this complements the mean over folds; where a fold holds one class it has no ROC-AUC of its own).\n\n| dataset | target | folds | validation samples | metric | AAM | random forest | difference |\n|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let diff = r.aam - r.forest;
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {:.3} | {:.3} | {diff:+.3} |",
            r.dataset, r.target, r.folds, r.n, r.metric, r.aam, r.forest
        );
        let _ = writeln!(
            tsv,
            "{}\t{}\t{}_pooled\t{}\tNaN\tNaN\t{}\tNaN\tNaN\t{diff}\tNaN\tNaN\t{}",
            r.dataset, r.target, r.metric, r.aam, r.forest, r.folds
        );
    }
    Ok(())
}

/// Writes `report.md` and `commands.sh` in `out` for the tasks run so far.
pub fn write(out: &Path, args: &BenchmarkOptions, runs: &[TaskRun]) -> Result<()> {
    let p = args.preset.settings();
    let mut md = String::from("# aam benchmark\n\n");
    let _ = writeln!(
        md,
        "aam {} · preset `{}` (embedding dim {}, {} heads, {} layer(s) per stack, token limit {}, batch size {}, learning rate {}, {} pretraining and {} fine-tuning optimizer steps; `{}`) · seed {} · {} CPU threads available.\n",
        env!("CARGO_PKG_VERSION"),
        args.preset.name(),
        p.embedding_dim,
        p.heads,
        p.layers,
        p.token_limit,
        p.batch_size,
        p.lr,
        p.pretrain_steps,
        p.train_steps,
        p.recipe.join(" "),
        args.seed,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.preset == super::Preset::Smoke {
        let _ = writeln!(
            md,
            "> The `smoke` preset trains a tiny model for one epoch: its AAM rows check the pipeline, not the model. The random forest is fully trained in every preset.\n"
        );
    }
    let _ = writeln!(
        md,
        "The encoder pretrains once per dataset on every sample (no target is read); the fine-tuned model is scored at its last epoch, so nothing is chosen on the samples it is scored on.\n"
    );
    let ensemble = args.ensemble_size();
    if ensemble > 1 {
        let which = match args.ensemble {
            Some(_) => "Each task's model",
            None => "Each regression task's model (the preset's; a classification task fine-tunes one model)",
        };
        let _ = writeln!(
            md,
            "{which} is an ensemble of {} fine-tunings from the same encoder and split (seeds {} to {}), exported together: class probabilities and regression values (the preset's z-scored targets) are the members' means.\n",
            ensemble,
            args.seed,
            args.seed.wrapping_add(ensemble as u64 - 1)
        );
    }
    if args.folds > 1 {
        let _ = writeln!(
            md,
            "Grouped {}-fold cross-validation: each dataset's subjects are dealt into {} folds (seed {}; `<dataset>/folds/fold-<k>.tsv`), and every step below runs once per fold with that fold held out.\n",
            args.folds, args.folds, args.seed
        );
    }
    md.push_str(
        "Each dataset: `aam pretrain` (unweighted UniFrac + masked nucleotides) on every sample (no target is read), then per target `aam train` from that encoder on a split that keeps every subject on one side (a quarter of the subjects, at least one, for validation; or the fold's split), `aam export --last`, `aam evaluate` and `aam baseline` (random forest on relative abundances) on the same validation samples. Intervals: 95% percentile bootstrap over the validation samples. Every command is in `commands.sh`.\n\n",
    );
    // Headline values of every run: (dataset, target, metric, validation samples,
    // AAM, forest), in run order; folds of one task follow each other.
    let mut headlines: Vec<(
        &str,
        &str,
        &str,
        usize,
        Option<MetricRow>,
        Option<MetricRow>,
    )> = Vec::new();
    let mut sections = String::new();
    let mut commands =
        String::from("#!/bin/sh\n# The steps of this benchmark, in order.\nset -e\n");
    let mut pretrain_listed = std::collections::HashSet::new();
    let mut summary = String::from(
        "dataset\ttarget\tmetric\taam\taam_low\taam_high\trandom_forest\trf_low\trf_high\tdifference\tdifference_low\tdifference_high\tfolds\n",
    );
    for run in runs {
        let model = read_metrics(&run.dir.join("evaluate").join("metrics.tsv"))?;
        let forest = read_metrics(&run.dir.join("baseline").join("metrics.tsv"))?;
        let find = |rows: &[MetricRow], m: &str| rows.iter().find(|r| r.0 == m).cloned();
        let headline = headline_metrics(run.task.kind);
        let n = model.first().map_or(0, |r| r.4);
        for m in headline {
            headlines.push((
                run.dataset.name,
                run.task.column,
                m,
                n,
                find(&model, m),
                find(&forest, m),
            ));
        }
        let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).display().to_string();
        let fold = run.fold.map_or(String::new(), |k| format!(" — fold {k}"));
        let _ = writeln!(
            sections,
            "## {} — `{}` ({}){fold}\n\n{}.\n\n| metric | AAM [95% CI] | random forest [95% CI] |\n|---|---|---|",
            run.dataset.name, run.task.column, run.task.kind, run.dataset.description
        );
        for row in &model {
            let _ = writeln!(
                sections,
                "| {} | {} | {} |",
                row.0,
                cell(Some(row)),
                cell(find(&forest, &row.0).as_ref())
            );
        }
        sections.push_str("\n| step | seconds |\n|---|---|\n");
        for s in &run.steps {
            let _ = writeln!(
                sections,
                "| {} | {} |",
                s.name,
                s.seconds.map_or("–".into(), |t| format!("{t:.1}"))
            );
        }
        let pretrain = validation_curve(&run.dir.join("../pretrain/metrics.jsonl"));
        let train = validation_curve(&run.dir.join("train").join("metrics.jsonl"));
        let curves = run.dir.join("curves");
        plots::curves(
            &curves,
            "validation loss per epoch",
            "epoch",
            "validation loss",
            &[("pretrain".into(), pretrain), ("train".into(), train)],
        )?;
        let _ = writeln!(sections, "\n![validation loss]({}.png)\n", rel(&curves));
        let plots_of = |dir: &str| -> Vec<String> {
            ["confusion_matrix.png", "predicted_vs_true.png"]
                .iter()
                .map(|f| run.dir.join(dir).join(f))
                .filter(|p| p.exists())
                .map(|p| rel(&p))
                .collect()
        };
        for (who, dir) in [("AAM", "evaluate"), ("random forest", "baseline")] {
            for p in plots_of(dir) {
                let _ = writeln!(sections, "![{who}]({p})");
            }
        }
        sections.push('\n');
        for s in &run.steps {
            // One pretraining per dataset (per fold with --folds).
            if s.name == "pretrain"
                && !pretrain_listed.insert(run.dir.parent().map(Path::to_path_buf))
            {
                continue;
            }
            let quoted: Vec<String> = s
                .command
                .iter()
                .map(|a| {
                    if a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=,".contains(c))
                    {
                        a.clone()
                    } else {
                        format!("'{}'", a.replace('\'', r"'\''"))
                    }
                })
                .collect();
            let _ = writeln!(commands, "{}", quoted.join(" "));
        }
    }
    summarise(&headlines, &mut md, &mut summary);
    pooled_summary(runs, &mut md, &mut summary)?;
    md.push('\n');
    md.push_str(&sections);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(&out.join("commands.sh"), commands.as_bytes())?;
    write_atomic(&out.join("summary.tsv"), summary.as_bytes())?;
    Ok(())
}
