//! Out-of-fold metrics: with `--folds K`, every sample is held out exactly once, so the
//! held-out predictions of all folds (`<fold>/<task>/{evaluate,baseline}/per_sample.tsv`)
//! can be scored together. Where folds hold one or two subjects (8 mice in 5 folds), a
//! fold's ROC-AUC is undefined or rests on two subjects; the pooled value uses every
//! sample once. Each fold's model scores its own fold, so pooled ranks mix the scores of
//! K models (Forman & Scholz 2010, "Apples-to-apples in cross-validation studies",
//! SIGKDD Explorations 12(1)): it complements the per-fold mean, it does not replace it.

use std::path::Path;

use aam_data::metrics;
use anyhow::{Context, Result};

/// The held-out predictions of one step over the folds of one task.
#[derive(Default)]
struct Pooled {
    truth: Vec<String>,
    predicted: Vec<String>,
    /// Regression values (`true`, `predicted` as numbers).
    values: Vec<(f64, f64)>,
    /// Class names of the files' `probability_<class>` columns, in order of first
    /// appearance (the folds' models may differ in which classes they know).
    classes: Vec<String>,
    /// Per sample, (index into `classes`, probability); empty where the file has no
    /// probability columns (written before it did).
    probabilities: Vec<Vec<(usize, f64)>>,
}

/// The index of class `c` in `classes`, appended when new.
fn class_index(classes: &mut Vec<String>, c: &str) -> usize {
    classes.iter().position(|k| k == c).unwrap_or_else(|| {
        classes.push(c.to_string());
        classes.len() - 1
    })
}

impl Pooled {
    /// Adds the rows of one `per_sample.tsv`.
    fn add(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(t), Some(p)) = (col("true"), col("predicted")) else {
            anyhow::bail!("{}: no 'true' and 'predicted' columns", path.display());
        };
        // (column, class index) of each probability column.
        let columns: Vec<(usize, usize)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let c = h.strip_prefix("probability_").filter(|c| *c != "of_true")?;
                Some((i, class_index(&mut self.classes, c)))
            })
            .collect();
        for line in lines.filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(truth), Some(pred)) = (f.get(t), f.get(p)) else {
                anyhow::bail!(
                    "{}: a row with fewer columns than its header",
                    path.display()
                );
            };
            let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            self.truth.push(truth.to_string());
            self.predicted.push(pred.to_string());
            self.values.push((num(truth), num(pred)));
            self.probabilities.push(
                columns
                    .iter()
                    .filter_map(|&(i, c)| f.get(i).map(|v| (c, num(v))))
                    .collect(),
            );
        }
        Ok(())
    }

    /// `[accuracy, macro_f1, roc_auc]` (classification) or `[r2, mae, spearman]`.
    /// ROC-AUC is NaN when the files hold no class probabilities (written before they
    /// did).
    fn metrics(&self, categorical: bool) -> [f64; 3] {
        if !categorical {
            let (truth, pred): (Vec<f64>, Vec<f64>) = self.values.iter().copied().unzip();
            return [
                metrics::r2(&pred, &truth),
                metrics::mae(&pred, &truth),
                metrics::spearman(&pred, &truth),
            ];
        }
        // The probability columns' classes, then any label no model gave a column.
        let mut classes = self.classes.clone();
        let truth: Vec<usize> = self
            .truth
            .iter()
            .map(|c| class_index(&mut classes, c))
            .collect();
        let pred: Vec<usize> = self
            .predicted
            .iter()
            .map(|c| class_index(&mut classes, c))
            .collect();
        let n = classes.len();
        let roc = if self.probabilities.iter().all(|p| !p.is_empty()) {
            let probs: Vec<Vec<f64>> = self
                .probabilities
                .iter()
                .map(|p| {
                    let mut row = vec![0.0; n];
                    for &(c, v) in p {
                        row[c] = v;
                    }
                    row
                })
                .collect();
            metrics::macro_roc_auc(&probs, &truth, n)
        } else {
            f64::NAN
        };
        [
            metrics::accuracy(&pred, &truth),
            metrics::macro_f1(&pred, &truth, n),
            roc,
        ]
    }
}

