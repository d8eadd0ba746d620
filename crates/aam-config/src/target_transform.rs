//! How a regression target is rescaled for training and mapped back at prediction
//! (`--target-transform`, spec §5.9): an optional `ln(y + 1)`, then an affine map
//! `y' = (g(y) − offset) / scale` whose offset and scale come from the training samples
//! only and are stored in the checkpoint ([`crate::TargetInfo`]'s `mean` and `std`).
//!
//! The reference writes predictions in the transformed units because its checkpoint
//! lacks the statistics (spec §6.4); here they are stored, and every prediction is in
//! the target's original units.

use serde::{Deserialize, Serialize};

/// Largest exponent the inverse of a log transform takes (`exp(88)` is near the f32
/// maximum; the reference clamps there too).
const MAX_EXPONENT: f64 = 88.0;

/// The transform of a regression target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TargetTransform {
    /// The values as they are (offset 0, scale 1).
    #[cfg_attr(feature = "clap", value(help = "The values as they are"))]
    None,
    /// `(y − min) / (max − min)` over the training samples (scale 1 when constant).
    #[cfg_attr(
        feature = "clap",
        value(help = "(y − min) / (max − min), training samples")
    )]
    Minmax,
    /// `(y − mean) / std` over the training samples (population std; 1 when it is 0).
    /// The default, and what checkpoints written before transforms existed hold.
    #[default]
    #[cfg_attr(feature = "clap", value(help = "(y − mean) / std, training samples"))]
    Zscore,
    /// `(y − mean_c) / std_c` with the mean and std of the training samples of the
    /// sample's category `c` of one categorical column (`--normalize-by`); a category
    /// without training samples, or with fewer than two or a constant target, takes the
    /// global mean and std (the reference floors such a std at 1e-8 instead, which
    /// blows the transformed targets up by 10⁸).
    #[cfg_attr(
        feature = "clap",
        value(help = "z-score within each category of --normalize-by, training samples")
    )]
    ZscoreCategory,
    /// `ln(y + 1)`, then min-max; the output gets a sigmoid (`bounded_targets`), as in
    /// the reference. Needs every value > −1.
    #[cfg_attr(
        feature = "clap",
        value(help = "ln(y + 1), then min-max (the output gets a sigmoid)")
    )]
    LogMinmax,
    /// `ln(y + 1)`, then z-score. Needs every value > −1.
    #[cfg_attr(feature = "clap", value(help = "ln(y + 1), then z-score"))]
    LogZscore,
}

