//! Predictions and embeddings as tab-separated text (one row per sample, in table order).

use aam_data::TargetKind;

use crate::predict::Predictions;

fn write_rows(header: Vec<String>, rows: Vec<Vec<String>>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b'\t')
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail, and every row has the header's length.
    w.write_record(&header).expect("in-memory write");
    for r in rows {
        w.write_record(&r).expect("in-memory write");
    }
    w.into_inner().expect("in-memory write")
}

impl Predictions {
    /// The predictions table: `sample_id`, `prediction` (the value in original units, or
    /// the class label; a quantile regressor's middle level), for a quantile regressor
    /// `quantile_<τ>` per level, with several passes `prediction_std` (regression), for
    /// classifiers `probability_<class>` per class (a regressor of several target
    /// columns: `prediction_<column>` per column, with several passes
    /// `prediction_std_<column>`), then `n_asv`
    /// (ASVs given to the model) and `note` (why a sample has no prediction). An encoder
    /// has no prediction columns: its table lists `embedding_0…` instead.
    pub fn to_tsv(&self) -> Vec<u8> {
        let mut header = vec!["sample_id".to_string()];
        let several = !self.target_columns.is_empty();
        match self.target_kind {
            Some(TargetKind::Numeric) if several => {
                header.extend(
                    self.target_columns
                        .iter()
                        .map(|c| format!("prediction_{c}")),
                );
                if self.passes > 1 {
                    header.extend(
                        self.target_columns
                            .iter()
                            .map(|c| format!("prediction_std_{c}")),
                    );
                }
            }
            Some(TargetKind::Numeric) => {
                header.push("prediction".into());
                header.extend(self.quantile_levels.iter().map(|t| format!("quantile_{t}")));
                if self.passes > 1 {
                    header.push("prediction_std".into());
                }
            }
            Some(TargetKind::Categorical) => {
                header.push("prediction".into());
                header.extend(self.classes.iter().map(|c| format!("probability_{c}")));
            }
            None => header.extend(self.embedding_header()),
        }
        header.extend(["n_asv".to_string(), "note".to_string()]);
        let rows = self
            .samples
            .iter()
            .map(|p| {
                let mut r = vec![p.sample_id.clone()];
                let k = self.target_columns.len();
                match self.target_kind {
                    Some(TargetKind::Numeric) if several => {
                        r.extend(cells(&p.values, k));
                        if self.passes > 1 {
                            r.extend(cells(&p.values_std, k));
                        }
                    }
                    Some(TargetKind::Numeric) => {
                        r.push(p.value.map(fmt_f64).unwrap_or_default());
                        let q = self.quantile_levels.len();
                        match p.quantiles.len() == q {
                            true => r.extend(p.quantiles.iter().map(|&v| fmt_f64(v))),
                            false => r.extend(vec![String::new(); q]),
                        }
                        if self.passes > 1 {
                            r.push(p.value_std.map(fmt_f64).unwrap_or_default());
                        }
                    }
                    Some(TargetKind::Categorical) => {
                        r.push(p.label.clone().unwrap_or_default());
                        r.extend(padded(&p.probabilities, self.classes.len()));
                    }
                    None => r.extend(padded(&p.embedding, self.embedding_dim())),
                }
                r.push(p.n_asv.to_string());
                r.push(p.note.clone().unwrap_or_default());
                r
            })
            .collect();
        write_rows(header, rows)
    }

    /// The embeddings table: `sample_id`, `embedding_0` … `embedding_{D-1}` (empty cells
    /// for samples without a prediction).
    pub fn embeddings_tsv(&self) -> Vec<u8> {
        let mut header = vec!["sample_id".to_string()];
        header.extend(self.embedding_header());
        let d = self.embedding_dim();
        let rows = self
            .samples
            .iter()
            .map(|p| {
                let mut r = vec![p.sample_id.clone()];
                r.extend(padded(&p.embedding, d));
                r
            })
            .collect();
        write_rows(header, rows)
    }

    fn embedding_dim(&self) -> usize {
        self.samples
            .iter()
            .map(|p| p.embedding.len())
            .max()
            .unwrap_or(0)
    }

    fn embedding_header(&self) -> Vec<String> {
        (0..self.embedding_dim())
            .map(|i| format!("embedding_{i}"))
            .collect()
    }
}

/// `values` as text, or `n` empty cells when there are none.
fn padded(values: &[f32], n: usize) -> Vec<String> {
    if values.is_empty() {
        vec![String::new(); n]
    } else {
        values.iter().map(|v| v.to_string()).collect()
    }
}

/// `k` values as text, or `k` empty cells when they are not all there.
fn cells(values: &[f64], k: usize) -> Vec<String> {
    match values.len() == k {
        true => values.iter().map(|&v| fmt_f64(v)).collect(),
        false => vec![String::new(); k],
    }
}

/// Shortest text that reads back to the same value (f32 values use f32's own).
fn fmt_f64(v: f64) -> String {
    format!("{v}")
}
