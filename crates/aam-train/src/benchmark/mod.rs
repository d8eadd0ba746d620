//! `aam benchmark`: pretrain → train → export → evaluate → baseline on the standard
//! datasets with fixed seeds, and a Markdown report of the model next to the random
//! forest baseline.
//!
//! Every step runs the `aam` binary ([`BenchmarkOptions::aam`]) as a child process with an explicit command
//! line (recorded in the report and in `commands.sh`, so each number can be reproduced
//! by hand) and its log in `<dataset>/<task>/<step>.log`. The encoder pretrains once per
//! dataset on every sample (no target is read); fine-tuning splits by the dataset's
//! subject column (or takes the fold's split), the model is exported at its last epoch
//! (no choice made on the validation samples), and the model and the forest are scored
//! on the same validation samples.

mod layout;
mod pooled;
mod report;
mod tasks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub use layout::DatasetFiles;
pub use tasks::{Dataset, Task, DATASETS};

/// What `aam benchmark` is asked to do (its flags of the same names).
#[derive(Debug, Clone)]
pub struct BenchmarkOptions {
    /// Directory of the standard datasets (`<root>/<dataset>/table.biom`, metadata.tsv,
    /// unifrac_unweighted.npy, unifrac_ids.txt), e.g. `../shared/data`.
    pub data_root: Option<PathBuf>,
    /// Datasets to run (comma-separated; default: every standard dataset).
    pub datasets: Vec<String>,
    /// Benchmark one other dataset instead: a folder laid out like the standard ones
    /// (`table.biom` whose observation IDs are the ASV sequences, `metadata.tsv`,
    /// `unifrac_unweighted.npy`, `unifrac_ids.txt`) or as QIIME 2 leaves it (`table.qza`
    /// with `rep-seqs.qza`, `unweighted_unifrac_distance_matrix.qza` from
    /// `core-metrics-phylogenetic`, `sample-metadata.tsv`); needs --target and
    /// --group-column. Samples missing from the UniFrac matrix (rarefied out) are left
    /// out of every step, and the steps read the table written to
    /// `<output>/<dataset>/table.biom`. Its max bp is the longest ASV sequence (at most
    /// 150: longer reads are cut).
    pub dataset: Option<PathBuf>,
    /// With --dataset: the metadata columns to predict (comma-separated); numeric columns
    /// are regression targets, any other a classification target.
    pub target: Vec<String>,
    /// With --dataset: the metadata column whose values (e.g. subjects) never sit on
    /// both sides of a split.
    pub group_column: Option<String>,
    /// Directory for the runs and report.md.
    pub output: PathBuf,
    /// Model size and epochs.
    pub preset: Preset,
    /// Seed of every step (splits, initialisation, batches, bootstrap, forest).
    pub seed: u64,
    /// Continue in an --output that already holds runs: finished steps are kept, and a
    /// pretraining or fine-tuning stopped mid-way continues from its last epoch.
    pub resume: bool,
    /// Grouped K-fold cross-validation: every dataset's subjects are dealt into K folds
    /// (seeded), and the whole pipeline runs once per fold with that fold held out, the
    /// model and the forest on the same folds; the report gives each metric's mean and
    /// range over the folds and the paired difference to the forest. A dataset with fewer
    /// subjects than K gets one fold per subject. 1: one split (a quarter of the subjects
    /// held out).
    pub folds: usize,
    /// Fine-tuning seeds averaged per task (an ensemble): member k (from 1) fine-tunes
    /// from the same encoder on the first member's split with seed `seed + k − 1`, and
    /// the members export together (`aam export --checkpoint …` repeated) and are scored
    /// as one model. 1: one fine-tuned model. `None`: the preset's
    /// ([`Settings::ensemble`]).
    pub ensemble: Option<usize>,
    /// The `aam` binary each step runs (named so in the report's command lines).
    pub aam: PathBuf,
}

