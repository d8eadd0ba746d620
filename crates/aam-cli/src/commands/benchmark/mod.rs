//! `aam benchmark`: pretrain → train → export → evaluate → baseline on the standard
//! datasets with fixed seeds, and a Markdown report of the model next to the random
//! forest baseline.
//!
//! Every step runs this same `aam` binary as a child process with an explicit command
//! line (recorded in the report and in `commands.sh`, so each number can be reproduced
//! by hand) and its log in `<dataset>/<task>/<step>.log`. The pretraining split
//! (by the dataset's subject column) is the split of every later step: the encoder
//! never trains on a validation sample, and the model and the forest are scored on the
//! same validation samples.

mod report;
mod tasks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

pub use tasks::{Dataset, Task, DATASETS};

/// Arguments of `aam benchmark`.
#[derive(Args, Debug)]
pub struct BenchmarkArgs {
    /// Directory of the standard datasets (`<root>/<dataset>/table.biom`, metadata.tsv,
    /// unifrac_unweighted.npy, unifrac_ids.txt), e.g. `../shared/data`.
    #[arg(long)]
    pub data_root: PathBuf,
    /// Datasets to run (comma-separated; default: every standard dataset).
    #[arg(long, value_delimiter = ',')]
    pub datasets: Vec<String>,
    /// Directory for the runs and report.md.
    #[arg(long)]
    pub output: PathBuf,
    /// Model size and epochs.
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    /// Seed of every step (splits, initialisation, batches, bootstrap, forest).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Continue in an --output that already holds runs (steps whose outputs exist are
    /// kept).
    #[arg(long)]
    pub resume: bool,
    /// Grouped K-fold cross-validation: every dataset's subjects are dealt into K folds
    /// (seeded), and the whole pipeline runs once per fold with that fold held out, the
    /// model and the forest on the same folds; the report gives each metric's mean and
    /// range over the folds and the paired difference to the forest. A dataset with fewer
    /// subjects than K gets one fold per subject. 1: one split (a quarter of the subjects
    /// held out).
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
}

/// Model size and training length of a benchmark.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Preset {
    /// A minute per dataset: embedding dim 8, token limit 16, one epoch each (checks the
    /// pipeline, not the model).
    Smoke,
    /// Minutes per dataset on 2 CPU cores: embedding dim 32, 2 heads, 1 layer, token
    /// limit 64; 3 pretraining and 6 training epochs.
    Quick,
    /// The reference's small configuration for a GPU: embedding dim 64, 4 heads,
    /// 2 layers, token limit 256; 30 pretraining and 60 training epochs.
    Standard,
}

/// The training settings of a preset.
pub struct Settings {
    /// `--embedding-dim`.
    pub embedding_dim: usize,
    /// `--attention-heads`.
    pub heads: usize,
    /// `--attention-layers` (every stack).
    pub layers: usize,
    /// `--token-limit`.
    pub token_limit: usize,
    /// `aam pretrain --epochs`.
    pub pretrain_epochs: usize,
    /// `aam train --epochs`.
    pub train_epochs: usize,
    /// `--batch-size`.
    pub batch_size: usize,
    /// `--lr`.
    pub lr: &'static str,
}

impl Preset {
    /// The `--preset` value.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Smoke => "smoke",
            Preset::Quick => "quick",
            Preset::Standard => "standard",
        }
    }

    /// The preset's settings.
    pub fn settings(self) -> Settings {
        match self {
            Preset::Smoke => Settings {
                embedding_dim: 8,
                heads: 2,
                layers: 1,
                token_limit: 16,
                pretrain_epochs: 1,
                train_epochs: 1,
                batch_size: 8,
                lr: "1e-3",
            },
            Preset::Quick => Settings {
                embedding_dim: 32,
                heads: 2,
                layers: 1,
                token_limit: 64,
                pretrain_epochs: 3,
                train_epochs: 6,
                batch_size: 8,
                lr: "1e-3",
            },
            Preset::Standard => Settings {
                embedding_dim: 64,
                heads: 4,
                layers: 2,
                token_limit: 256,
                pretrain_epochs: 30,
                train_epochs: 60,
                batch_size: 16,
                lr: "5e-4",
            },
        }
    }
}

