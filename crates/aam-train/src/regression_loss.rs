//! The target loss of a regressor (`--loss-type`, spec §4.3) and the metric that picks
//! the best epoch (`--best-metric`): options declared once here, with their defaults.

use serde::{Deserialize, Serialize};

/// Quantile levels of `--loss-type quantile` when `--quantiles` is not given (the
/// reference's default).
pub const DEFAULT_QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];

/// The regression loss, on the transformed target `y'` (see
/// [`aam_config::TargetTransform`]), with `e = y' − ŷ`; every loss is a mean over the
/// batch (and, for quantile, over the quantile levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossType {
    /// `e²`. aam's default (the reference's latest version defaults to huber).
    #[default]
    #[cfg_attr(feature = "clap", value(help = "Mean squared error"))]
    Mse,
    /// `|e|`.
    #[cfg_attr(feature = "clap", value(help = "Mean absolute error"))]
    Mae,
    /// `0.5·e²` where `|e| < 1`, else `|e| − 0.5` (PyTorch `smooth_l1`, β = 1).
    #[cfg_attr(feature = "clap", value(help = "Huber (smooth L1, β = 1)"))]
    Huber,
    /// Pinball loss `max(τ·e, (τ − 1)·e)` for each level τ of `--quantiles`: the model
    /// predicts one value per level.
    #[cfg_attr(
        feature = "clap",
        value(help = "Pinball loss, one output per --quantiles level")
    )]
    Quantile,
    /// `over·max(ŷ − y', 0) + under·max(y' − ŷ, 0)` (`--over-penalty`, `--under-penalty`).
    #[cfg_attr(
        feature = "clap",
        value(
            help = "Over- and under-prediction weighted apart (--over-penalty, --under-penalty)"
        )
    )]
    Asymmetric,
}

/// A regressor's loss and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionLoss {
    /// Which loss.
    pub kind: LossType,
    /// Quantile levels τ in (0, 1), increasing (quantile loss only).
    pub quantiles: Vec<f64>,
    /// Weight of over-prediction (asymmetric loss only; > 0).
    pub over_penalty: f64,
    /// Weight of under-prediction (asymmetric loss only; > 0).
    pub under_penalty: f64,
    /// The loss of each target column of a regressor of several (`--loss-config`,
    /// [`LossConfig::resolve`]), in output order; empty: `kind` for every column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_column: Vec<LossType>,
}

impl Default for RegressionLoss {
    fn default() -> Self {
        RegressionLoss {
            kind: LossType::default(),
            quantiles: Vec::new(),
            over_penalty: 1.0,
            under_penalty: 1.0,
            per_column: Vec::new(),
        }
    }
}

impl RegressionLoss {
    /// The loss `kind` with `quantiles` (`None`: [`DEFAULT_QUANTILES`] for a quantile
    /// loss) and the asymmetric penalties, checked.
    ///
    /// Errors: quantiles given to another loss; a level outside (0, 1) or repeated; a
    /// penalty that is not a positive finite number.
    pub fn new(
        kind: LossType,
        quantiles: Option<Vec<f64>>,
        over_penalty: f64,
        under_penalty: f64,
    ) -> Result<Self, String> {
        let quantiles = match (kind, quantiles) {
            (LossType::Quantile, None) => DEFAULT_QUANTILES.to_vec(),
            (LossType::Quantile, Some(mut q)) => {
                if q.is_empty() {
                    return Err(
                        "--quantiles is empty; give levels in (0, 1), e.g. 0.1,0.5,0.9".into(),
                    );
                }
                if let Some(bad) = q.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
                    return Err(format!("--quantiles: {bad} is not in (0, 1)"));
                }
                q.sort_by(f64::total_cmp);
                if q.windows(2).any(|w| w[0] == w[1]) {
                    return Err("--quantiles lists a level twice".into());
                }
                q
            }
            (_, Some(_)) => {
                return Err("--quantiles needs --loss-type quantile".into());
            }
            (_, None) => Vec::new(),
        };
        for (name, p) in [
            ("--over-penalty", over_penalty),
            ("--under-penalty", under_penalty),
        ] {
            if !(p > 0.0 && p.is_finite()) {
                return Err(format!("{name} must be a positive number, not {p}"));
            }
        }
        Ok(RegressionLoss {
            kind,
            quantiles,
            over_penalty,
            under_penalty,
            per_column: Vec::new(),
        })
    }

    /// Outputs per target column: the number of quantile levels, else 1.
    pub fn width(&self) -> usize {
        match self.kind {
            LossType::Quantile => self.quantiles.len(),
            _ => 1,
        }
    }
}

/// The validation metric whose best epoch is kept as `model.safetensors` and that early
/// stopping watches (`--best-metric`). The reference kept the lowest loss only, so the
/// saved model was not the best-R² epoch (its PYT-BUG-2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BestMetric {
    /// The validation loss (lower is better).
    #[default]
    #[cfg_attr(
        feature = "clap",
        value(name = "val_loss", help = "Validation loss (lower is better)")
    )]
    ValLoss,
    /// R² of a regressor, in the target's units (higher is better).
    #[cfg_attr(feature = "clap", value(help = "R² of a regressor (higher is better)"))]
    R2,
    /// Mean absolute error of a regressor, in the target's units (lower is better).
    #[cfg_attr(feature = "clap", value(help = "MAE of a regressor (lower is better)"))]
    Mae,
    /// Accuracy of a classifier (higher is better).
    #[cfg_attr(
        feature = "clap",
        value(help = "Accuracy of a classifier (higher is better)")
    )]
    Accuracy,
    /// Macro-averaged F1 of a classifier (higher is better; the reference's `f1` is
    /// support-weighted, which rewards predicting the majority class).
    #[cfg_attr(
        feature = "clap",
        value(help = "Macro-F1 of a classifier (higher is better)")
    )]
    F1,
}