/// Model size and training length of a benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Preset {
    /// A minute per dataset: embedding dim 8, token limit 16, one epoch each (checks the
    /// pipeline, not the model).
    Smoke,
    /// The CPU default, minutes per dataset on 2 cores: embedding dim 64, 4 heads,
    /// 2 layers, token limit 64; 100 pretraining and 300 fine-tuning optimizer steps,
    /// an ensemble of 3 fine-tuning seeds (docs/benchmark/ablation.md measures D 32 with
    /// 1 layer against it).
    Quick,
    /// The reference's small configuration for a GPU: embedding dim 64, 4 heads,
    /// 2 layers, token limit 256; 2,000 pretraining and 2,000 fine-tuning steps.
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
    /// Optimizer steps of `aam pretrain` (on every sample): its `--epochs` is the number
    /// of passes over the table that reaches them ([`epochs_for`]).
    pub pretrain_steps: usize,
    /// Optimizer steps of `aam train` (on the training side of the split), likewise:
    /// a small table gets more epochs than a large one, not fewer steps.
    pub train_steps: usize,
    /// `--batch-size`.
    pub batch_size: usize,
    /// `--lr`.
    pub lr: &'static str,
    /// The model's inputs and architecture beyond its size (the same for pretraining
    /// and training), as measured in docs/benchmark/ablation.md.
    pub recipe: &'static [&'static str],
    /// Fine-tuning seeds averaged per regression task ([`BenchmarkOptions::ensemble`]):
    /// the quick preset averages 3, since single fine-tuning seeds ranged from −0.05 to
    /// 0.24 R² on the same folds and encoder; classification tasks fine-tune one model,
    /// since ensembles changed nothing measurable for the classifiers and tripled their
    /// fine-tuning time (docs/benchmark/ablation.md).
    pub ensemble: usize,
}

/// The architecture flags of every preset: the k-mer embedding of each ASV,
/// abundance-weighted pooling, the count embedding, and the most abundant ASVs within
/// the token limit (docs/benchmark/ablation.md measures each).
pub const RECIPE: &[&str] = &[
    "--kmer-size",
    "6",
    "--abundance-pooling",
    "--count-embedding",
    "add",
    "--token-limit-policy",
    "abundance",
];

/// Version of the steps' command lines beyond the preset and the recipe (2: fine-tuning
/// with `--patience 0`, k-mers read unmasked in training; 3: the preset's ensemble for
/// regression tasks only), stored in `benchmark.json`: `--resume` refuses an output whose
/// kept steps ran another pipeline.
pub const PIPELINE_VERSION: u32 = 3;

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
                pretrain_steps: 1,
                train_steps: 1,
                batch_size: 8,
                lr: "1e-3",
                recipe: RECIPE,
                ensemble: 1,
            },
            Preset::Quick => Settings {
                embedding_dim: 64,
                heads: 4,
                layers: 2,
                token_limit: 64,
                pretrain_steps: 100,
                train_steps: 300,
                batch_size: 8,
                lr: "1e-3",
                recipe: RECIPE,
                ensemble: 3,
            },
            Preset::Standard => Settings {
                embedding_dim: 64,
                heads: 4,
                layers: 2,
                token_limit: 256,
                pretrain_steps: 2000,
                train_steps: 2000,
                batch_size: 16,
                lr: "5e-4",
                recipe: RECIPE,
                ensemble: 1,
            },
        }
    }
}

impl Settings {
    /// The size and training length, as stored in `benchmark.json` (a preset whose
    /// values changed between aam versions must not resume the other's runs).
    pub fn size(&self) -> serde_json::Value {
        serde_json::json!({
            "embedding_dim": self.embedding_dim,
            "heads": self.heads,
            "layers": self.layers,
            "token_limit": self.token_limit,
            "pretrain_steps": self.pretrain_steps,
            "train_steps": self.train_steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
        })
    }
}

/// Epochs of `samples` samples in batches of `batch` that reach `steps` optimizer steps
/// (at least one).
pub fn epochs_for(steps: usize, samples: usize, batch: usize) -> usize {
    let per_epoch = samples.div_ceil(batch.max(1)).max(1);
    steps.div_ceil(per_epoch).max(1)
}

/// One step that ran (or was kept): its command line and wall time.
#[derive(Clone)]
pub struct StepRecord {
    /// Whether the step was kept from an earlier run (not run now).
    pub kept: bool,
    /// `pretrain`, `train` (`train-K`: member K of an ensemble), `export`, `evaluate`
    /// or `baseline`.
    pub name: String,
    /// The step's command line, beginning with `aam`.
    pub command: Vec<String>,
    /// Wall time, s (`None` for a kept step whose time was not recorded).
    pub seconds: Option<f64>,
}

