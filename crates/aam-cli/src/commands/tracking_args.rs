//! Experiment-tracking options of `aam pretrain` and `aam train` (TensorBoard event files,
//! an MLflow run) and what happens when the training ends: the training-curves plot, the
//! MLflow artifacts and run status.

use std::path::{Path, PathBuf};

use aam_data::files::read_metrics_log;
use aam_train::tracking::mlflow::{checkpoint_artifacts, Mlflow, MlflowOptions, RunStatus};
use aam_train::tracking::tensorboard::TensorBoard;
use aam_train::{FitReport, Tracking};
use anyhow::{Context, Result};
use clap::Args;

use aam_train::plots;

/// `--tensorboard`, `--mlflow-uri` and their companions.
#[derive(Args, Debug, Default)]
pub struct TrackingArgs {
    /// Write TensorBoard event files (every loss term and the learning rate per step, epoch
    /// metrics, weight histograms, the configuration) into <output>/tensorboard.
    #[arg(long)]
    pub tensorboard: bool,
    /// TensorBoard log directory instead of <output>/tensorboard (implies --tensorboard);
    /// give every run its own directory.
    #[arg(long, value_name = "DIR")]
    pub tensorboard_dir: Option<PathBuf>,
    /// Track the run on this MLflow server, http://host:port: params, step and epoch
    /// metrics, and the checkpoint, log and plots as artifacts when it ends. Credentials:
    /// MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
    #[arg(long, value_name = "URI")]
    pub mlflow_uri: Option<String>,
    /// MLflow experiment (created on the server when missing).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "aam",
        requires = "mlflow_uri"
    )]
    pub mlflow_experiment: String,
    /// MLflow run name [default: the --output folder's name].
    #[arg(long, value_name = "NAME", requires = "mlflow_uri")]
    pub mlflow_run_name: Option<String>,
}

impl TrackingArgs {
    /// The TensorBoard log directory, when TensorBoard is on.
    fn tensorboard_dir(&self, output: &Path) -> Option<PathBuf> {
        match &self.tensorboard_dir {
            Some(dir) => Some(dir.clone()),
            None => self.tensorboard.then(|| output.join("tensorboard")),
        }
    }

    /// Opens the trackers asked for: the event file, then the MLflow run (which fails
    /// fast when the server cannot be reached, before any training). Call it once the
    /// inputs are read, just before training.
    pub fn open(&self, output: &Path, resume: bool) -> Result<Tracking> {
        let mut tracking = Tracking::default();
        if let Some(dir) = self.tensorboard_dir(output) {
            let tb = TensorBoard::create(&dir)?;
            eprintln!(
                "TensorBoard events: {} (view with `tensorboard --logdir {}`)",
                tb.path().display(),
                dir.display()
            );
            tracking.tensorboard = Some(tb);
        }
        if let Some(uri) = &self.mlflow_uri {
            let run_name = self.mlflow_run_name.clone().or_else(|| {
                output
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            });
            let options = MlflowOptions {
                uri: uri.clone(),
                experiment: self.mlflow_experiment.clone(),
                run_name,
            };
            std::fs::create_dir_all(output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let mlflow = Mlflow::open(&options, output, resume)?;
            eprintln!("MLflow run: {}", mlflow.run_url());
            tracking.mlflow = Some(mlflow);
        }
        Ok(tracking)
    }
}

/// Ends a training invocation: on success writes `<output>/training_curves.{png,svg}`
/// (training and validation loss per epoch, from `metrics.jsonl`) and, with MLflow,
/// uploads the checkpoint's files and the plots and marks the run FINISHED; on failure
/// marks the MLflow run FAILED. Returns `result` unless finishing failed.
pub fn finish(
    mut tracking: Tracking,
    result: Result<FitReport>,
    output: &Path,
) -> Result<FitReport> {
    let plots = match &result {
        Ok(_) => training_curves(output)?,
        Err(_) => Vec::new(),
    };
    if let Some(mlflow) = &mut tracking.mlflow {
        match &result {
            Ok(_) => {
                for (file, name) in checkpoint_artifacts(output, &plots) {
                    mlflow.log_artifact(&file, &name)?;
                }
                mlflow.finish(RunStatus::Finished)?;
                eprintln!("MLflow run finished: {}", mlflow.run_url());
            }
            Err(_) => {
                if let Err(e) = mlflow.finish(RunStatus::Failed) {
                    eprintln!("warning: cannot mark the MLflow run as failed: {e:#}");
                }
            }
        }
    }
    result
}

/// Draws the loss curves of `output/metrics.jsonl`; returns the files written.
fn training_curves(output: &Path) -> Result<Vec<PathBuf>> {
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for (i, record) in read_metrics_log(&output.join("metrics.jsonl"))?
        .iter()
        .enumerate()
    {
        let epoch = record["epoch"].as_f64().unwrap_or((i + 1) as f64);
        if let Some(v) = record["train"]["total"].as_f64() {
            train.push((epoch, v));
        }
        if let Some(v) = record["validation"]["loss"].as_f64() {
            validation.push((epoch, v));
        }
    }
    let stem = output.join("training_curves");
    plots::curves(
        &stem,
        "Training and validation loss",
        "epoch",
        "loss",
        &[
            ("training loss".to_string(), train),
            ("validation loss".to_string(), validation),
        ],
    )?;
    Ok(vec![
        output.join("training_curves.png"),
        output.join("training_curves.svg"),
    ])
}
