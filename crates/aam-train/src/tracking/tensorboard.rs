//! TensorBoard event files (`--tensorboard`): every loss term and the learning rate per
//! optimizer step, every epoch's training means, validation loss and metrics, timings,
//! a histogram of each weight tensor, and the run's configuration as text.
//!
//! One file per invocation, `events.out.tfevents.<unix time>.<host>.<pid>.<n>.aam`, in
//! the log directory; `tensorboard --logdir DIR` reads them all. Every invocation starts
//! its file with a `SessionLog` START just past the step it starts from, so that
//! TensorBoard drops what a killed invocation logged past its last checkpoint (and, for a
//! new run in the same directory, everything the replaced run logged).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aam_model::weights::WeightSink;
use anyhow::{Context, Result};

use super::event::{event_bytes, EventBody, Histogram, SummaryValue};
use super::tfrecord::write_record;
use super::{epoch_scalars, step_scalars, RunStart, Tracker};
use crate::epoch_record::EpochRecord;

/// Buckets of every weight histogram.
const HISTOGRAM_BUCKETS: usize = 30;

/// Writes one TensorBoard event file.
pub struct TensorBoard {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TensorBoard {
    /// Creates the log directory `dir` (and its parents) and a new event file in it.
    /// Errors: the directory or file cannot be created (the message names it).
    pub fn create(dir: &Path) -> Result<TensorBoard> {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the TensorBoard log directory {}",
                dir.display()
            )
        })?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().replace(['/', '.'], "_"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let name = format!(
            "events.out.tfevents.{}.{host}.{}.{}.aam",
            now().floor() as u64,
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = File::create_new(&path).with_context(|| {
            format!(
                "cannot create the TensorBoard event file {}",
                path.display()
            )
        })?;
        let mut writer = TensorBoard {
            path,
            out: BufWriter::new(file),
        };
        writer.write(0, &EventBody::FileVersion)?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event at optimizer step `step`. Errors: the write fails.
    pub fn write(&mut self, step: usize, body: &EventBody) -> Result<()> {
        let bytes =
            event_bytes(now(), step as i64, body).context("cannot encode a TensorBoard event")?;
        write_record(&mut self.out, &bytes)
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    /// Writes buffered events to the file. Errors: the write fails.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    fn scalars(&mut self, step: usize, values: Vec<(String, f64)>) -> Result<()> {
        let values = values
            .into_iter()
            .map(|(k, v)| (k, SummaryValue::Scalar(v as f32)))
            .collect();
        self.write(step, &EventBody::Summary(values))
    }
}

/// Seconds since the Unix epoch (0 on a clock set before it).
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The configuration as the text dashboard shows it: Markdown with JSON code blocks.
fn config_text(run: &RunStart<'_>) -> Result<String> {
    Ok(format!(
        "### Checkpoint configuration\n\n```json\n{}\n```\n\n### Training options\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(run.config)?,
        serde_json::to_string_pretty(run.options)?
    ))
}

impl Tracker for TensorBoard {
    fn start(&mut self, run: &RunStart<'_>) -> Result<()> {
        // TensorBoard drops the events of this log directory at steps ≥ the START's step
        // written before it: a resumed run's steps past its last commit (whose epoch
        // values sit at `first_step`), a replaced run's (--overwrite) every step.
        self.write(run.first_step + 1, &EventBody::SessionStart)?;
        let text = config_text(run)?;
        self.write(
            run.first_step,
            &EventBody::Summary(vec![("config".into(), SummaryValue::Text(text))]),
        )?;
        self.flush()
    }

    fn step(&mut self, step: usize, lr: f64, losses: &BTreeMap<String, f64>) -> Result<()> {
        self.scalars(step, step_scalars(lr, losses))
    }

    fn wants_weights(&self) -> bool {
        true
    }

    fn epoch(&mut self, record: &EpochRecord, weights: Option<&WeightSink>) -> Result<()> {
        self.scalars(record.step, epoch_scalars(record))?;
        if let Some(weights) = weights {
            let histograms = weights
                .entries
                .iter()
                .filter_map(|(key, _, values)| {
                    let h = Histogram::of(values, HISTOGRAM_BUCKETS)?;
                    Some((format!("weights/{key}"), SummaryValue::Histogram(h)))
                })
                .collect();
            self.write(record.step, &EventBody::Summary(histograms))?;
        }
        self.flush()
    }
}
