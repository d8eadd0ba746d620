//! Losses (spec §4, with the reference bugs fixed).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::TensorData;

use crate::regression_loss::{LossType, RegressionLoss};

/// Predicted UniFrac distances `tanh(‖e_i − e_j‖ / τ)`, `[batch, batch]`, from sample
/// embeddings `[batch, D]`. (The reference's `sigmoid` variant only spans (0.5, 0.55] at
/// initialisation and is a bug; `tanh` spans [0, 1).)
pub fn predicted_distances<B: Backend>(embeddings: Tensor<B, 2>, temperature: f64) -> Tensor<B, 2> {
    let [b, d] = embeddings.dims();
    let diff = embeddings.clone().reshape([b, 1, d]) - embeddings.reshape([1, b, d]);
    // The epsilon keeps the gradient of the square root finite on the diagonal.
    let dist = diff
        .powf_scalar(2.0)
        .sum_dim(2)
        .reshape([b, b])
        .add_scalar(1e-12)
        .sqrt();
    dist.div_scalar(temperature).tanh()
}

/// UniFrac loss: MSE over the strict upper triangle between `truth` `[batch, batch]`
/// and [`predicted_distances`]. Returns a scalar `[1]` (0 for a batch of one).
pub fn unifrac_loss<B: Backend>(
    embeddings: Tensor<B, 2>,
    truth: Tensor<B, 2>,
    temperature: f64,
) -> Tensor<B, 1> {
    let [b, _] = embeddings.dims();
    let device = embeddings.device();
    let pred = predicted_distances(embeddings, temperature);
    let upper = Tensor::<B, 2>::ones([b, b], &device).triu(1);
    let pairs = (b * b.saturating_sub(1) / 2).max(1) as f64;
    ((pred - truth).powf_scalar(2.0) * upper)
        .sum()
        .div_scalar(pairs)
}

/// Masked-nucleotide cross-entropy: `logits` `[batch, n_asv, L, V]`, `targets` int
/// `[batch, n_asv, L]` and `mask` `[batch, n_asv, L]` (1 where masked). Mean over masked
/// positions (0 when none is masked).
pub fn nucleotide_loss<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    mask: Tensor<B, 3>,
) -> Tensor<B, 1> {
    let [b, s, l, v] = logits.dims();
    let n = b * s * l;
    let lp = log_softmax(logits.reshape([n, v]), 1).gather(1, targets.reshape([n, 1]));
    let mask = mask.reshape([n, 1]);
    let count = mask.clone().sum().clamp_min(1.0);
    (lp * mask).sum().neg() / count
}

/// Accuracy of the nucleotide predictions at masked positions: `(correct, total)`.
pub fn nucleotide_hits<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    mask: Tensor<B, 3>,
) -> (f64, f64) {
    let pred = logits.argmax(3).squeeze_dim::<3>(3);
    let hit = pred.equal(targets).float() * mask.clone();
    (
        f64::from(hit.sum().into_scalar().elem::<f32>()),
        f64::from(mask.sum().into_scalar().elem::<f32>()),
    )
}

/// Regression loss on transformed targets (spec §4.3; see [`LossType`]): `pred`
/// `[batch, width]`, `truth` `[batch, n_targets]`: width 1 and one target, one column
/// per quantile level of a quantile loss (one target), or one column per target of a
/// regressor of several metadata columns (each with its loss from `per_column`). A mean
/// over every element.
pub fn regression_loss<B: Backend>(
    pred: Tensor<B, 2>,
    truth: Tensor<B, 2>,
    loss: &RegressionLoss,
) -> Tensor<B, 1> {
    regression_loss_per_sample(pred, truth, loss).mean()
}

/// [`regression_loss`] of each sample, `[batch]` (its mean over the quantile levels or
/// the target columns).
pub fn regression_loss_per_sample<B: Backend>(
    pred: Tensor<B, 2>,
    truth: Tensor<B, 2>,
    loss: &RegressionLoss,
) -> Tensor<B, 1> {
    let [b, w] = pred.dims();
    // e = y − ŷ, [batch, width]; one target spreads over the quantile levels.
    let e = match truth.dims()[1] {
        1 => truth.expand([b, w]),
        _ => truth,
    } - pred;
    let per_element = match loss.per_column.as_slice() {
        [] => element_loss(loss.kind, e, loss),
        kinds => Tensor::cat(
            kinds
                .iter()
                .enumerate()
                .map(|(j, &kind)| element_loss(kind, e.clone().slice([0..b, j..j + 1]), loss))
                .collect(),
            1,
        ),
    };
    per_element.mean_dim(1).reshape([b])
}

