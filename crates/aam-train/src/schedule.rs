//! Learning-rate schedules (reference `create_scheduler`, spec §5.3).
//!
//! `warmup-cosine`: linear warm-up from 0 to the base LR over `warmup` steps, then
//! cosine decay to 0 at `total` steps. `cosine`: cosine decay from the first step.
//! `one-cycle`: linear rise from base/25 to base over the first 30% of steps, then
//! cosine decay to base/1e4 (PyTorch `OneCycleLR` defaults). `plateau`: constant,
//! multiplied by `factor` (0.5) when the validation loss has not improved for
//! `patience` (5) epochs (PyTorch `ReduceLROnPlateau`, mode min, threshold 1e-4 rel).

use serde::{Deserialize, Serialize};

/// Which schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ScheduleKind {
    /// Linear warm-up then cosine decay (default).
    WarmupCosine,
    /// Cosine decay.
    Cosine,
    /// Reduce on validation-loss plateau.
    Plateau,
    /// One-cycle.
    OneCycle,
    /// Constant.
    Constant,
}

/// Learning-rate schedule with its plateau state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// Kind.
    pub kind: ScheduleKind,
    /// Base (peak) learning rate.
    pub base_lr: f64,
    /// Warm-up steps (warmup-cosine).
    pub warmup: usize,
    /// Total optimizer steps of the run.
    pub total: usize,
    /// Current plateau multiplier.
    pub plateau_scale: f64,
    /// Best validation loss seen (plateau).
    pub plateau_best: f64,
    /// Epochs without improvement (plateau).
    pub plateau_bad_epochs: usize,
}

impl Schedule {
    /// A schedule over `total` optimizer steps. `warmup = None` picks the reference
    /// default `min(10_000, 10% of total)`.
    pub fn new(kind: ScheduleKind, base_lr: f64, total: usize, warmup: Option<usize>) -> Self {
        let warmup = warmup.unwrap_or_else(|| (total / 10).min(10_000));
        Schedule {
            kind,
            base_lr,
            warmup,
            total: total.max(1),
            plateau_scale: 1.0,
            plateau_best: f64::MAX,
            plateau_bad_epochs: 0,
        }
    }

    /// Learning rate at optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        let cosine = |from: usize, lo: f64, hi: f64| {
            let span = (self.total.saturating_sub(from)).max(1) as f64;
            let p = ((step.saturating_sub(from)) as f64 / span).min(1.0);
            lo + 0.5 * (hi - lo) * (1.0 + (std::f64::consts::PI * p).cos())
        };
        match self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Plateau => self.base_lr * self.plateau_scale,
            ScheduleKind::Cosine => cosine(0, 0.0, self.base_lr),
            ScheduleKind::WarmupCosine => {
                if step < self.warmup {
                    self.base_lr * (step + 1) as f64 / self.warmup as f64
                } else {
                    cosine(self.warmup, 0.0, self.base_lr)
                }
            }
            ScheduleKind::OneCycle => {
                let up = ((self.total as f64) * 0.3).round().max(1.0) as usize;
                let start = self.base_lr / 25.0;
                if step < up {
                    start + (self.base_lr - start) * step as f64 / up as f64
                } else {
                    cosine(up, self.base_lr / 1e4 / 25.0, self.base_lr)
                }
            }
        }
    }

    /// Feeds an epoch's validation loss to the plateau logic.
    pub fn on_validation(&mut self, loss: f64) {
        if self.kind != ScheduleKind::Plateau {
            return;
        }
        if loss < self.plateau_best * (1.0 - 1e-4) {
            self.plateau_best = loss;
            self.plateau_bad_epochs = 0;
        } else {
            self.plateau_bad_epochs += 1;
            if self.plateau_bad_epochs > 5 {
                self.plateau_scale *= 0.5;
                self.plateau_bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_shape() {
        let s = Schedule::new(ScheduleKind::WarmupCosine, 1.0, 100, None);
        assert_eq!(s.warmup, 10);
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(55) - 0.5).abs() < 1e-12);
        assert!(s.lr(100).abs() < 1e-12);
    }

    #[test]
    fn plateau_halves_after_patience() {
        let mut s = Schedule::new(ScheduleKind::Plateau, 1.0, 10, None);
        s.on_validation(1.0);
        for _ in 0..6 {
            s.on_validation(1.0);
        }
        assert_eq!(s.lr(0), 0.5);
    }

    #[test]
    fn one_cycle_peaks_at_30_percent() {
        let s = Schedule::new(ScheduleKind::OneCycle, 1.0, 100, None);
        assert!((s.lr(0) - 0.04).abs() < 1e-12);
        assert!((s.lr(30) - 1.0).abs() < 1e-12);
        assert!(s.lr(99) < 0.01);
    }
}
