//! Summary statistics used by `aam inspect`.

use std::collections::BTreeMap;

/// Quantiles of `values` at each `q` in [0, 1], by linear interpolation between
/// order statistics (numpy's default `linear` method). Empty input gives NaN.
pub fn quantiles(values: &[f64], qs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    qs.iter()
        .map(|&q| {
            if v.is_empty() {
                return f64::NAN;
            }
            let h = q * (v.len() - 1) as f64;
            let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
            v[lo] + (h - lo as f64) * (v[hi] - v[lo])
        })
        .collect()
}

/// Number of sequences of each length (in characters).
pub fn length_histogram(sequences: &[String]) -> BTreeMap<usize, usize> {
    let mut h = BTreeMap::new();
    for s in sequences {
        *h.entry(s.len()).or_insert(0) += 1;
    }
    h
}

/// Mean, minimum and maximum of the strict upper triangle of an `n × n` row-major matrix.
pub fn upper_triangle_stats(values: &[f64], n: usize) -> (f64, f64, f64) {
    let (mut sum, mut min, mut max, mut k) = (0.0, f64::INFINITY, f64::NEG_INFINITY, 0usize);
    for i in 0..n {
        for j in i + 1..n {
            let v = values[i * n + j];
            sum += v;
            min = min.min(v);
            max = max.max(v);
            k += 1;
        }
    }
    (if k > 0 { sum / k as f64 } else { f64::NAN }, min, max)
}
