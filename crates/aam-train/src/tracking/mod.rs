//! Experiment tracking: what the training loop reports, step by step and epoch by epoch,
//! to TensorBoard event files ([`tensorboard`]) and to an MLflow tracking server
//! ([`mlflow`]).
//!
//! The loop calls a [`Tracker`]: [`Tracker::start`] once per invocation, [`Tracker::step`]
//! after every optimizer step and [`Tracker::epoch`] after every epoch's log line is
//! written. Names are shared by every tracker:
//!
//! | name | when | value |
//! |---|---|---|
//! | `train_step/<term>` | every optimizer step | the loss terms of the step's last batch (`total`, `unifrac`, `nucleotide`, `target`, `count`, …) |
//! | `learning_rate` | every optimizer step | the rate the step used |
//! | `train/<term>` | every epoch | the epoch's sample-weighted mean of each loss term |
//! | `validation/<name>` | every epoch | validation loss, its terms and metrics (as `metrics.jsonl`) |
//! | `epoch/<name>` | every epoch | `seconds`, `samples_per_second`, `data_wait_share`, `peak_rss_mib`, `loss_scale`, `skipped_steps` |
//! | `weights/<key>` | every epoch | histogram of each weight tensor (TensorBoard only) |
//!
//! Epoch values are logged at the optimizer step the epoch ended on, so that step and
//! epoch curves share one axis.

pub mod event;
pub mod mlflow;
pub mod tensorboard;
pub mod tfrecord;

use std::collections::BTreeMap;

use aam_model::weights::WeightSink;
use anyhow::Result;

use crate::epoch_record::EpochRecord;
use crate::options::TrainOptions;
use aam_config::CheckpointConfig;

/// What a tracker learns when an invocation of the training loop starts.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// The checkpoint's configuration (model, data settings, target).
    pub config: &'a CheckpointConfig,
    /// The training options.
    pub options: &'a TrainOptions,
    /// Optimizer steps already taken: 0 for a new run, the resumed step otherwise.
    pub first_step: usize,
    /// Whether the run continues from `resume.bin`.
    pub resumed: bool,
}

/// Receives a training run's values (see the module documentation for their names).
///
/// Errors returned by a tracker stop the training run: a tracker that can recover (a
/// network hiccup) warns and returns `Ok` instead.
pub trait Tracker {
    /// Called once per invocation, before the first epoch.
    fn start(&mut self, run: &RunStart<'_>) -> Result<()>;
    /// Called after optimizer step `step` (1-based, counted over the whole run), which used
    /// learning rate `lr`, with the loss terms of its last batch.
    fn step(&mut self, step: usize, lr: f64, losses: &BTreeMap<String, f64>) -> Result<()>;
    /// Whether [`Tracker::epoch`] wants the model's weights (copying them costs a pass
    /// over every parameter).
    fn wants_weights(&self) -> bool {
        false
    }
    /// Called after every epoch with its `metrics.jsonl` record and, when
    /// [`Tracker::wants_weights`], the model's weights (`(key, shape, values)`, f32).
    fn epoch(&mut self, record: &EpochRecord, weights: Option<&WeightSink>) -> Result<()>;
}

/// The tracker of a run without tracking.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTracking;

impl Tracker for NoTracking {
    fn start(&mut self, _: &RunStart<'_>) -> Result<()> {
        Ok(())
    }
    fn step(&mut self, _: usize, _: f64, _: &BTreeMap<String, f64>) -> Result<()> {
        Ok(())
    }
    fn epoch(&mut self, _: &EpochRecord, _: Option<&WeightSink>) -> Result<()> {
        Ok(())
    }
}

/// The trackers a run was asked for: TensorBoard event files and an MLflow run, each
/// optional, called in that order.
#[derive(Default)]
pub struct Tracking {
    /// `--tensorboard`.
    pub tensorboard: Option<tensorboard::TensorBoard>,
    /// `--mlflow-uri`.
    pub mlflow: Option<mlflow::Mlflow>,
}

impl Tracking {
    fn each(&mut self, mut f: impl FnMut(&mut dyn Tracker) -> Result<()>) -> Result<()> {
        if let Some(t) = &mut self.tensorboard {
            f(t)?;
        }
        if let Some(m) = &mut self.mlflow {
            f(m)?;
        }
        Ok(())
    }
}

impl Tracker for Tracking {
    fn start(&mut self, run: &RunStart<'_>) -> Result<()> {
        self.each(|t| t.start(run))
    }
    fn step(&mut self, step: usize, lr: f64, losses: &BTreeMap<String, f64>) -> Result<()> {
        self.each(|t| t.step(step, lr, losses))
    }
    fn wants_weights(&self) -> bool {
        self.tensorboard.as_ref().is_some_and(|t| t.wants_weights())
            || self.mlflow.as_ref().is_some_and(|m| m.wants_weights())
    }
    fn epoch(&mut self, record: &EpochRecord, weights: Option<&WeightSink>) -> Result<()> {
        self.each(|t| t.epoch(record, weights))
    }
}

/// The scalars of an epoch record, named as in the module documentation.
pub fn epoch_scalars(record: &EpochRecord) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    out.extend(record.train.iter().map(|(k, v)| (format!("train/{k}"), *v)));
    out.extend(
        record
            .validation
            .iter()
            .map(|(k, v)| (format!("validation/{k}"), *v)),
    );
    out.push(("epoch/seconds".into(), record.seconds));
    out.push(("epoch/samples_per_second".into(), record.samples_per_second));
    out.push(("epoch/data_wait_share".into(), record.data_wait_share));
    if let Some(m) = record.peak_rss_mib {
        out.push(("epoch/peak_rss_mib".into(), m));
    }
    if let Some(s) = record.loss_scale {
        out.push(("epoch/loss_scale".into(), s));
    }
    if let Some(s) = record.skipped_steps {
        out.push(("epoch/skipped_steps".into(), s as f64));
    }
    out
}

/// The scalars of an optimizer step, named as in the module documentation.
pub fn step_scalars(lr: f64, losses: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = losses
        .iter()
        .map(|(k, v)| (format!("train_step/{k}"), *v))
        .collect();
    out.push(("learning_rate".into(), lr));
    out
}