/// The loss of each element of `e = y − ŷ` `[batch, width]` (the quantile levels along
/// the width for a quantile loss).
fn element_loss<B: Backend>(
    kind: LossType,
    e: Tensor<B, 2>,
    loss: &RegressionLoss,
) -> Tensor<B, 2> {
    let [b, w] = e.dims();
    match kind {
        LossType::Mse => e.powf_scalar(2.0),
        LossType::Mae => e.abs(),
        LossType::Huber => {
            let a = e.abs();
            let quad = a.clone().clamp_max(1.0);
            quad.clone().powf_scalar(2.0).mul_scalar(0.5) + (a - quad)
        }
        LossType::Quantile => {
            let tau = Tensor::<B, 1>::from_data(
                TensorData::new(
                    loss.quantiles.iter().map(|&t| t as f32).collect::<Vec<_>>(),
                    [loss.quantiles.len()],
                ),
                &e.device(),
            )
            .reshape([1, w])
            .expand([b, w]);
            (e.clone() * tau.clone()).max_pair(e * tau.sub_scalar(1.0))
        }
        LossType::Asymmetric => {
            let under = e.clone().clamp_min(0.0).mul_scalar(loss.under_penalty);
            let over = e.neg().clamp_min(0.0).mul_scalar(loss.over_penalty);
            under + over
        }
    }
}

/// Each sample's NLL `[batch]`: `−log p_y` of log-probabilities `[batch, C]` against
/// class indices `[batch]`, times the class weight `w_y` when given.
pub fn classification_loss_per_sample<B: Backend>(
    log_probs: Tensor<B, 2>,
    classes: Tensor<B, 1, Int>,
    weights: Option<Tensor<B, 1>>,
) -> Tensor<B, 1> {
    let [b, _] = log_probs.dims();
    let idx = classes.reshape([b, 1]);
    let nll = log_probs.gather(1, idx.clone()).reshape([b]).neg();
    match weights {
        None => nll,
        Some(w) => nll * w.select(0, idx.reshape([b])),
    }
}

/// Classification loss: weighted NLL of log-probabilities `[batch, C]` against class
/// indices `[batch]` (PyTorch `NLLLoss(weight)`: Σ w_y·(−lp_y) / Σ w_y).
pub fn classification_loss<B: Backend>(
    log_probs: Tensor<B, 2>,
    classes: Tensor<B, 1, Int>,
    weights: Option<Tensor<B, 1>>,
) -> Tensor<B, 1> {
    let [b, _] = log_probs.dims();
    let idx = classes.reshape([b, 1]);
    let lp = log_probs.gather(1, idx.clone()).reshape([b]);
    match weights {
        None => lp.mean().neg(),
        Some(w) => {
            let wy = w.select(0, idx.reshape([b]));
            (lp * wy.clone()).sum().neg() / wy.sum()
        }
    }
}

