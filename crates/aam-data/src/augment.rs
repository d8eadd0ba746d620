//! Training-time data augmentation (`--augment`), drawn afresh for every sample in every
//! epoch from `(seed, epoch, sample)`, so a run is reproducible and a sample's
//! augmentation does not depend on which batch it falls in. Only the training batches
//! are augmented; a sample keeps its ID, target and UniFrac distances (augmentation is a
//! view of the same sample), and the ASV mask, counts and tokens of a batch stay
//! consistent with each other because they are built from the augmented entries.
//!
//! Applied in this order:
//! 1. `rarefy=D`: the sample's reads subsampled to depth D without replacement (a sample
//!    with fewer reads, more than 2^64 reads, or non-integer counts such as relative
//!    abundances, is kept as it is);
//! 2. `subset=P`: each ASV kept with probability P (at least one ASV always kept);
//! 3. `noise=σ`: each count multiplied by `exp(σ·z)`, z standard normal (log-normal
//!    noise; counts stay positive);
//! 4. `substitution=R`: each nucleotide of a kept ASV replaced by one of the three other
//!    bases with probability R (start token, padding and non-ACGT holes untouched).

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::rarefy::draw_without_replacement;

/// The augmentations of a training run; each is off when `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augmentation {
    /// Rarefaction depth drawn every epoch.
    pub rarefy: Option<u64>,
    /// Probability of keeping each ASV, in (0, 1].
    pub subset: Option<f64>,
    /// σ of the log-normal count noise, ≥ 0.
    pub noise: Option<f64>,
    /// Nucleotide substitution rate, in [0, 1].
    pub substitution: Option<f64>,
}

impl Augmentation {
    /// Whether nothing is augmented.
    pub fn is_none(&self) -> bool {
        *self == Augmentation::default()
    }

    /// The random stream of `sample` in `epoch`.
    pub fn rng(seed: u64, epoch: u64, sample: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.set_stream(sample as u64);
        rng
    }

    /// A sample's (ASV, count) entries after steps 1–3 (non-integer counts are not
    /// rarefied: the entries are kept as they are for step 1).
    pub fn entries(&self, entries: &[(u32, f64)], rng: &mut ChaCha8Rng) -> Vec<(u32, f64)> {
        let mut out: Vec<(u32, f64)> = entries.to_vec();
        if let Some(depth) = self.rarefy {
            let whole = out.iter().all(|&(_, c)| c >= 0.0 && c.fract() == 0.0);
            let total: f64 = out.iter().map(|e| e.1).sum();
            if whole && total >= depth as f64 {
                let counts: Vec<(u32, u64)> = out.iter().map(|&(a, c)| (a, c as u64)).collect();
                // None: more than u64::MAX reads in all, kept as they are (as a sample
                // with fewer reads than the depth is).
                if let Some(drawn) = draw_without_replacement(&counts, depth, rng) {
                    out = counts
                        .iter()
                        .zip(drawn)
                        .filter(|(_, d)| *d > 0)
                        .map(|(&(a, _), d)| (a, d as f64))
                        .collect();
                }
            }
        }
        if let Some(p) = self.subset {
            if !out.is_empty() {
                let keep: Vec<bool> = out.iter().map(|_| rng.random::<f64>() < p).collect();
                if keep.contains(&true) {
                    out = out
                        .into_iter()
                        .zip(keep)
                        .filter(|(_, k)| *k)
                        .map(|(e, _)| e)
                        .collect();
                } else {
                    let one = rng.random_range(0..out.len());
                    out = vec![out[one]];
                }
            }
        }
        if let Some(sigma) = self.noise {
            for e in &mut out {
                e.1 *= (sigma * standard_normal(rng)).exp();
            }
        }
        out
    }

