//! Evaluation metrics on plain vectors (targets in original units).
//!
//! Formulas: R² = 1 − SS_res / SS_tot; Pearson r = cov / (σx σy); macro-F1 = mean over
//! classes of 2PR/(P+R) (a class never predicted nor present scores 0 and still counts);
//! ROC-AUC by the Mann–Whitney U statistic with average ranks for ties.

/// Mean absolute error.
pub fn mae(pred: &[f64], truth: &[f64]) -> f64 {
    pred.iter()
        .zip(truth)
        .map(|(p, t)| (p - t).abs())
        .sum::<f64>()
        / pred.len().max(1) as f64
}

/// Root mean squared error.
pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    (pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / pred.len().max(1) as f64)
        .sqrt()
}

/// Coefficient of determination; NaN when the truth is constant.
pub fn r2(pred: &[f64], truth: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len().max(1) as f64;
    let ss_tot: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let ss_res: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t).powi(2)).sum();
    if ss_tot == 0.0 {
        f64::NAN
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// Pearson correlation; NaN when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().max(1) as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// Fraction of equal labels.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / pred.len().max(1) as f64
}

/// Macro-averaged F1 over the classes of `0..n_classes` that occur in `truth` or `pred`
/// (scikit-learn's `f1_score(average="macro")`: a class neither present nor predicted
/// has no F1 and is not averaged).
pub fn macro_f1(pred: &[usize], truth: &[usize], n_classes: usize) -> f64 {
    let mut total = 0.0;
    let mut counted = 0usize;
    for c in 0..n_classes {
        let tp = pred
            .iter()
            .zip(truth)
            .filter(|(p, t)| **p == c && **t == c)
            .count() as f64;
        let fp = pred
            .iter()
            .zip(truth)
            .filter(|(p, t)| **p == c && **t != c)
            .count() as f64;
        let fn_ = pred
            .iter()
            .zip(truth)
            .filter(|(p, t)| **p != c && **t == c)
            .count() as f64;
        let denom = 2.0 * tp + fp + fn_;
        if denom > 0.0 {
            total += 2.0 * tp / denom;
            counted += 1;
        }
    }
    total / counted.max(1) as f64
}

/// Ranks 1..=n of `values` (ascending), ties given their average rank.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation: Pearson's r of the average ranks; NaN when either side is
/// constant.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Binary ROC-AUC of `score` (higher = positive) against `positive` labels; NaN when
/// one class is absent.
pub fn roc_auc(score: &[f64], positive: &[bool]) -> f64 {
    let ranks = average_ranks(score);
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// One-vs-rest ROC-AUC averaged over the classes present with both labels
/// (`probabilities[i][c]` for sample i, class c); for two classes, the AUC of class 1.
/// NaN when no class has positives and negatives.
pub fn macro_roc_auc(probabilities: &[Vec<f64>], truth: &[usize], n_classes: usize) -> f64 {
    let auc = |c: usize| {
        let score: Vec<f64> = probabilities.iter().map(|p| p[c]).collect();
        let positive: Vec<bool> = truth.iter().map(|&t| t == c).collect();
        roc_auc(&score, &positive)
    };
    if n_classes == 2 {
        return auc(1);
    }
    let aucs: Vec<f64> = (0..n_classes).map(auc).filter(|a| !a.is_nan()).collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// Counts `[truth][predicted]` over `n_classes` classes.
pub fn confusion_matrix(pred: &[usize], truth: &[usize], n_classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; n_classes]; n_classes];
    for (&p, &t) in pred.iter().zip(truth) {
        m[t][p] += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        let t = [1.0, 2.0, 3.0, 4.0];
        let p = [1.5, 2.0, 2.5, 5.0];
        assert!((mae(&p, &t) - 0.5).abs() < 1e-12);
        assert!((rmse(&p, &t) - (1.5f64 / 4.0).sqrt()).abs() < 1e-12);
        // SS_res = 0.25+0+0.25+1 = 1.5, SS_tot = 5.
        assert!((r2(&p, &t) - 0.7).abs() < 1e-12);
        assert!((pearson(&t, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&t, &[8.0, 6.0, 4.0, 2.0]) + 1.0).abs() < 1e-12);
        assert_eq!(accuracy(&[0, 1, 1, 2], &[0, 1, 2, 2]), 0.75);
        // Class 0: F1 1; class 1: tp1 fp1 fn0 → 2/3; class 2: tp1 fp0 fn1 → 2/3.
        assert!(
            (macro_f1(&[0, 1, 1, 2], &[0, 1, 2, 2], 3) - (1.0 + 4.0 / 3.0) / 3.0).abs() < 1e-12
        );
        // Scores: pos {0.8, 0.4}, neg {0.3, 0.4}: pairs (0.8>0.3, 0.8>0.4, 0.4>0.3, 0.4=0.4 → 0.5) = 3.5/4.
        assert!(
            (roc_auc(&[0.8, 0.4, 0.3, 0.4], &[true, true, false, false]) - 0.875).abs() < 1e-12
        );
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_nan());
        // Ranks of [3, 1, 3, 2]: 1 → 1, 2 → 2, the two 3s share (3 + 4) / 2.
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        // Monotone but not linear: Spearman 1, Pearson below 1.
        let cubic = [1.0, 8.0, 27.0, 64.0];
        assert!((spearman(&t, &cubic) - 1.0).abs() < 1e-12);
        assert!(pearson(&t, &cubic) < 0.99);
        // ρ of ranks [1,2,3,4] vs [2,1,4,3]: 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/60 = 0.6.
        assert!((spearman(&t, &[2.0, 1.0, 4.0, 3.0]) - 0.6).abs() < 1e-12);
        assert_eq!(
            confusion_matrix(&[0, 1, 1, 2], &[0, 1, 2, 2], 3),
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]
        );
        // Three classes, perfectly separated by their own probability: AUC 1 each.
        let probs = vec![
            vec![0.8, 0.1, 0.1],
            vec![0.1, 0.7, 0.2],
            vec![0.2, 0.2, 0.6],
        ];
        assert!((macro_roc_auc(&probs, &[0, 1, 2], 3) - 1.0).abs() < 1e-12);
        // Two classes: the AUC of class 1's probability.
        let probs = vec![vec![0.9, 0.1], vec![0.4, 0.6], vec![0.3, 0.7]];
        assert!((macro_roc_auc(&probs, &[0, 0, 1], 2) - 1.0).abs() < 1e-12);
    }
}
