//! Integrated gradients of a predictor's target output with respect to the ASV
//! embeddings (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
//! Networks", ICML, Eq. 1, approximated by the trapezoid rule as in their §3):
//!
//! `IG_i = (x_i − x'_i) · ∫₀¹ ∂f(x' + α(x − x'))/∂x_i dα`
//!
//! `x` is a sample's ASV embeddings (the ASV encoder's output, `[n_asv, D]`) and the
//! baseline `x'` is all zeros: the same ASV slots, each carrying no sequence
//! information (the sample transformer still sees the slot positions). The attribution
//! of an ASV is the sum of its row. Completeness (their Proposition 1): the attributions
//! sum to `f(x) − f(x')`, up to the quadrature error reported by
//! [`Attribution::completeness_gap`].

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::sequence_predictor::SequencePredictor;

/// Which scalar of the target head is attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributedOutput {
    /// Column `k` of `target_prediction` as it is (a regressor's standardized value).
    Raw(usize),
    /// The probability of class `k`, `exp` of the classifier's log-probability.
    Probability(usize),
}

/// Attributions of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// Attribution of each ASV slot, `[n_asv]` (0 at empty slots).
    pub per_asv: Vec<f64>,
    /// `f(x)`: the attributed output on the sample.
    pub output: f64,
    /// `f(x')`: the attributed output on the baseline.
    pub baseline_output: f64,
}

impl Attribution {
    /// `Σ attributions − (f(x) − f(x'))`: the quadrature error (0 for the exact integral).
    pub fn completeness_gap(&self) -> f64 {
        self.per_asv.iter().sum::<f64>() - (self.output - self.baseline_output)
    }

    /// [`Attribution::completeness_gap`] relative to `|f(x) − f(x')|` (∞ when the
    /// difference is 0 and the gap is not).
    pub fn relative_completeness_gap(&self) -> f64 {
        let gap = self.completeness_gap().abs();
        let delta = (self.output - self.baseline_output).abs();
        if gap == 0.0 {
            0.0
        } else {
            gap / delta
        }
    }
}

/// Integrated gradients of `output` for one sample.
///
/// `asv_embeddings`: `[n_asv, D]` f32 (the ASV encoder's output); `asv_mask`:
/// `[n_asv]` (1 where the slot holds an ASV); `steps`: trapezoid intervals (`steps + 1`
/// model evaluations, run `chunk` at a time). The model should have dropout 0: an
/// autodiff backend draws dropout.
pub fn integrated_gradients<B: AutodiffBackend>(
    model: &SequencePredictor<B>,
    asv_embeddings: Tensor<B::InnerBackend, 2>,
    asv_mask: Tensor<B::InnerBackend, 1>,
    output: AttributedOutput,
    steps: usize,
    chunk: usize,
) -> Attribution {
    let steps = steps.max(1);
    let chunk = chunk.max(1);
    let [s, d] = asv_embeddings.dims();
    let device = asv_embeddings.device();
    let x = asv_embeddings.reshape([1, s, d]);
    let mask = asv_mask.reshape([1, s]);
    let mut gradient_integral = Tensor::<B::InnerBackend, 3>::zeros([1, s, d], &device);
    let mut values = vec![0.0f64; steps + 1];
    let points: Vec<usize> = (0..=steps).collect();
    for part in points.chunks(chunk) {
        let k = part.len();
        let alphas: Vec<f32> = part.iter().map(|&i| i as f32 / steps as f32).collect();
        // Trapezoid weights: 1/steps inside, half at both ends.
        let weights: Vec<f32> = part
            .iter()
            .map(|&i| {
                let w = 1.0 / steps as f32;
                if i == 0 || i == steps {
                    w / 2.0
                } else {
                    w
                }
            })
            .collect();
        let alpha = Tensor::<B::InnerBackend, 1>::from_floats(alphas.as_slice(), &device)
            .reshape([k, 1, 1]);
        let scaled = x.clone().repeat_dim(0, k) * alpha;
        let input = Tensor::<B, 3>::from_inner(scaled).require_grad();
        let prediction = model.target_from_asv_embeddings(
            input.clone(),
            Tensor::from_inner(mask.clone().repeat_dim(0, k)),
        );
        let f = match output {
            AttributedOutput::Raw(c) => prediction.slice([0..k, c..c + 1]),
            AttributedOutput::Probability(c) => prediction.slice([0..k, c..c + 1]).exp(),
        }
        .reshape([k]);
        for (j, v) in f.clone().inner().into_data().iter::<f32>().enumerate() {
            values[part[j]] = f64::from(v);
        }
        let w = Tensor::<B, 1>::from_floats(weights.as_slice(), &f.device());
        let grads = (f * w).sum().backward();
        let g = input.grad(&grads).expect("the input requires a gradient");
        gradient_integral = gradient_integral + g.sum_dim(0);
    }
    let per_asv = (gradient_integral * x)
        .sum_dim(2)
        .reshape([s])
        .into_data()
        .iter::<f32>()
        .map(f64::from)
        .collect();
    Attribution {
        per_asv,
        output: values[steps],
        baseline_output: values[0],
    }
}