impl TargetTransform {
    /// The name `--target-transform` takes.
    pub fn name(self) -> &'static str {
        match self {
            TargetTransform::None => "none",
            TargetTransform::Minmax => "minmax",
            TargetTransform::Zscore => "zscore",
            TargetTransform::ZscoreCategory => "zscore-category",
            TargetTransform::LogMinmax => "log-minmax",
            TargetTransform::LogZscore => "log-zscore",
        }
    }

    /// Whether `ln(y + 1)` comes first.
    pub fn is_log(self) -> bool {
        matches!(
            self,
            TargetTransform::LogMinmax | TargetTransform::LogZscore
        )
    }

    /// `g(y)`: `ln(y + 1)` for the log transforms, else `y`.
    fn pre(self, y: f64) -> f64 {
        if self.is_log() {
            y.ln_1p()
        } else {
            y
        }
    }

    /// `(offset, scale)` of the affine part over `values` at the positions `train`.
    ///
    /// Errors: a log transform and a value ≤ −1 (its position in `values`), where
    /// `ln(y + 1)` is undefined.
    pub fn fit(self, values: &[f64], train: &[usize]) -> Result<(f64, f64), usize> {
        if self.is_log() {
            if let Some(i) = (0..values.len()).find(|&i| values[i] <= -1.0) {
                return Err(i);
            }
        }
        let g: Vec<f64> = train.iter().map(|&i| self.pre(values[i])).collect();
        let n = g.len().max(1) as f64;
        let nonzero = |s: f64| if s > 1e-12 { s } else { 1.0 };
        Ok(match self {
            TargetTransform::None => (0.0, 1.0),
            TargetTransform::Minmax | TargetTransform::LogMinmax => {
                let min = g.iter().copied().fold(f64::INFINITY, f64::min);
                let max = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if g.is_empty() {
                    (0.0, 1.0)
                } else {
                    (min, nonzero(max - min))
                }
            }
            TargetTransform::Zscore
            | TargetTransform::ZscoreCategory
            | TargetTransform::LogZscore => {
                let mean = g.iter().sum::<f64>() / n;
                let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                (mean, nonzero(var.sqrt()))
            }
        })
    }

    /// `[offset, scale]` of [`TargetTransform::ZscoreCategory`] for each category index
    /// `0..n_categories` (`ids[i]`: sample `i`'s index; 0 is the unknown category): the
    /// mean and population std of the training samples of that category, or the global
    /// ones (`global`, from [`TargetTransform::fit`]) for index 0, a category with fewer
    /// than two training samples, or a constant one.
    pub fn fit_by_category(
        values: &[f64],
        train: &[usize],
        ids: &[i64],
        n_categories: usize,
        global: (f64, f64),
    ) -> Vec<[f64; 2]> {
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); n_categories];
        for &i in train {
            if let Some(g) = groups.get_mut(ids[i] as usize) {
                g.push(values[i]);
            }
        }
        groups
            .iter()
            .enumerate()
            .map(|(k, g)| {
                let n = g.len() as f64;
                let mean = g.iter().sum::<f64>() / n.max(1.0);
                let std = (g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n.max(1.0)).sqrt();
                if k == 0 || g.len() < 2 || std <= 1e-12 {
                    [global.0, global.1]
                } else {
                    [mean, std]
                }
            })
            .collect()
    }

    /// `y' = (g(y) − offset) / scale`.
    pub fn forward(self, y: f64, offset: f64, scale: f64) -> f64 {
        (self.pre(y) - offset) / scale
    }

    /// The inverse of [`TargetTransform::forward`]: `g⁻¹(y'·scale + offset)`, with
    /// `exp(min(x, 88)) − 1` for the log transforms.
    pub fn inverse(self, z: f64, offset: f64, scale: f64) -> f64 {
        let x = z * scale + offset;
        if self.is_log() {
            x.min(MAX_EXPONENT).exp_m1()
        } else {
            x
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_statistics_and_round_trips() {
        // Training samples 0, 1, 3: values 1, 3, 7 (sample 2, 100, is validation).
        let v = [1.0, 3.0, 100.0, 7.0];
        let train = [0, 1, 3];
        assert_eq!(TargetTransform::None.fit(&v, &train), Ok((0.0, 1.0)));
        assert_eq!(TargetTransform::Minmax.fit(&v, &train), Ok((1.0, 6.0)));
        let (m, s) = TargetTransform::Zscore.fit(&v, &train).unwrap();
        // mean 11/3; population variance ((8/3)² + (2/3)² + (10/3)²) / 3 = 168/27.
        assert!((m - 11.0 / 3.0).abs() < 1e-12 && (s - (168.0f64 / 27.0).sqrt()).abs() < 1e-12);
        let (lo, range) = TargetTransform::LogMinmax.fit(&v, &train).unwrap();
        assert!((lo - 2f64.ln()).abs() < 1e-12 && (range - (8f64.ln() - 2f64.ln())).abs() < 1e-12);
        assert!((TargetTransform::LogMinmax.forward(3.0, lo, range) - 0.5).abs() < 1e-12);
        for t in [
            TargetTransform::None,
            TargetTransform::Minmax,
            TargetTransform::Zscore,
            TargetTransform::ZscoreCategory,
            TargetTransform::LogMinmax,
            TargetTransform::LogZscore,
        ] {
            let (o, s) = t.fit(&v, &train).unwrap();
            for &y in &v {
                let back = t.inverse(t.forward(y, o, s), o, s);
                assert!(
                    (back - y).abs() < 1e-9 * y.abs().max(1.0),
                    "{t:?}: {y} → {back}"
                );
            }
        }
        // Per category (index 0 unknown): category 1 has samples 0 and 1 (1, 3 → mean 2,
        // std 1); category 2 only sample 3: the global statistics.
        let global = TargetTransform::Zscore.fit(&v, &train).unwrap();
        let by = TargetTransform::fit_by_category(&v, &train, &[1, 1, 2, 2], 3, global);
        assert_eq!(
            by,
            vec![[global.0, global.1], [2.0, 1.0], [global.0, global.1]]
        );
        // A constant column: scale 1, not a division by zero.
        assert_eq!(
            TargetTransform::Minmax.fit(&[5.0, 5.0], &[0, 1]),
            Ok((5.0, 1.0))
        );
        // ln(y + 1) is undefined at −1: the position is named.
        assert_eq!(TargetTransform::LogZscore.fit(&[0.0, -1.0], &[0]), Err(1));
        // The inverse of a log transform saturates instead of overflowing.
        assert!(TargetTransform::LogZscore
            .inverse(1e6, 0.0, 1.0)
            .is_finite());
    }
}
