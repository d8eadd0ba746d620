//! Integrated gradients of a predictor's target output with respect to the ASV
//! embeddings (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
//! Networks", ICML, Eq. 1). The path integral is computed by Gauss–Legendre
//! quadrature on [0, 1] (their §3 uses a Riemann sum; Gauss–Legendre with n nodes is
//! exact for polynomials of degree 2n − 1, so far fewer model evaluations reach the
//! same completeness):
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

/// Gauss–Legendre nodes and weights on [0, 1] for `n` nodes (weights sum to 1):
/// Newton's method on the Legendre polynomial P_n from the Chebyshev guesses
/// `cos(π(i − 1/4)/(n + 1/2))` (Press et al., Numerical Recipes, 3rd ed., §4.6
/// `gauleg`).
pub fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0); n];
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_n(z) by the three-term recurrence, and P_n'(z).
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = ((2 * j + 1) as f64 * z * p2 - j as f64 * p3) / (j + 1) as f64;
            }
            derivative = n as f64 * (z * p1 - p2) / (z * z - 1.0);
            let step = p1 / derivative;
            z -= step;
            if step.abs() < 1e-15 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - z * z) * derivative * derivative);
        // Mapped from [−1, 1] to [0, 1]: α = (1 ± z)/2, weight w/2.
        points[i] = ((1.0 - z) / 2.0, w / 2.0);
        points[n - 1 - i] = ((1.0 + z) / 2.0, w / 2.0);
    }
    points
}

/// Integrated gradients of `output` for one sample.
///
/// `asv_embeddings`: `[n_asv, D]` f32 (the ASV encoder's output); `asv_mask`:
/// `[n_asv]` (1 where the slot holds an ASV); `counts`: the slots' read counts `[n_asv]`
/// f32, for a model with a count embedding (held fixed along the path: only the ASV
/// embeddings are attributed); `steps`: Gauss–Legendre nodes
/// (`steps + 2` model evaluations with the two ends, run `chunk` at a time). The model
/// should have dropout 0: an autodiff backend draws dropout.
pub fn integrated_gradients<B: AutodiffBackend>(
    model: &SequencePredictor<B>,
    asv_embeddings: Tensor<B::InnerBackend, 2>,
    asv_mask: Tensor<B::InnerBackend, 1>,
    counts: Option<Tensor<B::InnerBackend, 1>>,
    output: AttributedOutput,
    steps: usize,
    chunk: usize,
) -> Attribution {
    let chunk = chunk.max(1);
    let [s, d] = asv_embeddings.dims();
    let device = asv_embeddings.device();
    let x = asv_embeddings.reshape([1, s, d]);
    let mask = asv_mask.reshape([1, s]);
    let counts = counts.map(|c| c.reshape([1, s, 1]));
    let mut gradient_integral = Tensor::<B::InnerBackend, 3>::zeros([1, s, d], &device);
    // The baseline and the sample themselves (weight 0) give f(x') and f(x).
    let mut points = vec![(0.0, 0.0), (1.0, 0.0)];
    points.extend(gauss_legendre(steps.max(1)));
    let mut values = vec![0.0f64; points.len()];
    for (first, part) in points.chunks(chunk).enumerate() {
        let k = part.len();
        let alphas: Vec<f32> = part.iter().map(|p| p.0 as f32).collect();
        let weights: Vec<f32> = part.iter().map(|p| p.1 as f32).collect();
        let alpha = Tensor::<B::InnerBackend, 1>::from_floats(alphas.as_slice(), &device)
            .reshape([k, 1, 1]);
        let scaled = x.clone().repeat_dim(0, k) * alpha;
        let input = Tensor::<B, 3>::from_inner(scaled).require_grad();
        let prediction = model.target_from_asv_embeddings(
            input.clone(),
            Tensor::from_inner(mask.clone().repeat_dim(0, k)),
            counts
                .as_ref()
                .map(|c| Tensor::from_inner(c.clone().repeat_dim(0, k))),
        );
        let f = match output {
            AttributedOutput::Raw(c) => prediction.slice([0..k, c..c + 1]),
            AttributedOutput::Probability(c) => prediction.slice([0..k, c..c + 1]).exp(),
        }
        .reshape([k]);
        for (j, v) in f.clone().inner().into_data().iter::<f32>().enumerate() {
            values[first * chunk + j] = f64::from(v);
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
        output: values[1],
        baseline_output: values[0],
    }
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre;

    #[test]
    fn gauss_legendre_integrates_polynomials_of_degree_2n_minus_1_exactly() {
        for n in [1, 2, 5, 8, 64] {
            let points = gauss_legendre(n);
            let total: f64 = points.iter().map(|p| p.1).sum();
            assert!((total - 1.0).abs() < 1e-13, "n {n}: weights sum to {total}");
            assert!(points.iter().all(|p| p.0 > 0.0 && p.0 < 1.0));
            // ∫₀¹ α^k dα = 1/(k + 1) for every k ≤ 2n − 1.
            for k in 0..2 * n {
                let q: f64 = points.iter().map(|(a, w)| w * a.powi(k as i32)).sum();
                assert!(
                    (q - 1.0 / (k as f64 + 1.0)).abs() < 1e-12,
                    "n {n}, k {k}: {q}"
                );
            }
        }
        // Two nodes: (1 ∓ 1/√3)/2, weights 1/2 (hand-computed).
        let p = gauss_legendre(2);
        assert!((p[0].0 - (1.0 - 1.0 / 3f64.sqrt()) / 2.0).abs() < 1e-15);
        assert!((p[1].1 - 0.5).abs() < 1e-15);
    }
}
