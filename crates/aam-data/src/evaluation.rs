//! Evaluation of predictions against known targets (`aam evaluate`): every metric with a
//! percentile bootstrap confidence interval, and the rank correlation of the errors with
//! sample covariates (sequencing depth, ASV count, numeric metadata columns).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metrics;

/// One metric with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// Metric name (`mae`, `rmse`, `r2`, `pearson`, `spearman`, `accuracy`, `macro_f1`,
    /// `roc_auc`).
    pub name: &'static str,
    /// Value on all evaluated samples (NaN when undefined, e.g. R² of a constant truth).
    pub value: f64,
    /// Lower and upper bounds of the 95% percentile bootstrap interval (NaN when fewer
    /// than 2 resamples gave a finite value).
    pub ci: (f64, f64),
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    /// Resamples (0: no intervals).
    pub resamples: usize,
    /// Seed of the resampling (ChaCha8).
    pub seed: u64,
}

/// 95% percentile bootstrap interval of `metric` over `n` samples (Efron & Tibshirani
/// 1993, *An Introduction to the Bootstrap*, §13.3): `resamples` draws of n indices with
/// replacement, the metric of each, the 2.5th and 97.5th percentiles (linear
/// interpolation between order statistics). Non-finite resamples (e.g. a resample whose
/// truth is constant) are left out.
pub fn bootstrap_ci(n: usize, b: Bootstrap, metric: impl Fn(&[usize]) -> f64) -> (f64, f64) {
    if n == 0 || b.resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
    let mut idx = vec![0usize; n];
    let mut values: Vec<f64> = (0..b.resamples)
        .filter_map(|_| {
            idx.iter_mut().for_each(|i| *i = rng.random_range(0..n));
            Some(metric(&idx)).filter(|v| v.is_finite())
        })
        .collect();
    if values.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    (quantile(&values, 0.025), quantile(&values, 0.975))
}

/// Quantile `q` of sorted `values` with linear interpolation (Hyndman & Fan type 7, the
/// default of R and NumPy).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}