/// One pooled metric of one task: the model's and the forest's value over every
/// held-out sample of every fold.
pub struct PooledRow {
    /// Dataset name.
    pub dataset: &'static str,
    /// Target column.
    pub target: &'static str,
    /// `accuracy`, `macro_f1`, `roc_auc`, or `r2`, `mae`, `spearman`.
    pub metric: &'static str,
    /// Held-out samples scored (all folds).
    pub n: usize,
    /// Folds pooled.
    pub folds: usize,
    /// AAM's value.
    pub aam: f64,
    /// The random forest's value.
    pub forest: f64,
}

/// The pooled metrics of every task run on more than one fold, in run order.
///
/// Errors: a fold's `per_sample.tsv` that cannot be read or lacks `true`/`predicted`.
pub fn pooled_rows(runs: &[super::TaskRun]) -> Result<Vec<PooledRow>> {
    let mut out = Vec::new();
    let mut done: Vec<(&str, &str)> = Vec::new();
    for run in runs {
        let key = (run.dataset.name, run.task.column);
        if run.fold.is_none() || done.contains(&key) {
            continue;
        }
        done.push(key);
        let folds: Vec<&super::TaskRun> = runs
            .iter()
            .filter(|r| (r.dataset.name, r.task.column) == key && r.fold.is_some())
            .collect();
        if folds.len() < 2 {
            continue;
        }
        let (mut model, mut forest) = (Pooled::default(), Pooled::default());
        for r in &folds {
            model.add(&r.dir.join("evaluate").join("per_sample.tsv"))?;
            forest.add(&r.dir.join("baseline").join("per_sample.tsv"))?;
        }
        let categorical = run.task.kind == "categorical";
        let (a, f) = (model.metrics(categorical), forest.metrics(categorical));
        let names = super::report::headline_metrics(run.task.kind);
        for (i, metric) in names.into_iter().enumerate() {
            out.push(PooledRow {
                dataset: key.0,
                target: key.1,
                metric,
                n: model.truth.len(),
                folds: folds.len(),
                aam: a[i],
                forest: f[i],
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two folds of a binary task written as `aam evaluate` writes them, scored by hand:
    /// pooled, 3 of 4 right; F1(Air) = 2/3, F1(IHC) = 4/5; ROC-AUC of IHC over the 4
    /// samples = 3 of 4 (positive, negative) pairs ranked right.
    #[test]
    fn pooled_classification_metrics_equal_hand_computed_values() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        };
        let h = "sample_id\ttrue\tpredicted\tcorrect\tprobability_of_true\tdepth\tn_asv\tprobability_Air\tprobability_IHC\n";
        let a = write("a.tsv", &format!("{h}s1\tAir\tAir\ttrue\t0.9\t1\t1\t0.9\t0.1\ns2\tIHC\tIHC\ttrue\t0.6\t1\t1\t0.4\t0.6\n"));
        let b = write("b.tsv", &format!("{h}s3\tAir\tIHC\tfalse\t0.3\t1\t1\t0.3\t0.7\ns4\tIHC\tIHC\ttrue\t0.8\t1\t1\t0.2\t0.8\n"));
        let mut p = Pooled::default();
        p.add(&a).unwrap();
        p.add(&b).unwrap();
        let [acc, f1, auc] = p.metrics(true);
        assert!((acc - 0.75).abs() < 1e-12);
        assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12, "{f1}");
        // IHC scores: s2 0.6, s4 0.8 against Air's s1 0.1, s3 0.7: pairs (0.6 > 0.1),
        // (0.6 < 0.7), (0.8 > 0.1), (0.8 > 0.7) → 3/4.
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
        let r = write("r.tsv", "sample_id\ttrue\tpredicted\terror\tabsolute_error\tdepth\tn_asv\ns1\t1\t2\t1\t1\t1\t1\ns2\t3\t3\t0\t0\t1\t1\ns3\t5\t4\t-1\t1\t1\t1\n");
        let mut q = Pooled::default();
        q.add(&r).unwrap();
        let [r2, mae, rho] = q.metrics(false);
        // SS_res = 1 + 0 + 1 = 2, SS_tot = 4 + 0 + 4 = 8.
        assert!(
            (r2 - 0.75).abs() < 1e-12
                && (mae - 2.0 / 3.0).abs() < 1e-12
                && (rho - 1.0).abs() < 1e-12
        );
    }
}