/// Count loss: MSE on valid ASV slots between `count_prediction` `[batch, n_asv, 1]` and
/// `log1p` of each slot's relative abundance, from raw `counts` `[batch, n_asv]` and
/// `mask` `[batch, n_asv]`.
pub fn count_loss<B: Backend>(
    count_prediction: Tensor<B, 3>,
    counts: Tensor<B, 2>,
    mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [b, s, _] = count_prediction.dims();
    let totals = counts.clone().sum_dim(1).clamp_min(1.0);
    let target = (counts / totals).add_scalar(1.0).log();
    let se = (count_prediction.reshape([b, s]) - target).powf_scalar(2.0) * mask.clone();
    se.sum() / mask.sum().clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = burn::backend::NdArray<f32>;

    fn t2(v: Vec<f32>, s: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v, s), &Default::default())
    }

    fn scalar(t: Tensor<B, 1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn unifrac_loss_hand_computed() {
        // e0=(0,0), e1=(3,4), e2=(0,0): d01=5, d02=0, d12=5; τ=10 → tanh(0.5)=0.46212.
        let e = t2(vec![0., 0., 3., 4., 0., 0.], [3, 2]);
        let truth = t2(vec![0., 0.5, 0.1, 0.5, 0., 0.4, 0.1, 0.4, 0.], [3, 3]);
        let th = 0.5f32.tanh();
        let expect = ((th - 0.5).powi(2) + (0.0f32 - 0.1).powi(2) + (th - 0.4).powi(2)) / 3.0;
        assert!((scalar(unifrac_loss(e, truth, 10.0)) - expect).abs() < 1e-6);
    }

    #[test]
    fn regression_losses_hand_computed() {
        let p = t2(vec![0.5, 3.0], [2, 1]);
        let y = t2(vec![0.0, 0.0], [2, 1]);
        let of = |kind: LossType| RegressionLoss {
            kind,
            ..RegressionLoss::default()
        };
        let l = |loss: RegressionLoss| scalar(regression_loss(p.clone(), y.clone(), &loss));
        assert!((l(of(LossType::Mse)) - (0.25 + 9.0) / 2.0).abs() < 1e-6);
        assert!((l(of(LossType::Mae)) - (0.5 + 3.0) / 2.0).abs() < 1e-6);
        // Huber: 0.5·0.25 = 0.125 and 3 − 0.5 = 2.5.
        assert!((l(of(LossType::Huber)) - (0.125 + 2.5) / 2.0).abs() < 1e-6);
        // Both over-predict (ŷ > y): over_penalty 3 · (0.5 + 3) / 2.
        let asym = RegressionLoss::new(LossType::Asymmetric, None, 3.0, 0.5).unwrap();
        assert!((l(asym.clone()) - 3.0 * 3.5 / 2.0).abs() < 1e-6);
        let under = scalar(regression_loss(p.clone().neg(), y.clone(), &asym));
        assert!((under - 0.5 * 3.5 / 2.0).abs() < 1e-6);
        // Pinball, τ = 0.1 and 0.9, ŷ = [[1, 2], [−1, 0]], y = [0, 0]:
        // e = [[−1, −2], [1, 0]] → [[0.9, 0.2], [0.1, 0]] → mean 0.3.
        let q = RegressionLoss::new(LossType::Quantile, Some(vec![0.1, 0.9]), 1.0, 1.0).unwrap();
        let pq = t2(vec![1.0, 2.0, -1.0, 0.0], [2, 2]);
        assert!((scalar(regression_loss(pq, y, &q)) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn per_sample_losses_hand_computed() {
        // Huber of e = [0.5, −3] is [0.125, 2.5]; pinball at τ = 0.1, 0.9 of
        // e = [[−1, −2], [1, 0]] averages [0.9, 0.2] and [0.1, 0] per sample.
        let y = t2(vec![0.0, 0.0], [2, 1]);
        let huber = RegressionLoss {
            kind: LossType::Huber,
            ..RegressionLoss::default()
        };
        let h = regression_loss_per_sample(t2(vec![-0.5, 3.0], [2, 1]), y.clone(), &huber);
        assert_eq!(h.into_data().to_vec::<f32>().unwrap(), vec![0.125, 2.5]);
        let q = RegressionLoss::new(LossType::Quantile, Some(vec![0.1, 0.9]), 1.0, 1.0).unwrap();
        let p = regression_loss_per_sample(t2(vec![1.0, 2.0, -1.0, 0.0], [2, 2]), y, &q);
        let p = p.into_data().to_vec::<f32>().unwrap();
        assert!(
            (p[0] - 0.55).abs() < 1e-6 && (p[1] - 0.05).abs() < 1e-6,
            "{p:?}"
        );
        // NLL per sample, times the class weight of its class.
        let lp = t2(
            vec![(0.25f32).ln(), (0.75f32).ln(), (0.5f32).ln(), (0.5f32).ln()],
            [2, 2],
        );
        let cls: Tensor<B, 1, Int> =
            Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &Default::default());
        let w: Tensor<B, 1> =
            Tensor::from_data(TensorData::new(vec![3.0f32, 1.0], [2]), &Default::default());
        let n = classification_loss_per_sample(lp, cls, Some(w))
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!((n[0] + (0.75f32).ln()).abs() < 1e-6 && (n[1] + 3.0 * (0.5f32).ln()).abs() < 1e-6);
    }

    #[test]
    fn weighted_nll() {
        let lp = t2(
            vec![(0.25f32).ln(), (0.75f32).ln(), (0.5f32).ln(), (0.5f32).ln()],
            [2, 2],
        );
        let y: Tensor<B, 1, Int> =
            Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &Default::default());
        let plain = -((0.75f32).ln() + (0.5f32).ln()) / 2.0;
        assert!((scalar(classification_loss(lp.clone(), y.clone(), None)) - plain).abs() < 1e-6);
        let w: Tensor<B, 1> =
            Tensor::from_data(TensorData::new(vec![3.0f32, 1.0], [2]), &Default::default());
        let weighted = -(1.0 * (0.75f32).ln() + 3.0 * (0.5f32).ln()) / 4.0;
        assert!((scalar(classification_loss(lp, y, Some(w))) - weighted).abs() < 1e-6);
    }

    #[test]
    fn count_loss_on_valid_slots_only() {
        let pred: Tensor<B, 3> = Tensor::from_data(
            TensorData::new(vec![0.0f32, 0.0, 7.0], [1, 3, 1]),
            &Default::default(),
        );
        let counts = t2(vec![1.0, 3.0, 0.0], [1, 3]);
        let mask = t2(vec![1.0, 1.0, 0.0], [1, 3]);
        let expect = ((1.25f32).ln().powi(2) + (1.75f32).ln().powi(2)) / 2.0;
        assert!((scalar(count_loss(pred, counts, mask)) - expect).abs() < 1e-6);
    }

    #[test]
    fn several_targets_each_with_its_loss() {
        // ŷ = [[0.5, 3], [−2, 0]], y = 0: mse on column 0, mae on column 1 gives
        // per sample (0.25 + 3) / 2 = 1.625 and (4 + 0) / 2 = 2; mse on both gives
        // (0.25 + 9) / 2 and (4 + 0) / 2.
        let p = t2(vec![0.5, 3.0, -2.0, 0.0], [2, 2]);
        let y = t2(vec![0.0; 4], [2, 2]);
        let config = crate::LossConfig::parse(r#"{"1": "mae", "b": "huber", "a": "mse"}"#).unwrap();
        let per_column = config
            .resolve(&["a".into(), "b".into()], LossType::Huber)
            .unwrap();
        // The index key "1" beats the name key "b".
        assert_eq!(per_column, [LossType::Mse, LossType::Mae]);
        let mixed = RegressionLoss {
            per_column,
            ..RegressionLoss::default()
        };
        let got = regression_loss_per_sample(p.clone(), y.clone(), &mixed);
        assert_eq!(got.into_data().to_vec::<f32>().unwrap(), vec![1.625, 2.0]);
        let mse = regression_loss_per_sample(p, y, &RegressionLoss::default());
        assert_eq!(mse.into_data().to_vec::<f32>().unwrap(), vec![4.625, 2.0]);
    }

    #[test]
    fn loss_config_refuses_what_it_cannot_apply() {
        let cols = ["a".to_string(), "b".to_string()];
        let c = crate::LossConfig::parse(r#"{"c": "mse"}"#).unwrap();
        let e = c.resolve(&cols, LossType::Mse).unwrap_err();
        assert!(e.contains("'c'") && e.contains("a, b"), "{e}");
        let c = crate::LossConfig::parse(r#"{"2": "mse"}"#).unwrap();
        assert!(c.resolve(&cols, LossType::Mse).is_err());
        let c = crate::LossConfig::parse(r#"{"0": "mse"}"#).unwrap();
        assert!(c.resolve(&cols, LossType::Quantile).is_err());
        assert_eq!(
            c.resolve(&cols, LossType::Mae).unwrap(),
            [LossType::Mse, LossType::Mae]
        );
        let e = crate::LossConfig::parse(r#"{"0": "quantile"}"#).unwrap_err();
        assert!(e.contains("mse, mae or huber"), "{e}");
        assert!(crate::LossConfig::parse("[1]").is_err());
    }
}
