//! The benchmark's `report.md`: per task, the model's and the random forest's metrics
//! with their 95% bootstrap intervals (read back from the `metrics.tsv` that `aam
//! evaluate` and `aam baseline` wrote), step times, learning curves and the evaluation
//! plots; `commands.sh` holds every step's command line; `summary.tsv` the headline
//! metrics, machine-readable (one row per target and metric: `dataset`, `target`,
//! `metric`, `aam`, `aam_low`, `aam_high`, `random_forest`, `rf_low`, `rf_high`, the
//! bounds those of the 95% bootstrap intervals; NaN where a value is undefined).

use std::fmt::Write as _;
use std::path::Path;

use aam_train::checkpoint::write_atomic;
use anyhow::{Context, Result};

use super::super::plots;
use super::{BenchmarkArgs, TaskRun};

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

/// Writes `report.md` and `commands.sh` in `out` for the tasks run so far.
pub fn write(out: &Path, args: &BenchmarkArgs, runs: &[TaskRun]) -> Result<()> {
    let p = args.preset.settings();
    let mut md = String::from("# aam benchmark\n\n");
    let _ = writeln!(
        md,
        "aam {} · preset `{}` (embedding dim {}, {} heads, {} layer(s) per stack, token limit {}, batch size {}, learning rate {}, {} pretraining and {} training epochs) · seed {} · {} CPU threads available.\n",
        env!("CARGO_PKG_VERSION"),
        args.preset.name(),
        p.embedding_dim,
        p.heads,
        p.layers,
        p.token_limit,
        p.batch_size,
        p.lr,
        p.pretrain_epochs,
        p.train_epochs,
        args.seed,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.preset != super::Preset::Standard {
        let _ = writeln!(
            md,
            "> The `{}` preset trains a small model for a few epochs on a CPU: its AAM rows check the pipeline and give a floor, not the model's capacity (`--preset standard` on a GPU measures that). The random forest is fully trained in every preset.\n",
            args.preset.name()
        );
    }
    md.push_str(
        "Each dataset: `aam pretrain` (unweighted UniFrac + masked nucleotides) with a split that keeps every subject on one side (a quarter of the subjects, at least one, for validation), then per target `aam train` from that encoder on the same split, `aam export`, `aam evaluate` and `aam baseline` (random forest on relative abundances) on the same validation samples. Intervals: 95% percentile bootstrap over the validation samples. Every command is in `commands.sh`.\n\n",
    );
    md.push_str("## Summary\n\n| dataset | target | validation samples | metric | AAM | random forest |\n|---|---|---|---|---|---|\n");
    let mut sections = String::new();
    let mut commands =
        String::from("#!/bin/sh\n# The steps of this benchmark, in order.\nset -e\n");
    let mut pretrain_listed = std::collections::HashSet::new();
    let mut summary =
        String::from("dataset\ttarget\tmetric\taam\taam_low\taam_high\trandom_forest\trf_low\trf_high\n");
    for run in runs {
        let model = read_metrics(&run.dir.join("evaluate").join("metrics.tsv"))?;
        let forest = read_metrics(&run.dir.join("baseline").join("metrics.tsv"))?;
        let find = |rows: &[MetricRow], m: &str| rows.iter().find(|r| r.0 == m).cloned();
        let headline: &[&str] = if run.task.kind == "categorical" {
            &["accuracy", "macro_f1", "roc_auc"]
        } else {
            &["r2", "mae", "spearman"]
        };
        let n = model.first().map_or(0, |r| r.4);
        for m in headline {
            let triple = |r: Option<MetricRow>| {
                r.map_or([f64::NAN; 3], |(_, v, lo, hi, _)| [v, lo, hi])
                    .map(|x| x.to_string())
                    .join("\t")
            };
            let _ = writeln!(
                summary,
                "{}\t{}\t{m}\t{}\t{}",
                run.dataset.name,
                run.task.column,
                triple(find(&model, m)),
                triple(find(&forest, m))
            );
            let _ = writeln!(
                md,
                "| {} | `{}` | {n} | {m} | {} | {} |",
                run.dataset.name,
                run.task.column,
                cell(find(&model, m).as_ref()),
                cell(find(&forest, m).as_ref())
            );
        }
        let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).display().to_string();
        let _ = writeln!(
            sections,
            "## {} — `{}` ({})\n\n{}.\n\n| metric | AAM [95% CI] | random forest [95% CI] |\n|---|---|---|",
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
            if s.name == "pretrain" && !pretrain_listed.insert(run.dataset.name) {
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
    md.push('\n');
    md.push_str(&sections);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(&out.join("commands.sh"), commands.as_bytes())?;
    write_atomic(&out.join("summary.tsv"), summary.as_bytes())?;
    Ok(())
}
