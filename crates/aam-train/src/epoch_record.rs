//! What a run reports: one record per epoch (a line of `metrics.jsonl`, the trackers'
//! input, the summary line) and the summary of a finished run.

use std::collections::BTreeMap;

use serde::Serialize;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss and its terms.
    pub train: BTreeMap<String, f64>,
    /// Validation loss, its terms and metrics.
    pub validation: BTreeMap<String, f64>,
    /// Wall time of the epoch, s.
    pub seconds: f64,
    /// Training throughput, samples/s.
    pub samples_per_second: f64,
    /// Time the training steps waited for their batches, s (building them, when
    /// `--data-workers 0`).
    pub data_wait_seconds: f64,
    /// `data_wait_seconds` as a share of the epoch's training time (0–1).
    pub data_wait_share: f64,
    /// Peak resident memory of the process so far, MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
    /// fp16 loss scale at the end of the epoch (runs with loss scaling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// Optimizer steps skipped for overflowed gradients so far in the run (runs with
    /// loss scaling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<usize>,
}

/// Summary of a finished run.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Every epoch's record (this invocation only).
    pub epochs: Vec<EpochRecord>,
    /// Training loss of every optimizer step (this invocation only).
    pub step_losses: Vec<f64>,
    /// Best validation loss and its epoch.
    pub best: (f64, usize),
}

/// The line printed after each epoch; `improved` marks a new best validation loss.
pub(crate) fn summary_line(r: &EpochRecord, epochs: usize, improved: bool) -> String {
    let fmt = |m: &BTreeMap<String, f64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "epoch {}/{epochs} ({:.1} s, {:.1} samples/s, {:.1}% waiting for data{}{}) train: {} | validation: {}{}",
        r.epoch,
        r.seconds,
        r.samples_per_second,
        100.0 * r.data_wait_share,
        r.peak_rss_mib
            .map_or(String::new(), |m| format!(", peak RSS {m:.0} MiB")),
        match (r.loss_scale, r.skipped_steps) {
            (Some(scale), Some(skipped)) => format!(", loss scale {scale}, {skipped} overflowed steps skipped"),
            _ => String::new(),
        },
        fmt(&r.train),
        fmt(&r.validation),
        if improved { " *" } else { "" }
    )
}