/// One step that ran (or was kept): its command line and wall time.
pub struct StepRecord {
    /// Whether the step was kept from an earlier run (not run now).
    pub kept: bool,
    pub name: &'static str,
    pub command: Vec<String>,
    pub seconds: Option<f64>,
}

/// Runs `aam <args>`, logging to `log`; with --resume, a step that finished before
/// (its `<log>.done` marker, written after it succeeded) is kept.
fn step(name: &'static str, args: Vec<String>, log: &Path, resume: bool) -> Result<StepRecord> {
    let mut command = vec!["aam".to_string()];
    command.extend(args.iter().cloned());
    let done = log.with_extension("done");
    if resume && done.exists() {
        // The marker holds the step's wall time.
        let seconds = std::fs::read_to_string(&done)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok());
        eprintln!("  {name}: kept (finished in an earlier run)");
        return Ok(StepRecord {
            kept: true,
            name,
            command,
            seconds,
        });
    }
    let exe = std::env::current_exe().context("cannot locate the aam binary")?;
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let start = Instant::now();
    let status = Command::new(exe)
        .args(&args)
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .with_context(|| format!("cannot start the {name} step"))?;
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "the {name} step failed ({status}); its output is in {}",
            log.display()
        );
    }
    std::fs::write(&done, format!("{seconds}\n"))
        .with_context(|| format!("cannot write {}", done.display()))?;
    eprintln!("  {name}: {seconds:.1} s");
    Ok(StepRecord {
        kept: false,
        name,
        command,
        seconds: Some(seconds),
    })
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Everything the report needs of one task (on one fold).
pub struct TaskRun {
    pub dataset: &'static Dataset,
    pub task: &'static Task,
    pub dir: PathBuf,
    pub steps: Vec<StepRecord>,
    /// The fold held out (1-based) with `--folds K`; `None` for the single split.
    pub fold: Option<usize>,
}

/// With `--folds K`, writes `<root>/folds/fold-<k>.tsv` (the grouped K-fold splits of the
/// dataset's samples by its subject column, stratified by its first categorical target,
/// [`aam_data::group_kfold`]) and returns their paths; `[None]` for the single split.
fn fold_splits(
    args: &BenchmarkArgs,
    d: &Dataset,
    data: &Path,
    root: &Path,
) -> Result<Vec<Option<PathBuf>>> {
    if args.folds <= 1 {
        return Ok(vec![None]);
    }
    let (table, _) = aam_data::load_table(&data.join("table.biom"))?;
    let metadata = aam_data::Metadata::load(&data.join("metadata.tsv"))?;
    let column = metadata.column_index(d.group_column)?;
    let row_of: std::collections::HashMap<&str, usize> = metadata
        .sample_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let groups: Vec<String> = table
        .sample_ids
        .iter()
        .map(|id| {
            row_of
                .get(id.as_str())
                .map(|&r| metadata.rows[r][column].clone())
                .with_context(|| format!("sample '{id}' has no row in {}", data.join("metadata.tsv").display()))
        })
        .collect::<Result<_>>()?;
    // Folds stratified by the dataset's first categorical target, so that each fold holds
    // both classes where the subjects allow (a fold of one class has no ROC-AUC).
    let classes: Option<Vec<usize>> = match d.tasks.iter().find(|t| t.kind == "categorical") {
        Some(task) => {
            let c = metadata.column_index(task.column)?;
            let value = |id: &String| row_of.get(id.as_str()).map(|&r| metadata.rows[r][c].clone());
            let mut labels: Vec<String> = table.sample_ids.iter().filter_map(value).collect();
            labels.sort();
            labels.dedup();
            Some(
                table
                    .sample_ids
                    .iter()
                    .map(|id| value(id).and_then(|v| labels.iter().position(|l| *l == v)).unwrap_or(usize::MAX))
                    .collect(),
            )
        }
        None => None,
    };
    // A dataset with fewer subjects than folds gets one fold per subject.
    let subjects = groups.iter().collect::<std::collections::HashSet<_>>().len();
    let k = args.folds.min(subjects);
    if k < args.folds {
        eprintln!(
            "  {} has {subjects} subjects ('{}'): {k} folds instead of {}",
            d.name, d.group_column, args.folds
        );
    }
    let folds = aam_data::group_kfold(table.n_samples(), k, args.seed, Some(&groups), classes.as_deref())
        .with_context(|| format!("{}: cross-validation by '{}'", d.name, d.group_column))?;
    let dir = root.join("folds");
    std::fs::create_dir_all(&dir)?;
    folds
        .iter()
        .enumerate()
        .map(|(k, split)| {
            let path = dir.join(format!("fold-{}.tsv", k + 1));
            aam_data::split::write_split_tsv(&path, &table.sample_ids, split)?;
            Ok(Some(path))
        })
        .collect()
}