/// Runs `aam <args>`, logging to `log`; with --resume, a step that finished before
/// (its `<log>.done` marker, written after it succeeded) is kept.
fn step(aam: &Path, name: &str, args: Vec<String>, log: &Path, resume: bool) -> Result<StepRecord> {
    let mut command = vec!["aam".to_string()];
    command.extend(args.iter().cloned());
    let done = done_marker(log);
    if resume && done.exists() {
        // The marker holds the step's wall time.
        let seconds = std::fs::read_to_string(&done)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok());
        eprintln!("  {name}: kept (finished in an earlier run)");
        return Ok(StepRecord {
            kept: true,
            name: name.to_string(),
            command,
            seconds,
        });
    }
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let start = Instant::now();
    let status = Command::new(aam)
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
        name: name.to_string(),
        command,
        seconds: Some(seconds),
    })
}

/// The marker [`step`] writes beside a finished step's `log` (holding its wall time).
fn done_marker(log: &Path) -> PathBuf {
    log.with_extension("done")
}

/// The folder of a standard dataset under --data-root.
fn standard_dir(args: &BenchmarkOptions, d: &Dataset) -> PathBuf {
    args.data_root.clone().unwrap_or_default().join(d.name)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Everything the report needs of one task (on one fold).
pub struct TaskRun {
    /// The dataset.
    pub dataset: &'static Dataset,
    /// The target predicted.
    pub task: &'static Task,
    /// The task's folder (its steps' logs and outputs).
    pub dir: PathBuf,
    /// Its steps, in order.
    pub steps: Vec<StepRecord>,
    /// The fold held out (1-based) with `--folds K`; `None` for the single split.
    pub fold: Option<usize>,
}

/// With `--folds K`, writes `<root>/folds/fold-<k>.tsv` (the grouped K-fold splits of the
/// dataset's samples by its subject column, stratified by its first categorical target,
/// [`aam_data::group_kfold`]) and returns their paths; `[None]` for the single split.
fn fold_splits(
    args: &BenchmarkOptions,
    d: &Dataset,
    data: &DatasetFiles,
    root: &Path,
) -> Result<Vec<Option<PathBuf>>> {
    if args.folds <= 1 {
        return Ok(vec![None]);
    }
    let (table, _) = aam_data::load_table(&data.table)?;
    let metadata = aam_data::Metadata::load(&data.metadata)?;
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
                .with_context(|| format!("sample '{id}' has no row in {}", data.metadata.display()))
        })
        .collect::<Result<_>>()?;
    // Folds stratified by the dataset's first categorical target, so that each fold holds
    // both classes where the subjects allow (a fold of one class has no ROC-AUC).
    let classes: Option<Vec<usize>> = match d.tasks.iter().find(|t| t.kind == "categorical") {
        Some(task) => {
            let target = metadata.target(
                task.column,
                &table.sample_ids,
                Some(aam_data::TargetKind::Categorical),
            )?;
            // A sample without a value gets a stratum of its own (usize::MAX).
            Some(
                target
                    .values
                    .iter()
                    .map(|v| v.map_or(usize::MAX, |c| c as usize))
                    .collect(),
            )
        }
        None => None,
    };
    // A dataset with fewer subjects than folds gets one fold per subject.
    let subjects = groups
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let k = args.folds.min(subjects);
    if k < args.folds {
        eprintln!(
            "  {} has {subjects} subjects ('{}'): {k} folds instead of {}",
            d.name, d.group_column, args.folds
        );
    }
    let folds = aam_data::group_kfold(
        table.n_samples(),
        k,
        args.seed,
        Some(&groups),
        classes.as_deref(),
    )
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