impl BestMetric {
    /// The key of the metric in an epoch's validation record.
    pub fn key(self) -> &'static str {
        match self {
            BestMetric::ValLoss => "loss",
            BestMetric::R2 => "r2",
            BestMetric::Mae => "mae",
            BestMetric::Accuracy => "accuracy",
            BestMetric::F1 => "macro_f1",
        }
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, BestMetric::R2 | BestMetric::Accuracy | BestMetric::F1)
    }

    /// Whether `value` beats `best` (`None`: nothing yet).
    pub fn improves(self, value: f64, best: Option<f64>) -> bool {
        match best {
            None => true,
            Some(b) if self.higher_is_better() => value > b,
            Some(b) => value < b,
        }
    }

    /// Whether the metric exists for a target of `kind` (`None`: pretraining).
    pub fn fits(self, kind: Option<aam_data::TargetKind>) -> bool {
        use aam_data::TargetKind as K;
        match self {
            BestMetric::ValLoss => true,
            BestMetric::R2 | BestMetric::Mae => kind == Some(K::Numeric),
            BestMetric::Accuracy | BestMetric::F1 => kind == Some(K::Categorical),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let q = RegressionLoss::new(LossType::Quantile, None, 1.0, 1.0).unwrap();
        assert_eq!((q.quantiles.clone(), q.width()), (vec![0.1, 0.5, 0.9], 3));
        let q = RegressionLoss::new(LossType::Quantile, Some(vec![0.9, 0.25]), 1.0, 1.0).unwrap();
        assert_eq!(q.quantiles, vec![0.25, 0.9]);
        assert!(RegressionLoss::new(LossType::Quantile, Some(vec![1.0]), 1.0, 1.0).is_err());
        assert!(RegressionLoss::new(LossType::Quantile, Some(vec![]), 1.0, 1.0).is_err());
        assert!(RegressionLoss::new(LossType::Mse, Some(vec![0.5]), 1.0, 1.0).is_err());
        assert!(RegressionLoss::new(LossType::Asymmetric, None, 0.0, 1.0).is_err());
        assert_eq!(
            RegressionLoss::new(LossType::Mae, None, 1.0, 1.0)
                .unwrap()
                .width(),
            1
        );
        assert!(
            BestMetric::R2.improves(0.5, Some(0.4)) && !BestMetric::Mae.improves(0.5, Some(0.4))
        );
        assert!(BestMetric::F1.improves(-1.0, None));
    }
}

/// `--loss-config`: a loss per target column of a regressor trained on several
/// metadata columns (spec §4.3), keyed by output index (`"0"`) or column name, each
/// `mse`, `mae` or `huber`. Unlisted columns use `--loss-type`; the target loss is the
/// mean of the columns' losses.
///
/// Unlike the reference, which matches only index keys in practice (its CLI never passes
/// the column names) and ignores the rest, a name key matches its column and a key that
/// matches no column is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossConfig(pub std::collections::BTreeMap<String, LossType>);

impl LossConfig {
    /// Parses `--loss-config` JSON, e.g. `{"0": "mse", "shannon": "huber"}`.
    ///
    /// Errors: not a JSON object of strings; a loss other than mse, mae or huber.
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: std::collections::BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| format!("--loss-config is not a JSON object of column → loss ({e}); e.g. {{\"0\": \"mse\", \"shannon\": \"huber\"}}"))?;
        raw.into_iter()
            .map(|(key, loss)| {
                let kind = match loss.as_str() {
                    "mse" => LossType::Mse,
                    "mae" => LossType::Mae,
                    "huber" => LossType::Huber,
                    other => {
                        return Err(format!(
                        "--loss-config: column '{key}' has loss '{other}'; use mse, mae or huber"
                    ))
                    }
                };
                Ok((key, kind))
            })
            .collect::<Result<_, _>>()
            .map(LossConfig)
    }

    /// The loss of each of `columns` (output order): an index key beats a name key, and
    /// an unlisted column gets `default`.
    ///
    /// Errors: `default` is quantile or asymmetric (the per-column losses are mse, mae
    /// and huber, as in the reference); a key that names no column and no output index.
    pub fn resolve(&self, columns: &[String], default: LossType) -> Result<Vec<LossType>, String> {
        if matches!(default, LossType::Quantile | LossType::Asymmetric) {
            return Err(format!(
                "--loss-config cannot be combined with --loss-type {}; use mse, mae or huber",
                if default == LossType::Quantile {
                    "quantile"
                } else {
                    "asymmetric"
                }
            ));
        }
        if let Some(key) = self.0.keys().find(|k| {
            !columns.iter().any(|c| c == *k) && !k.parse::<usize>().is_ok_and(|i| i < columns.len())
        }) {
            return Err(format!(
                "--loss-config names '{key}', which is neither a target column ({}) nor an output index 0..{}",
                columns.join(", "),
                columns.len()
            ));
        }
        Ok(columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.0
                    .get(&i.to_string())
                    .or_else(|| self.0.get(c))
                    .copied()
                    .unwrap_or(default)
            })
            .collect())
    }
}