    /// Step 4 on one ASV's tokens (`[max_bp + 1]`: START, then A 1, C 2, G 3, T 4, 0).
    pub fn substitute(&self, tokens: &mut [i64], rng: &mut ChaCha8Rng) {
        let Some(rate) = self.substitution else {
            return;
        };
        for t in tokens.iter_mut().skip(1) {
            if (1..=4).contains(t) && rng.random::<f64>() < rate {
                // One of the three other bases, uniformly.
                let other = rng.random_range(1..4);
                *t = if other >= *t { other + 1 } else { other };
            }
        }
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An error in an `--augment` value.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentError(String);

impl fmt::Display for AugmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AugmentError {}

impl FromStr for Augmentation {
    type Err = AugmentError;

    /// Parses `rarefy=1000,subset=0.8,noise=0.1,substitution=0.01` (any subset, any order).
    fn from_str(s: &str) -> Result<Self, AugmentError> {
        let mut a = Augmentation::default();
        let mut seen = std::collections::HashSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                AugmentError(format!(
                    "'{part}' is not key=value; use e.g. subset=0.8,noise=0.1"
                ))
            })?;
            let number = |lo: f64, hi: f64| -> Result<f64, AugmentError> {
                let v: f64 = value
                    .parse()
                    .map_err(|_| AugmentError(format!("{key}: '{value}' is not a number")))?;
                if !(v.is_finite() && v >= lo && v <= hi) || (key == "subset" && v == 0.0) {
                    let open = if key == "subset" { '(' } else { '[' };
                    return Err(AugmentError(format!(
                        "{key}={value} is out of range {open}{lo}, {hi}]"
                    )));
                }
                Ok(v)
            };
            if !seen.insert(key) {
                return Err(AugmentError(format!("{key} is given twice in '{s}'")));
            }
            match key {
                "rarefy" => {
                    let d: u64 = value.parse().ok().filter(|&d| d > 0).ok_or_else(|| {
                        AugmentError(format!("rarefy={value}: a depth of at least 1 read"))
                    })?;
                    a.rarefy = Some(d);
                }
                "subset" => a.subset = Some(number(0.0, 1.0)?),
                "noise" => a.noise = Some(number(0.0, 10.0)?),
                "substitution" => a.substitution = Some(number(0.0, 1.0)?),
                other => {
                    return Err(AugmentError(format!(
                        "unknown augmentation '{other}'; use rarefy, subset, noise, substitution"
                    )))
                }
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: [(u32, f64); 4] = [(0, 10.0), (3, 5.0), (7, 1.0), (9, 4.0)];

    #[test]
    fn parses_every_key_and_names_bad_ones() {
        let a: Augmentation = "rarefy=12, subset=0.5,noise=0.2,substitution=0.01"
            .parse()
            .unwrap();
        assert_eq!(
            a,
            Augmentation {
                rarefy: Some(12),
                subset: Some(0.5),
                noise: Some(0.2),
                substitution: Some(0.01)
            }
        );
        for (bad, says) in [
            ("subset=0", "out of range"),
            ("subset=1.5", "out of range"),
            ("noise=x", "not a number"),
            ("rarefy=0", "at least 1"),
            ("shuffle=1", "unknown augmentation 'shuffle'"),
            ("subset", "key=value"),
            ("noise=0.1,noise=0.2", "noise is given twice"),
        ] {
            let e = bad.parse::<Augmentation>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn each_step_keeps_its_promise_and_is_reproducible() {
        let rarefy = Augmentation {
            rarefy: Some(12),
            ..Default::default()
        };
        let out = rarefy.entries(&ENTRIES, &mut Augmentation::rng(1, 0, 3));
        assert_eq!(out.iter().map(|e| e.1).sum::<f64>(), 12.0);
        for &(a, c) in &out {
            let original = ENTRIES.iter().find(|e| e.0 == a).unwrap().1;
            assert!(c >= 1.0 && c <= original && c.fract() == 0.0);
        }
        // Same (seed, epoch, sample): same draw; another epoch: another draw (for some epoch).
        assert_eq!(
            out,
            rarefy.entries(&ENTRIES, &mut Augmentation::rng(1, 0, 3))
        );
        assert!((1..20).any(|e| rarefy.entries(&ENTRIES, &mut Augmentation::rng(1, e, 3)) != out));
        // Too shallow a sample is kept as it is.
        let deep = Augmentation {
            rarefy: Some(100),
            ..Default::default()
        };
        assert_eq!(
            deep.entries(&ENTRIES, &mut Augmentation::rng(1, 0, 3)),
            ENTRIES.to_vec()
        );

        let subset = Augmentation {
            subset: Some(0.5),
            ..Default::default()
        };
        let mut kept = 0usize;
        for e in 0..2000 {
            let out = subset.entries(&ENTRIES, &mut Augmentation::rng(5, e, 0));
            assert!(!out.is_empty());
            assert!(out.iter().all(|x| ENTRIES.contains(x)), "counts unchanged");
            kept += out.len();
        }
        // E[kept] = 4·0.5 plus the always-one rule when all four drop (1/16): 2.0625.
        let mean = kept as f64 / 2000.0;
        assert!((mean - 2.0625).abs() < 0.08, "{mean}");

        let noise = Augmentation {
            noise: Some(0.5),
            ..Default::default()
        };
        let mut logs = Vec::new();
        for e in 0..4000 {
            let out = noise.entries(&ENTRIES, &mut Augmentation::rng(2, e, 1));
            assert_eq!(out.len(), 4);
            logs.push((out[0].1 / 10.0).ln());
        }
        let m = logs.iter().sum::<f64>() / logs.len() as f64;
        let sd = (logs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        assert!(
            m.abs() < 0.03 && (sd - 0.5).abs() < 0.03,
            "log-ratio mean {m}, sd {sd}"
        );
    }

    #[test]
    fn substitutions_change_only_bases_to_other_bases_at_the_rate() {
        let a = Augmentation {
            substitution: Some(0.1),
            ..Default::default()
        };
        let original: Vec<i64> = [5]
            .into_iter()
            .chain((0..1000).map(|i| 1 + i % 4))
            .chain([0; 20])
            .collect();
        let mut changed = 0usize;
        for e in 0..20 {
            let mut t = original.clone();
            a.substitute(&mut t, &mut Augmentation::rng(3, e, 0));
            assert_eq!(t[0], 5, "start token untouched");
            assert!(t[1001..].iter().all(|&x| x == 0), "padding untouched");
            for (x, y) in t.iter().zip(&original).skip(1).take(1000) {
                assert!((1..=4).contains(x));
                changed += usize::from(x != y);
            }
        }
        let rate = changed as f64 / 20_000.0;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
    }
}