/// The dataset of `--dataset DIR --target … --group-column G`: its name is the folder's,
/// each target's kind comes from its values, its max bp from the longest sequence.
///
/// Leaked to `&'static` (one per run) so that it runs through the same code as the
/// standard datasets.
fn custom_dataset(
    dir: &Path,
    found: &layout::FoundDataset,
    targets: &[String],
    group_column: &str,
) -> Result<&'static Dataset> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .with_context(|| format!("{}: --dataset must name a folder", dir.display()))?;
    let table = &found.table;
    let metadata = aam_data::Metadata::load(&found.files.metadata)?;
    metadata.column_index(group_column)?;
    let longest = table
        .observation_ids
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0);
    let max_bp = longest.clamp(1, 150);
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let tasks: Vec<Task> = targets
        .iter()
        .map(|column| {
            let t = metadata.target(column, &table.sample_ids, None)?;
            Ok(Task {
                column: leak(column),
                kind: match t.kind {
                    aam_data::TargetKind::Numeric => "numeric",
                    aam_data::TargetKind::Categorical => "categorical",
                },
            })
        })
        .collect::<Result<_>>()?;
    let description = format!(
        "{name}: {} samples × {} ASVs, up to {longest} bp, split by '{group_column}'; from {}",
        table.n_samples(),
        table.observation_ids.len(),
        found.origin()
    );
    Ok(Box::leak(Box::new(Dataset {
        name: leak(&name),
        description: leak(&description),
        max_bp,
        group_column: leak(group_column),
        tasks: Box::leak(tasks.into_boxed_slice()),
    })))
}

