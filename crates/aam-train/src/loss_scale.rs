//! Dynamic loss scaling for fp16 mixed precision (Micikevicius et al. 2018, "Mixed
//! Precision Training", §3.2; the schedule of PyTorch `torch.amp.GradScaler`): the
//! loss is multiplied by a scale S before the backward pass so that small fp16
//! gradients do not flush to zero, the gradients are divided by S before the optimizer
//! step, and a step whose gradients overflowed (inf/NaN) is skipped and S halved; after
//! `growth_interval` clean steps in a row S doubles.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

/// Initial scale, 2¹⁶ (GradScaler's default).
pub const INITIAL_LOSS_SCALE: f64 = 65_536.0;
/// Clean steps before the scale doubles (GradScaler's default).
pub const GROWTH_INTERVAL: usize = 2_000;

/// The loss scale and its history; kept in `train_state.json` so `--resume` continues
/// with the same scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// Current scale S (a power of two).
    pub scale: f64,
    /// Clean steps in a row needed before S doubles.
    pub growth_interval: usize,
    /// Clean steps since the last overflow or growth.
    pub clean_steps: usize,
    /// Optimizer steps skipped because their gradients overflowed, over the whole run.
    pub skipped_steps: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler::new(INITIAL_LOSS_SCALE, GROWTH_INTERVAL)
    }
}

impl LossScaler {
    /// A scaler starting at `scale` that doubles after `growth_interval` clean steps.
    pub fn new(scale: f64, growth_interval: usize) -> Self {
        LossScaler {
            scale,
            growth_interval: growth_interval.max(1),
            clean_steps: 0,
            skipped_steps: 0,
        }
    }

    /// Records the outcome of one optimizer step: an overflow halves the scale (never
    /// below 2⁻²⁴, the smallest fp16 subnormal) and counts a skipped step; a clean step
    /// may double it (never above 2²⁴, so a scaled f32 loss stays exact enough).
    pub fn update(&mut self, overflowed: bool) {
        if overflowed {
            self.scale = (self.scale / 2.0).max(2f64.powi(-24));
            self.clean_steps = 0;
            self.skipped_steps += 1;
        } else {
            self.clean_steps += 1;
            if self.clean_steps >= self.growth_interval {
                self.scale = (self.scale * 2.0).min(2f64.powi(24));
                self.clean_steps = 0;
            }
        }
    }
}

impl LossScaler {
    /// Records an optimizer step skipped because the forward pass overflowed fp16: the
    /// step counts as skipped, but the scale is kept (it multiplies the loss after the
    /// forward pass, so lowering it cannot cure a forward overflow).
    pub fn skip_forward_overflow(&mut self) {
        self.clean_steps = 0;
        self.skipped_steps += 1;
    }
}

/// Divides every gradient of `model`'s parameters by `scale`; returns the unscaled
/// gradients and whether all of them are finite (false: skip this step).
pub fn unscale_gradients<B, M>(
    model: &M,
    grads: GradientsParams,
    scale: f64,
) -> (GradientsParams, bool)
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let mut visitor = Unscale::<B> {
        grads,
        inv_scale: 1.0 / scale,
        finite: true,
        _backend: std::marker::PhantomData,
    };
    model.visit(&mut visitor);
    (visitor.grads, visitor.finite)
}

struct Unscale<B: AutodiffBackend> {
    grads: GradientsParams,
    inv_scale: f64,
    finite: bool,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unscale<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let g = g.mul_scalar(self.inv_scale);
        // One boolean read per parameter tensor; a step is skipped on any inf or NaN.
        let all_finite = g
            .clone()
            .is_finite()
            .all()
            .into_data()
            .to_vec::<bool>()
            .is_ok_and(|v| v.iter().all(|&f| f));
        self.finite &= all_finite;
        self.grads.register(param.id, g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_halves_on_overflow_and_doubles_after_the_interval() {
        let mut s = LossScaler::new(1024.0, 3);
        s.update(true);
        assert_eq!((s.scale, s.skipped_steps, s.clean_steps), (512.0, 1, 0));
        s.update(false);
        s.update(false);
        assert_eq!(s.scale, 512.0);
        s.update(false);
        assert_eq!((s.scale, s.clean_steps), (1024.0, 0));
        let mut tiny = LossScaler::new(2f64.powi(-24), 1);
        tiny.update(true);
        assert_eq!(tiny.scale, 2f64.powi(-24));
    }
}
