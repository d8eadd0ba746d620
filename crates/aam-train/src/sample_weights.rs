//! Per-sample weights of the target loss from one metadata category
//! (`--categorical-loss-weights`, spec §4.3): each training sample's loss is multiplied
//! by its category's weight before the mean over the batch (not renormalised by the sum
//! of the weights, as in the reference), so rare categories can count as much as common
//! ones. The validation loss stays unweighted, comparable between runs.

use std::collections::BTreeMap;

use ndarray::ArrayView1;

/// How the weights are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum CategoricalLossWeights {
    /// `n / (K · n_k)` for category `k`, with `n` the training samples of a known
    /// category, `K` the categories among them and `n_k` the training samples of `k`
    /// (sklearn's "balanced").
    Auto,
    /// A weight per label; unlisted labels weigh 1.
    Labels(BTreeMap<String, f64>),
}

impl std::str::FromStr for CategoricalLossWeights {
    type Err = String;

    /// `auto`, or a JSON object of label → positive weight (`{"gut": 2, "skin": 0.5}`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "auto" {
            return Ok(CategoricalLossWeights::Auto);
        }
        let map: BTreeMap<String, f64> = serde_json::from_str(s).map_err(|e| {
            format!("`{s}` is neither `auto` nor a JSON object of label → weight ({e}); e.g. '{{\"gut\": 2, \"skin\": 0.5}}'")
        })?;
        if let Some((label, w)) = map.iter().find(|(_, w)| !(**w > 0.0 && w.is_finite())) {
            return Err(format!(
                "the weight of '{label}' is {w}; weights must be positive numbers"
            ));
        }
        Ok(CategoricalLossWeights::Labels(map))
    }
}

impl CategoricalLossWeights {
    /// The weight of every sample and of every label: `labels` are the column's
    /// training labels (label `k` has index `k + 1`), `ids` each sample's category index
    /// (0: unknown, weight 1), `train` the training samples' positions.
    ///
    /// Returns the per-sample weights and the per-label weights (for the log), plus the
    /// labels of a [`CategoricalLossWeights::Labels`] map that no training sample has.
    pub fn weights(
        &self,
        labels: &[String],
        ids: ArrayView1<'_, i64>,
        train: &[usize],
    ) -> (Vec<f32>, BTreeMap<String, f64>, Vec<String>) {
        let mut per_label = vec![1.0f64; labels.len() + 1];
        let mut unused = Vec::new();
        match self {
            CategoricalLossWeights::Auto => {
                let mut counts = vec![0usize; labels.len() + 1];
                for &i in train {
                    counts[ids[i] as usize] += 1;
                }
                let n: usize = counts[1..].iter().sum();
                let k = counts[1..].iter().filter(|&&c| c > 0).count();
                for (w, &c) in per_label.iter_mut().zip(&counts).skip(1) {
                    if c > 0 {
                        *w = n as f64 / (k as f64 * c as f64);
                    }
                }
            }
            CategoricalLossWeights::Labels(map) => {
                for (label, &w) in map {
                    match labels.binary_search(label) {
                        Ok(k) => per_label[k + 1] = w,
                        Err(_) => unused.push(label.clone()),
                    }
                }
            }
        }
        let samples = ids
            .iter()
            .map(|&id| per_label[id as usize] as f32)
            .collect();
        let named = labels
            .iter()
            .cloned()
            .zip(per_label[1..].iter().copied())
            .collect();
        (samples, named, unused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn auto_and_listed_weights() {
        let labels = vec!["gut".to_string(), "skin".to_string()];
        // Samples: gut, gut, gut, skin, unknown, skin (the last is validation).
        let ids = array![1i64, 1, 1, 2, 0, 2];
        let train = [0, 1, 2, 3, 4];
        // n = 4 known training samples, K = 2: gut 4 / (2·3), skin 4 / (2·1).
        let (w, named, _) = CategoricalLossWeights::Auto.weights(&labels, ids.view(), &train);
        let g = (4.0 / 6.0) as f32;
        assert_eq!(w, vec![g, g, g, 2.0, 1.0, 2.0]);
        assert_eq!(named["skin"], 2.0);
        let listed: CategoricalLossWeights = r#"{"skin": 3, "volcano": 2}"#.parse().unwrap();
        let (w, _, unused) = listed.weights(&labels, ids.view(), &train);
        assert_eq!(w, vec![1.0, 1.0, 1.0, 3.0, 1.0, 3.0]);
        assert_eq!(unused, vec!["volcano".to_string()]);
        assert!("{\"gut\": -1}".parse::<CategoricalLossWeights>().is_err());
        assert!("balanced".parse::<CategoricalLossWeights>().is_err());
    }
}
