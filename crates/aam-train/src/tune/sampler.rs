//! Proposes a trial's parameters: independent uniform draws, or the tree-structured Parzen
//! estimator (Bergstra et al., "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011)
//! of the `tpe` crate, one univariate optimizer per parameter as Optuna's default TPE.
//!
//! Every parameter is sampled in an internal space: the logarithm for `log_uniform`,
//! `[low, high + 1)` floored for `int`, the index for `choice` (a histogram estimator).

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use rand10::{RngExt, SeedableRng};

use super::space::{Param, SamplerKind};

/// A finished trial as the sampler sees it: its parameters and its objective, smaller
/// is better (maximized metrics are negated).
#[derive(Debug, Clone)]
pub struct Observation {
    /// The trial's parameters.
    pub params: BTreeMap<String, toml::Value>,
    /// Objective, smaller is better.
    pub loss: f64,
}

/// Internal range `[low, high)` of a parameter.
fn internal_range(param: &Param) -> (f64, f64) {
    match param {
        Param::LogUniform([lo, hi]) => (lo.ln(), hi.ln()),
        Param::Uniform([lo, hi]) => (*lo, *hi),
        Param::Int([lo, hi]) => (*lo as f64, *hi as f64 + 1.0),
        Param::Choice(values) => (0.0, values.len() as f64),
    }
}

/// A value in the internal space back to the option's value.
fn external(param: &Param, x: f64) -> toml::Value {
    match param {
        Param::LogUniform([lo, hi]) => toml::Value::Float(x.exp().clamp(*lo, *hi)),
        Param::Uniform([lo, hi]) => toml::Value::Float(x.clamp(*lo, *hi)),
        Param::Int([lo, hi]) => toml::Value::Integer((x.floor() as i64).clamp(*lo, *hi)),
        Param::Choice(values) => values[(x.floor() as usize).min(values.len() - 1)].clone(),
    }
}

/// An option's value in the internal space (`None` when it is not in the range).
fn internal(param: &Param, value: &toml::Value) -> Option<f64> {
    let float = || value.as_float().or_else(|| value.as_integer().map(|i| i as f64));
    match param {
        Param::LogUniform(_) => float().filter(|v| *v > 0.0).map(f64::ln),
        Param::Uniform(_) => float(),
        // The middle of the integer's cell, so the estimator's kernels are centred on it.
        Param::Int(_) => value.as_integer().map(|i| i as f64 + 0.5),
        Param::Choice(values) => values.iter().position(|v| v == value).map(|i| i as f64),
    }
}

/// The parameters of trial `number`: uniform draws while fewer than `startup` trials have
/// finished (or with the random sampler), TPE after. Deterministic in (`seed`, `number`,
/// the observations). Errors: the TPE optimizer rejects an observation (a bug).
pub fn propose(
    space: &BTreeMap<String, Param>,
    kind: SamplerKind,
    startup: usize,
    observations: &[Observation],
    seed: u64,
    number: usize,
) -> Result<BTreeMap<String, toml::Value>> {
    let mut rng = rand10::rngs::StdRng::seed_from_u64(
        seed ^ (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let random = kind == SamplerKind::Random || observations.len() < startup;
    let mut out = BTreeMap::new();
    for (name, param) in space {
        let (lo, hi) = internal_range(param);
        let x = if random {
            rng.random_range(lo..hi)
        } else {
            let invalid = |e| anyhow!("[space] {name}: {e}");
            let mut optimizer = match param {
                Param::Choice(values) => tpe::TpeOptimizer::new(
                    tpe::histogram_estimator(),
                    tpe::categorical_range(values.len()).map_err(invalid)?,
                ),
                _ => tpe::TpeOptimizer::new(
                    tpe::parzen_estimator(),
                    tpe::range(lo, hi).map_err(invalid)?,
                ),
            };
            for o in observations {
                // A value outside today's range (never, with the study file fixed) is told
                // as "not used" (NaN), which the optimizer accepts.
                let x = o
                    .params
                    .get(name)
                    .and_then(|v| internal(param, v))
                    .filter(|x| (lo..hi).contains(x))
                    .unwrap_or(f64::NAN);
                optimizer
                    .tell(x, o.loss)
                    .map_err(|e| anyhow!("TPE rejected trial data for {name}: {e}"))?;
            }
            optimizer
                .ask(&mut rng)
                .map_err(|e| anyhow!("TPE cannot sample {name}: {e}"))?
        };
        out.insert(name.clone(), external(param, x));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> BTreeMap<String, Param> {
        BTreeMap::from([
            ("lr".to_string(), Param::LogUniform([1e-4, 1e-1])),
            ("layers".to_string(), Param::Int([1, 4])),
            (
                "act".to_string(),
                Param::Choice(vec!["gelu".into(), "relu".into()]),
            ),
        ])
    }

    /// A synthetic objective: best at lr = 1e-2, layers = 2, gelu.
    fn objective(p: &BTreeMap<String, toml::Value>) -> f64 {
        let lr = p["lr"].as_float().unwrap();
        let layers = p["layers"].as_integer().unwrap();
        (lr.log10() + 2.0).powi(2)
            + (layers - 2).pow(2) as f64
            + if p["act"].as_str() == Some("gelu") { 0.0 } else { 1.0 }
    }

    fn study(kind: SamplerKind, seed: u64) -> Vec<f64> {
        let mut seen: Vec<Observation> = Vec::new();
        for number in 0..40 {
            let params = propose(&space(), kind, 8, &seen, seed, number).unwrap();
            let loss = objective(&params);
            seen.push(Observation { params, loss });
        }
        seen.iter().map(|o| o.loss).collect()
    }

    #[test]
    fn values_stay_in_their_ranges() {
        for number in 0..50 {
            let p = propose(&space(), SamplerKind::Random, 0, &[], 3, number).unwrap();
            let lr = p["lr"].as_float().unwrap();
            assert!((1e-4..=1e-1).contains(&lr), "{lr}");
            assert!((1..=4).contains(&p["layers"].as_integer().unwrap()));
            assert!(["gelu", "relu"].contains(&p["act"].as_str().unwrap()));
        }
        // Deterministic in (seed, number).
        let a = propose(&space(), SamplerKind::Random, 0, &[], 3, 7).unwrap();
        assert_eq!(a, propose(&space(), SamplerKind::Random, 0, &[], 3, 7).unwrap());
    }

    #[test]
    fn tpe_beats_random_search_after_start_up() {
        // Over five seeds, the median loss of trials 8..40 (after the 8 random start-up
        // trials) is lower under TPE than under random search, for every seed.
        for seed in 0..5 {
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let tpe = median(study(SamplerKind::Tpe, seed)[8..].to_vec());
            let random = median(study(SamplerKind::Random, seed)[8..].to_vec());
            assert!(tpe < random, "seed {seed}: TPE median {tpe}, random {random}");
        }
    }

    #[test]
    fn internal_space_round_trips() {
        let lr = Param::LogUniform([1e-4, 1e-1]);
        let x = internal(&lr, &toml::Value::Float(1e-3)).unwrap();
        assert!((x - 1e-3f64.ln()).abs() < 1e-12);
        assert!((external(&lr, x).as_float().unwrap() - 1e-3).abs() < 1e-15);
        let layers = Param::Int([1, 4]);
        assert_eq!(internal(&layers, &toml::Value::Integer(3)), Some(3.5));
        assert_eq!(external(&layers, 3.5), toml::Value::Integer(3));
        assert_eq!(external(&layers, 4.99), toml::Value::Integer(4));
    }
}
