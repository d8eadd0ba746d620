//! The tables of an evaluation (`aam evaluate`, `aam baseline`): metrics with their
//! bootstrap intervals, per-sample errors, the confusion matrix, and the correlation of
//! errors with depth, ASV count and numeric metadata, as tab-separated text.

use std::fmt::Write as _;

use crate::evaluation::{error_correlation, Bootstrap, MetricValue};
use crate::{Metadata, TargetKind};

/// One evaluated sample.
pub struct EvaluatedSample {
    /// Sample ID.
    pub sample: String,
    /// Regression: true value; classification: true class index.
    pub truth: f64,
    /// Regression: prediction; classification: predicted class index.
    pub predicted: f64,
    /// Regression: predicted − true; classification: 1 − probability of the true class.
    pub error: f64,
    /// Classification: class probabilities.
    pub probabilities: Vec<f64>,
    /// Reads of the sample.
    pub depth: f64,
    /// ASVs with reads in the sample.
    pub n_asv: f64,
}

/// `metrics.tsv`: `metric`, `value`, `ci95_low`, `ci95_high`, `n_samples`,
/// `bootstrap_resamples`, one row per metric.
pub fn metrics_tsv(metrics: &[MetricValue], n: usize, b: Bootstrap) -> String {
    let mut s =
        String::from("metric\tvalue\tci95_low\tci95_high\tn_samples\tbootstrap_resamples\n");
    for m in metrics {
        let _ = writeln!(
            s,
            "{}\t{}\t{}\t{}\t{n}\t{}",
            m.name, m.value, m.ci.0, m.ci.1, b.resamples
        );
    }
    s
}

/// `per_sample.tsv`: regression `sample_id`, `true`, `predicted`, `error`,
/// `absolute_error`, `depth`, `n_asv`; classification `true` and `predicted` labels,
/// `correct` and `probability_of_true` instead of the errors, then one
/// `probability_<class>` column per class (so that predictions of several folds can be
/// scored together, ROC-AUC included).
pub fn per_sample_tsv(rows: &[EvaluatedSample], kind: TargetKind, classes: &[String]) -> String {
    let mut s = String::new();
    match kind {
        TargetKind::Numeric => {
            s.push_str("sample_id\ttrue\tpredicted\terror\tabsolute_error\tdepth\tn_asv\n");
            for r in rows {
                let _ = writeln!(
                    s,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.sample,
                    r.truth,
                    r.predicted,
                    r.error,
                    r.error.abs(),
                    r.depth,
                    r.n_asv
                );
            }
        }
        TargetKind::Categorical => {
            s.push_str("sample_id\ttrue\tpredicted\tcorrect\tprobability_of_true\tdepth\tn_asv");
            for c in classes {
                let _ = write!(s, "\tprobability_{c}");
            }
            s.push('\n');
            for r in rows {
                let _ = write!(
                    s,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.sample,
                    classes[r.truth as usize],
                    classes[r.predicted as usize],
                    r.truth == r.predicted,
                    1.0 - r.error,
                    r.depth,
                    r.n_asv
                );
                for c in 0..classes.len() {
                    let p = r.probabilities.get(c).copied().unwrap_or(f64::NAN);
                    let _ = write!(s, "\t{p}");
                }
                s.push('\n');
            }
        }
    }
    s
}

/// `confusion_matrix.tsv`: true classes as rows, predicted classes as columns.
pub fn confusion_tsv(cm: &[Vec<usize>], classes: &[String]) -> String {
    let mut s = String::from("true\\predicted");
    for c in classes {
        let _ = write!(s, "\t{c}");
    }
    s.push('\n');
    for (c, row) in classes.iter().zip(cm) {
        s.push_str(c);
        for v in row {
            let _ = write!(s, "\t{v}");
        }
        s.push('\n');
    }
    s
}

/// Spearman ρ of the absolute error (regression) or of 1 − p(true class)
/// (classification) with depth, ASV count and every numeric metadata column that varies
/// over the evaluated samples (a constant column has no correlation to report).
pub fn covariate_correlations(
    rows: &[EvaluatedSample],
    metadata: &Metadata,
    target_column: &str,
) -> String {
    let errors: Vec<f64> = rows.iter().map(|r| r.error.abs()).collect();
    let ids: Vec<String> = rows.iter().map(|r| r.sample.clone()).collect();
    let mut s = String::from("covariate\tspearman_rho\tn_samples\n");
    let mut line = |name: &str, covariate: &[Option<f64>]| {
        let mut known = covariate.iter().flatten();
        let first = known.next().copied();
        if known.all(|&v| Some(v) == first) {
            return;
        }
        let (rho, n) = error_correlation(&errors, covariate);
        let _ = writeln!(s, "{name}\t{rho}\t{n}");
    };
    line(
        "sequencing_depth",
        &rows.iter().map(|r| Some(r.depth)).collect::<Vec<_>>(),
    );
    line(
        "asv_count",
        &rows.iter().map(|r| Some(r.n_asv)).collect::<Vec<_>>(),
    );
    for column in &metadata.columns {
        if column == target_column {
            continue;
        }
        // Columns that are not numbers throughout (or have no value here) are skipped.
        if let Ok(t) = metadata.target(column, &ids, None) {
            if t.kind == TargetKind::Numeric {
                line(&format!("metadata:{column}"), &t.values);
            }
        }
    }
    s
}
