//! The loss of a training step from the model's outputs, and the training metric of an
//! epoch from its predictions.

use std::collections::BTreeMap;

use aam_data::TargetKind;
use aam_model::ModelOutputs;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::batch_tensors::Tensors;
use crate::options::TrainOptions;
use crate::train_data::TrainData;
use aam_data::metrics;

use crate::losses;

/// The value of a one-element tensor.
fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    f64::from(t.into_scalar().elem::<f32>())
}

/// Index of the largest of `v` (the last on ties), 0 when empty: a classifier's class.
pub(crate) fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The training metric of an epoch from the target predictions `preds` (one row per
/// training sample, as trained) and their targets `truth` (`width` per sample, row-major):
/// `accuracy` for a classifier (argmax of the log-probabilities), `r2` for a regressor
/// (on the transformed scale; of a quantile regressor's middle level, [`median_column`];
/// the mean over the columns of a regressor of several); `None` without a target or
/// predictions.
pub(crate) fn training_metric(
    kind: Option<TargetKind>,
    preds: &[Vec<f32>],
    truth: &[f32],
    width: usize,
) -> Option<(&'static str, f64)> {
    let width = width.max(1);
    if preds.is_empty() || preds.len() * width != truth.len() {
        return None;
    }
    match kind? {
        TargetKind::Categorical => {
            let p: Vec<usize> = preds.iter().map(|v| argmax(v)).collect();
            let t: Vec<usize> = truth.iter().map(|&v| v as usize).collect();
            Some(("accuracy", metrics::accuracy(&p, &t)))
        }
        TargetKind::Numeric if width == 1 => {
            let p: Vec<f64> = preds.iter().map(|v| f64::from(median_column(v))).collect();
            let t: Vec<f64> = truth.iter().map(|&v| f64::from(v)).collect();
            Some(("r2", metrics::r2(&p, &t)))
        }
        TargetKind::Numeric => {
            let r2 = (0..width)
                .map(|j| {
                    let p: Vec<f64> = preds.iter().map(|v| f64::from(v[j])).collect();
                    let t: Vec<f64> = truth
                        .iter()
                        .skip(j)
                        .step_by(width)
                        .map(|&v| f64::from(v))
                        .collect();
                    metrics::r2(&p, &t)
                })
                .sum::<f64>();
            Some(("r2", r2 / width as f64))
        }
    }
}

/// A regressor's point prediction from its output row: the only value, or the middle
/// quantile level's (index `Q / 2`, the median of the default 0.1, 0.5, 0.9; the
/// reference's choice) for a quantile regressor.
pub(crate) fn median_column(row: &[f32]) -> f32 {
    row.get(row.len() / 2).copied().unwrap_or(f32::NAN)
}

/// The weighted total loss of a batch and its terms by name (`unifrac`, `nucleotide`,
/// `faith_pd`, `target`, `count`, `total`), from the model's outputs and the batch.
pub(crate) fn loss_terms<B: Backend>(
    out: &ModelOutputs<B>,
    t: &Tensors<B>,
    data: &TrainData,
    opts: &TrainOptions,
    class_weights: Option<&Tensor<B, 1>>,
) -> (Tensor<B, 1>, BTreeMap<String, f64>) {
    let device = out.embeddings.device();
    let mut total = Tensor::<B, 1>::zeros([1], &device);
    let mut parts = BTreeMap::new();
    let w = &opts.weights;
    let mut add = |name: &str, weight: f64, l: Tensor<B, 1>, total: &mut Tensor<B, 1>| {
        parts.insert(name.to_string(), scalar(l.clone()));
        *total = total.clone() + l.mul_scalar(weight);
    };
    if w.unifrac > 0.0 {
        if let Some(u) = &t.unifrac {
            add(
                "unifrac",
                w.unifrac,
                losses::unifrac_loss(out.embeddings.clone(), u.clone(), opts.temperature),
                &mut total,
            );
        }
    }
    if let (Some(logits), Some((targets, mask))) = (&out.nuc_predictions, &t.nuc_targets) {
        add(
            "nucleotide",
            w.nucleotide,
            losses::nucleotide_loss(logits.clone(), targets.clone(), mask.clone()),
            &mut total,
        );
    }
    if let (Some(pred), Some(f)) = (&out.base_prediction, &t.faith) {
        add(
            "faith_pd",
            w.faith_pd,
            (pred.clone() - f.clone()).powf_scalar(2.0).mean(),
            &mut total,
        );
    }
    if let (Some(pred), Some(y), Some(kind)) =
        (&out.target_prediction, &t.targets, data.target_kind)
    {
        // With per-sample weights: each sample's loss times its weight, then the mean
        // over the batch (the reference's form, not renormalised by Σw).
        let weights = t
            .sample_weights
            .as_ref()
            .map(|w| Tensor::<B, 1>::from_data(TensorData::new(w.clone(), [w.len()]), &device));
        let l = match kind {
            TargetKind::Numeric => {
                let b = pred.dims()[0];
                let k = data.dataset.target_width.max(1);
                let y = Tensor::<B, 2>::from_data(TensorData::new(y.clone(), [b, k]), &device);
                match weights {
                    None => losses::regression_loss(pred.clone(), y, &opts.regression),
                    Some(w) => {
                        (losses::regression_loss_per_sample(pred.clone(), y, &opts.regression) * w)
                            .mean()
                    }
                }
            }
            TargetKind::Categorical => {
                let y = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(y.iter().map(|&v| v as i64).collect::<Vec<_>>(), [y.len()]),
                    &device,
                );
                match weights {
                    None => losses::classification_loss(pred.clone(), y, class_weights.cloned()),
                    Some(w) => (losses::classification_loss_per_sample(
                        pred.clone(),
                        y,
                        class_weights.cloned(),
                    ) * w)
                        .mean(),
                }
            }
        };
        add("target", w.target, l, &mut total);
    }
    if w.count > 0.0 {
        if let Some(cp) = &out.count_prediction {
            add(
                "count",
                w.count,
                losses::count_loss(cp.clone(), t.counts.clone(), t.asv_mask.clone()),
                &mut total,
            );
        }
    }
    parts.insert("total".into(), scalar(total.clone()));
    (total, parts)
}