/// Runs the benchmark of `args`, writing its runs, `report.md` and `summary.tsv` into
/// `args.output`.
///
/// Errors: an unknown dataset, an output that holds another benchmark's runs (without
/// `resume`), a step that fails (naming its log).
pub fn run(args: &BenchmarkOptions) -> Result<()> {
    // A --dataset folder is read first: its layout decides the files, and its table
    // (with sequence IDs) the targets' kinds and the max bp.
    let found = match &args.dataset {
        Some(dir) => Some(layout::find(dir)?),
        None => None,
    };
    let chosen: Vec<&'static Dataset> = if let (Some(dir), Some(found)) = (&args.dataset, &found) {
        let group = args.group_column.as_deref().unwrap_or_default();
        vec![custom_dataset(dir, found, &args.target, group)?]
    } else if args.datasets.is_empty() {
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
    let ensemble = args.ensemble_size();
    if ensemble == 0 || ensemble > aam_config::ensemble::MAX_MEMBERS {
        bail!(
            "--ensemble {ensemble}: give 1 to {} fine-tuning seeds per task",
            aam_config::ensemble::MAX_MEMBERS
        );
    }
    if args.output.join("report.md").exists() && !args.resume {
        bail!(
            "{} already holds a benchmark; pass --resume to continue it or choose another --output",
            args.output.display()
        );
    }
    // A --dataset folder was checked by layout::find; the standard ones are checked here.
    for d in chosen.iter().filter(|_| found.is_none()) {
        let f = DatasetFiles::standard(&standard_dir(args, d));
        for p in [&f.table, &f.metadata, &f.unifrac_matrix]
            .into_iter()
            .chain(&f.unifrac_ids)
        {
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
    let p = args.preset.settings();
    let mut settings = serde_json::json!({
        "preset": args.preset.name(),
        "seed": args.seed,
        "pipeline": PIPELINE_VERSION,
        "recipe": p.recipe,
        "size": p.size(),
    });
    if args.folds > 1 {
        settings["folds"] = args.folds.into();
    }
    if ensemble > 1 {
        settings["ensemble"] = ensemble.into();
    }
    if args.resume {
        if let Ok(text) = std::fs::read_to_string(&settings_path) {
            let earlier: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", settings_path.display()))?;
            if earlier != settings {
                bail!(
                    "{} holds a benchmark run with {earlier}; resume it with the same --preset, --seed, --folds and --ensemble (a quick run from before the preset's ensemble of 3 resumes with --ensemble 1; and an aam of the same pipeline, recipe and preset sizes), or choose another --output",
                    args.output.display()
                );
            }
        }
    }
    aam_data::files::write_atomic(&settings_path, settings.to_string().as_bytes())?;
    let seed = args.seed.to_string();
    let mut runs: Vec<TaskRun> = Vec::new();
    for d in chosen {
        let root = args.output.join(d.name);
        std::fs::create_dir_all(&root)?;
        eprintln!("{} ({})", d.name, d.description);
        let data = match &found {
            Some(found) => found.files_for_steps(&root)?,
            None => DatasetFiles::standard(&standard_dir(args, d)),
        };
        // `continues`: with --resume, a step stopped mid-way (a resume point and no
        // `.done` marker) continues from its last epoch instead of starting again, so a
        // long preset can run over several sessions.
        let model_args = |out: &Path, epochs: usize, continues: bool| -> Vec<String> {
            let mut a = vec![
                "--table".into(),
                s(&data.table),
                "--unifrac-matrix".into(),
                s(&data.unifrac_matrix),
            ];
            if let Some(ids) = &data.unifrac_ids {
                a.extend(["--unifrac-ids".into(), s(ids)]);
            }
            a.extend([
                "--metadata".into(),
                s(&data.metadata),
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
            ]);
            a.extend(p.recipe.iter().map(|f| f.to_string()));
            if args.resume {
                let stopped = continues && crate::resume_file::exists(out);
                a.push(if stopped { "--resume" } else { "--overwrite" }.into());
            }
            a
        };
        // The encoder pretrains once per dataset, on every sample of the table: it reads
        // no target, so the held-out samples' UniFrac distances are fair to learn from
        // (their targets are never seen before scoring), and every fold shares it.
        let pretrain_dir = root.join("pretrain");
        let n_samples = aam_data::load_table(&data.table)?.0.n_samples();
        let pretrain_log = root.join("pretrain.log");
        let mut pretrain = model_args(
            &pretrain_dir,
            epochs_for(p.pretrain_steps, n_samples, p.batch_size),
            !done_marker(&pretrain_log).exists(),
        );
        pretrain.splice(
            0..0,
            [
                "pretrain".to_string(),
                "--validation-fraction".into(),
                "0".into(),
            ],
        );
        let pretrain_step = step(&args.aam, "pretrain", pretrain, &pretrain_log, args.resume)?;
        // A step that runs again invalidates every later step built on it.
        let keep_tasks = args.resume && pretrain_step.kept;
        let fold_splits = fold_splits(args, d, &data, &root)?;
        for (fold, fold_split) in fold_splits.iter().enumerate() {
            let root = match fold_split {
                Some(_) => root.join(format!("fold-{}", fold + 1)),
                None => root.clone(),
            };
            let fold = fold_split.as_ref().map(|_| fold + 1);
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            // The split of the fine-tuning, scoring and forest steps.
            let split_args: Vec<String> = match fold_split {
                Some(file) => vec!["--split".into(), s(file)],
                None => vec![
                    "--group-column".into(),
                    d.group_column.into(),
                    "--validation-fraction".into(),
                    "0.25".into(),
                ],
            };
            for task in d.tasks {
                let dir = root.join(task.column);
                std::fs::create_dir_all(&dir)?;
                eprintln!(" {} ({})", task.column, task.kind);
                let train_dir = dir.join("train");
                // The training side: 3/4 of the samples, or all but one of K folds (about: the
                // subjects' sizes differ).
                let held_out = if args.folds > 1 {
                    1.0 / fold_splits.len() as f64
                } else {
                    0.25
                };
                let n_train = ((n_samples as f64) * (1.0 - held_out)).round() as usize;
                // Only on the encoder the stopped run started from.
                let train_log = dir.join("train.log");
                let continues = keep_tasks && !done_marker(&train_log).exists();
                let mut train = model_args(
                    &train_dir,
                    epochs_for(p.train_steps, n_train, p.batch_size),
                    continues,
                );
                train.splice(
                    0..0,
                    [
                        "train".to_string(),
                        "--metadata-column".into(),
                        task.column.into(),
                        "--target-type".into(),
                        task.kind.into(),
                        "--pretrained-encoder".into(),
                        s(&pretrain_dir),
                        // The held-out samples are this run's validation set: no early
                        // stopping on them; the run takes the preset's steps and the last
                        // epoch is scored.
                        "--patience".into(),
                        "0".into(),
                    ]
                    .into_iter()
                    .chain(split_args.iter().cloned()),
                );
                let mut steps = vec![pretrain_step.clone()];
                let train_step = step(&args.aam, "train", train.clone(), &train_log, keep_tasks)?;
                let mut keep = keep_tasks && train_step.kept;
                steps.push(train_step);
                let mut export = vec!["export".into(), "--last".into()];
                export.extend(["--checkpoint".into(), s(&train_dir)]);
                // The other members of an ensemble: another seed on the first one's split.
                for k in 2..=args.ensemble_for(task.kind) {
                    let member_dir = dir.join(format!("train-{k}"));
                    let log = dir.join(format!("train-{k}.log"));
                    let member = member_args(
                        &train,
                        &train_dir,
                        &member_dir,
                        args.seed.wrapping_add(k as u64 - 1),
                        keep && crate::resume_file::exists(&member_dir),
                        args.resume,
                    );
                    let member_step = step(&args.aam, &format!("train-{k}"), member, &log, keep)?;
                    keep &= member_step.kept;
                    steps.push(member_step);
                    export.extend(["--checkpoint".into(), s(&member_dir)]);
                }
                let export_dir = dir.join("export");
                // The last epoch, not the one with the lowest validation loss: that choice
                // would look at the samples the model is scored on.
                export.extend(["--output".into(), s(&export_dir), "--overwrite".into()]);
                steps.push(step(
                    &args.aam,
                    "export",
                    export,
                    &dir.join("export.log"),
                    keep,
                )?);
                let labelled = |cmd: &str, out: &Path| -> Vec<String> {
                    vec![
                        cmd.into(),
                        "--table".into(),
                        s(&data.table),
                        "--metadata".into(),
                        s(&data.metadata),
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
                steps.push(step(
                    &args.aam,
                    "evaluate",
                    evaluate,
                    &dir.join("evaluate.log"),
                    keep,
                )?);
                let mut baseline = labelled("baseline", &dir.join("baseline"));
                baseline.extend(["--target-type".into(), task.kind.into()]);
                steps.push(step(
                    &args.aam,
                    "baseline",
                    baseline,
                    &dir.join("baseline.log"),
                    keep,
                )?);
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

impl BenchmarkOptions {
    /// Largest number of fine-tuning seeds averaged per task: [`BenchmarkOptions::ensemble`],
    /// or the preset's.
    pub fn ensemble_size(&self) -> usize {
        self.ensemble
            .unwrap_or_else(|| self.preset.settings().ensemble)
    }

    /// Fine-tuning seeds averaged for a task of `kind` (`numeric` or `categorical`):
    /// [`BenchmarkOptions::ensemble`] for every task when given, else the preset's for
    /// regression tasks and 1 for classification tasks ([`Settings::ensemble`]).
    pub fn ensemble_for(&self, kind: &str) -> usize {
        match self.ensemble {
            Some(n) => n,
            None if kind == "numeric" => self.preset.settings().ensemble,
            None => 1,
        }
    }
}

/// The `aam train` command line of an ensemble member: `first`'s (the first member's,
/// writing to `first_dir`) with its own `--output`, `--seed`, and the first member's
/// `split.tsv` in place of the split flags, so every member sees the same samples.
/// `continues`: with `resume`, a member stopped mid-way continues from its last epoch.
fn member_args(
    first: &[String],
    first_dir: &Path,
    out: &Path,
    seed: u64,
    continues: bool,
    resume: bool,
) -> Vec<String> {
    let mut args = Vec::with_capacity(first.len());
    let mut it = first.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--output" | "--seed" | "--split" | "--group-column" | "--validation-fraction" => {
                it.next();
            }
            "--resume" | "--overwrite" => {}
            _ => args.push(a.clone()),
        }
    }
    args.extend([
        "--output".into(),
        s(out),
        "--seed".into(),
        seed.to_string(),
        "--split".into(),
        s(&first_dir.join("split.tsv")),
    ]);
    if resume {
        args.push(if continues { "--resume" } else { "--overwrite" }.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_ensemble_is_for_regression_tasks_and_a_given_one_for_every_task() {
        let mut options = BenchmarkOptions {
            data_root: None,
            datasets: Vec::new(),
            dataset: None,
            target: Vec::new(),
            group_column: None,
            output: PathBuf::new(),
            preset: Preset::Quick,
            seed: 42,
            resume: false,
            folds: 1,
            ensemble: None,
            aam: PathBuf::new(),
        };
        assert_eq!(options.ensemble_for("numeric"), 3);
        assert_eq!(options.ensemble_for("categorical"), 1);
        assert_eq!(options.ensemble_size(), 3);
        options.ensemble = Some(2);
        assert_eq!(options.ensemble_for("numeric"), 2);
        assert_eq!(options.ensemble_for("categorical"), 2);
        options.ensemble = None;
        options.preset = Preset::Standard;
        assert_eq!(options.ensemble_for("numeric"), 1);
    }
}