pub fn run(args: &BenchmarkArgs) -> Result<()> {
    let chosen: Vec<&'static Dataset> = if args.datasets.is_empty() {
        DATASETS.iter().collect()
    } else {
        args.datasets
            .iter()
            .map(|name| {
                DATASETS.iter().find(|d| d.name == name).with_context(|| {
                    format!(
                        "unknown dataset '{name}'; the standard datasets are {}",
                        DATASETS
                            .iter()
                            .map(|d| d.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    if args.output.join("report.md").exists() && !args.resume {
        bail!(
            "{} already holds a benchmark; pass --resume to continue it or choose another --output",
            args.output.display()
        );
    }
    for d in &chosen {
        for file in [
            "table.biom",
            "metadata.tsv",
            "unifrac_unweighted.npy",
            "unifrac_ids.txt",
        ] {
            let p = args.data_root.join(d.name).join(file);
            if !p.exists() {
                bail!(
                    "{} is missing; --data-root must hold the standard datasets (e.g. ../shared/data)",
                    p.display()
                );
            }
        }
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    // The settings every kept step was run with: a resume must use the same.
    let settings_path = args.output.join("benchmark.json");
    let settings = if args.folds > 1 {
        serde_json::json!({ "preset": args.preset.name(), "seed": args.seed, "folds": args.folds })
    } else {
        serde_json::json!({ "preset": args.preset.name(), "seed": args.seed })
    };
    if args.resume {
        if let Ok(text) = std::fs::read_to_string(&settings_path) {
            let earlier: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", settings_path.display()))?;
            if earlier != settings {
                bail!(
                    "{} holds a benchmark run with {earlier}; resume it with the same --preset and --seed, or choose another --output",
                    args.output.display()
                );
            }
        }
    }
    aam_train::checkpoint::write_atomic(&settings_path, settings.to_string().as_bytes())?;
    let p = args.preset.settings();
    let seed = args.seed.to_string();
    let mut runs: Vec<TaskRun> = Vec::new();
    for d in chosen {
        let data = args.data_root.join(d.name);
        let root = args.output.join(d.name);
        std::fs::create_dir_all(&root)?;
        eprintln!("{} ({})", d.name, d.description);
        let model_args = |out: &Path, epochs: usize| -> Vec<String> {
            let mut a = vec![
                "--table".into(),
                s(&data.join("table.biom")),
                "--unifrac-matrix".into(),
                s(&data.join("unifrac_unweighted.npy")),
                "--unifrac-ids".into(),
                s(&data.join("unifrac_ids.txt")),
                "--metadata".into(),
                s(&data.join("metadata.tsv")),
                "--output".into(),
                s(out),
                "--embedding-dim".into(),
                p.embedding_dim.to_string(),
                "--attention-heads".into(),
                p.heads.to_string(),
                "--attention-layers".into(),
                p.layers.to_string(),
                "--max-bp".into(),
                d.max_bp.to_string(),
                "--token-limit".into(),
                p.token_limit.to_string(),
                "--epochs".into(),
                epochs.to_string(),
                "--batch-size".into(),
                p.batch_size.to_string(),
                "--lr".into(),
                p.lr.into(),
                "--seed".into(),
                seed.clone(),
                "--quiet".into(),
            ];
            if args.resume {
                a.push("--overwrite".into());
            }
            a
        };
        let fold_splits = fold_splits(args, d, &data, &root)?;
        for (fold, fold_split) in fold_splits.iter().enumerate() {
        let root = match fold_split {
            Some(_) => root.join(format!("fold-{}", fold + 1)),
            None => root.clone(),
        };
        let fold = fold_split.as_ref().map(|_| fold + 1);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let pretrain_dir = root.join("pretrain");
        let mut pretrain = model_args(&pretrain_dir, p.pretrain_epochs);
        let split_args: Vec<String> = match fold_split {
            Some(file) => vec!["--split".into(), s(file)],
            None => vec![
                "--group-column".into(),
                d.group_column.into(),
                "--validation-fraction".into(),
                "0.25".into(),
            ],
        };
        pretrain.splice(
            0..0,
            std::iter::once("pretrain".to_string()).chain(split_args),
        );
        let pretrain_step = step(
            "pretrain",
            pretrain,
            &root.join("pretrain.log"),
            args.resume,
        )?;
        // A step that runs again invalidates every later step built on it.
        let keep_tasks = args.resume && pretrain_step.kept;
        let split = pretrain_dir.join("split.tsv");
        for task in d.tasks {
            let dir = root.join(task.column);
            std::fs::create_dir_all(&dir)?;
            eprintln!(" {} ({})", task.column, task.kind);
            let train_dir = dir.join("train");
            let mut train = model_args(&train_dir, p.train_epochs);
            train.splice(
                0..0,
                [
                    "train".to_string(),
                    "--metadata-column".into(),
                    task.column.into(),
                    "--target-type".into(),
                    task.kind.into(),
                    "--split".into(),
                    s(&split),
                    "--pretrained-encoder".into(),
                    s(&pretrain_dir),
                ],
            );
            let mut steps = vec![pretrain_step.clone_record()];
            let train_step = step("train", train, &dir.join("train.log"), keep_tasks)?;
            let keep = keep_tasks && train_step.kept;
            steps.push(train_step);
            let export_dir = dir.join("export");
            steps.push(step(
                "export",
                vec![
                    "export".into(),
                    "--checkpoint".into(),
                    s(&train_dir),
                    "--output".into(),
                    s(&export_dir),
                    "--overwrite".into(),
                ],
                &dir.join("export.log"),
                keep,
            )?);
            let labelled = |cmd: &str, out: &Path| -> Vec<String> {
                vec![
                    cmd.into(),
                    "--table".into(),
                    s(&data.join("table.biom")),
                    "--metadata".into(),
                    s(&data.join("metadata.tsv")),
                    "--metadata-column".into(),
                    task.column.into(),
                    "--split".into(),
                    s(&train_dir.join("split.tsv")),
                    "--output".into(),
                    s(out),
                    "--seed".into(),
                    seed.clone(),
                    "--overwrite".into(),
                ]
            };
            let mut evaluate = labelled("evaluate", &dir.join("evaluate"));
            evaluate.extend(["--model".into(), s(&export_dir)]);
            steps.push(step("evaluate", evaluate, &dir.join("evaluate.log"), keep)?);
            let mut baseline = labelled("baseline", &dir.join("baseline"));
            baseline.extend(["--target-type".into(), task.kind.into()]);
            steps.push(step("baseline", baseline, &dir.join("baseline.log"), keep)?);
            runs.push(TaskRun {
                dataset: d,
                task,
                dir,
                steps,
                fold,
            });
            // Written after every task: an interrupted benchmark still has its report.
            report::write(&args.output, args, &runs)?;
        }
        }
    }
    eprintln!("wrote {}", args.output.join("report.md").display());
    Ok(())
}

impl StepRecord {
    fn clone_record(&self) -> StepRecord {
        StepRecord {
            kept: self.kept,
            name: self.name,
            command: self.command.clone(),
            seconds: self.seconds,
        }
    }
}