/// MAE, RMSE, R², Pearson and Spearman of `pred` against `truth` (same units).
pub fn regression_metrics(pred: &[f64], truth: &[f64], b: Bootstrap) -> Vec<MetricValue> {
    type Metric = fn(&[f64], &[f64]) -> f64;
    let all: [(&'static str, Metric); 5] = [
        ("mae", metrics::mae),
        ("rmse", metrics::rmse),
        ("r2", metrics::r2),
        ("pearson", |p, t| metrics::pearson(p, t)),
        ("spearman", |p, t| metrics::spearman(p, t)),
    ];
    all.iter()
        .map(|&(name, f)| MetricValue {
            name,
            value: f(pred, truth),
            ci: bootstrap_ci(pred.len(), b, |idx| f(&pick(pred, idx), &pick(truth, idx))),
        })
        .collect()
}

/// Accuracy, macro-F1 and ROC-AUC (one-vs-rest macro average; class 1's for two
/// classes) of predicted classes `pred` with `probabilities[i][c]` against `truth`.
pub fn classification_metrics(
    pred: &[usize],
    probabilities: &[Vec<f64>],
    truth: &[usize],
    n_classes: usize,
    b: Bootstrap,
) -> Vec<MetricValue> {
    let n = pred.len();
    let accuracy = |idx: &[usize]| metrics::accuracy(&pick(pred, idx), &pick(truth, idx));
    let f1 = |idx: &[usize]| metrics::macro_f1(&pick(pred, idx), &pick(truth, idx), n_classes);
    let auc = |idx: &[usize]| {
        let p: Vec<Vec<f64>> = idx.iter().map(|&i| probabilities[i].clone()).collect();
        metrics::macro_roc_auc(&p, &pick(truth, idx), n_classes)
    };
    let all_idx: Vec<usize> = (0..n).collect();
    let entry = |name, f: &dyn Fn(&[usize]) -> f64| MetricValue {
        name,
        value: f(&all_idx),
        ci: bootstrap_ci(n, b, f),
    };
    vec![
        entry("accuracy", &accuracy),
        entry("macro_f1", &f1),
        entry("roc_auc", &auc),
    ]
}

/// Spearman correlation of `errors` with a covariate over the samples where the
/// covariate is known, and that number of samples; NaN below 3 samples or when either
/// side is constant.
pub fn error_correlation(errors: &[f64], covariate: &[Option<f64>]) -> (f64, usize) {
    let (e, c): (Vec<f64>, Vec<f64>) = errors
        .iter()
        .zip(covariate)
        .filter_map(|(&e, c)| c.map(|c| (e, c)))
        .unzip();
    if e.len() < 3 {
        return (f64::NAN, e.len());
    }
    (metrics::spearman(&e, &c), e.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bootstrap = Bootstrap {
        resamples: 2000,
        seed: 1,
    };

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0.025, 0.5, 0.975]) = [1.075, 2.5, 3.925]
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile(&v, 0.025) - 1.075).abs() < 1e-12);
        assert!((quantile(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile(&v, 0.975) - 3.925).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_interval_of_the_mean_matches_the_normal_approximation() {
        // 200 values 0..199: mean 99.5, sd 57.88, standard error 4.09; the 95% interval
        // of the mean is about ±1.96·4.09 = ±8.0.
        let v: Vec<f64> = (0..200).map(f64::from).collect();
        let (lo, hi) = bootstrap_ci(v.len(), B, |idx| {
            idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64
        });
        assert!(
            (lo - 91.5).abs() < 1.5 && (hi - 107.5).abs() < 1.5,
            "{lo} {hi}"
        );
        // Same seed, same interval.
        let again = bootstrap_ci(v.len(), B, |idx| {
            idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64
        });
        assert_eq!((lo, hi), again);
    }

    #[test]
    fn regression_values_and_intervals() {
        let truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let pred = [1.5, 2.0, 2.5, 4.5, 5.0, 7.0];
        let m = regression_metrics(&pred, &truth, B);
        let get = |n: &str| m.iter().find(|v| v.name == n).unwrap().clone();
        // |errors| 0.5, 0, 0.5, 0.5, 0, 1 → MAE 2.5/6.
        assert!((get("mae").value - 2.5 / 6.0).abs() < 1e-12);
        assert!((get("rmse").value - (1.75f64 / 6.0).sqrt()).abs() < 1e-12);
        assert!((get("spearman").value - 1.0).abs() < 1e-12);
        for v in &m {
            assert!(v.ci.0 <= v.value && v.value <= v.ci.1, "{v:?}");
        }
    }

    #[test]
    fn classification_values() {
        let truth = [0, 0, 1, 1];
        let pred = [0, 1, 1, 1];
        let probs = vec![
            vec![0.9, 0.1],
            vec![0.4, 0.6],
            vec![0.3, 0.7],
            vec![0.2, 0.8],
        ];
        let m = classification_metrics(&pred, &probs, &truth, 2, B);
        assert_eq!(m[0].value, 0.75);
        // Class 0: tp1 fp0 fn1 → 2/3; class 1: tp2 fp1 fn0 → 4/5.
        assert!((m[1].value - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
        // Positives (0.7, 0.8) above both negatives (0.1, 0.6): AUC 1.
        assert_eq!(m[2].value, 1.0);
    }

    #[test]
    fn error_correlation_skips_unknown_covariates() {
        let errors = [0.1, 0.2, 0.3, 0.4, 9.0];
        let depth = [Some(10.0), Some(20.0), Some(30.0), Some(40.0), None];
        assert_eq!(error_correlation(&errors, &depth), (1.0, 4));
        assert!(error_correlation(&errors[..2], &depth[..2]).0.is_nan());
    }
}
