//! Seeded train/validation split of samples, optionally grouped and stratified.
//!
//! Units are samples, or whole groups with `--group-column` (e.g. `host_subject_id`:
//! no subject on both sides). For classification the units are stratified by class
//! (a group's class is its most common one), so every class with at least two units
//! appears on both sides; classes with a single unit are pooled together. Within each stratum the units are shuffled with a ChaCha8
//! RNG seeded by `seed` and taken for validation until the stratum's share reaches
//! `validation_fraction`, always leaving at least one unit for training.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

/// Sample indices (positions in the caller's sample list) of each side, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training samples.
    pub train: Vec<usize>,
    /// Validation samples.
    pub validation: Vec<usize>,
}

/// Splits `n` samples.
///
/// `groups[i]`: group of sample `i` (e.g. subject); `classes[i]`: class index of
/// sample `i` for stratification. `validation_fraction` 0 puts every sample on the
/// training side (e.g. pretraining on every sample of a table: no target is read).
/// Errors: a fraction outside [0, 1); fewer than two units; a split that leaves one
/// side empty (with a fraction above 0).
pub fn split_samples(
    n: usize,
    validation_fraction: f64,
    seed: u64,
    groups: Option<&[String]>,
    classes: Option<&[usize]>,
) -> Result<Split> {
    if !(validation_fraction >= 0.0 && validation_fraction < 1.0) {
        return Err(DataError::Parameter {
            name: "--validation-fraction",
            message: format!("{validation_fraction} is not in [0, 1)"),
        });
    }
    if validation_fraction == 0.0 {
        return Ok(Split {
            train: (0..n).collect(),
            validation: Vec::new(),
        });
    }
    let units = units(n, groups);
    if units.len() < 2 {
        return Err(DataError::Parameter {
            name: "--validation-fraction",
            message: format!(
                "only {} {} to split; a train/validation split needs at least two",
                units.len(),
                if groups.is_some() {
                    "group(s)"
                } else {
                    "sample(s)"
                }
            ),
        });
    }
    let mut strata: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (u, members) in units.iter().enumerate() {
        strata
            .entry(classes.map_or(0, |c| majority(members.iter().map(|&i| c[i]))))
            .or_default()
            .push(u);
    }
    // A stratum of one unit can never appear on both sides: pool such strata together
    // (with two subjects of different majority class, stratifying would leave nothing to
    // validate on).
    let singletons: Vec<usize> = strata
        .iter()
        .filter(|(_, u)| u.len() < 2)
        .map(|(k, _)| *k)
        .collect();
    if singletons.len() > 1 {
        let pooled: Vec<usize> = singletons
            .iter()
            .flat_map(|k| strata.remove(k).unwrap_or_default())
            .collect();
        strata.insert(usize::MAX, pooled);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut validation = Vec::new();
    for stratum in strata.values_mut() {
        stratum.shuffle(&mut rng);
        let size: usize = stratum.iter().map(|&u| units[u].len()).sum();
        let target = (validation_fraction * size as f64).round() as usize;
        let mut taken = 0;
        for (k, &u) in stratum.iter().enumerate() {
            if taken >= target.max(1) || k + 1 == stratum.len() {
                break;
            }
            taken += units[u].len();
            validation.extend_from_slice(&units[u]);
        }
    }
    let Split { train, validation } = with_validation(n, validation);
    if validation.is_empty() || train.is_empty() {
        return Err(DataError::Parameter {
            name: "--validation-fraction",
            message: format!("the split left {} training and {} validation samples; use more samples or another fraction", train.len(), validation.len()),
        });
    }
    Ok(Split { train, validation })
}

/// Grouped K-fold cross-validation of `n` samples: `k` splits whose validation sides
/// partition the samples, a group (`groups[i]`, e.g. the subject of sample `i`) never on
/// both sides of a split. Groups are shuffled with `seed`; with `classes` (class index of
/// each sample) they are dealt class by class (a group's class is its members' majority),
/// each to the fold with the fewest groups of that class so far, so every fold gets its
/// share of each class as far as the groups allow (scikit-learn's `StratifiedGroupKFold`
/// in spirit); ties, and every group without `classes`, go to the fold with the fewest
/// samples.
///
/// Errors: `k < 2`, or fewer groups (samples without `groups`) than folds.
pub fn group_kfold(
    n: usize,
    k: usize,
    seed: u64,
    groups: Option<&[String]>,
    classes: Option<&[usize]>,
) -> Result<Vec<Split>> {
    let mut units = units(n, groups);
    if k < 2 || units.len() < k {
        return Err(DataError::Parameter {
            name: "--folds",
            message: format!(
                "{k} folds of {} {}: cross-validation needs at least 2 folds and a {} per fold",
                units.len(),
                if groups.is_some() { "groups" } else { "samples" },
                if groups.is_some() { "group" } else { "sample" }
            ),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    units.shuffle(&mut rng);
    let class_of = |u: &Vec<usize>| classes.map_or(0, |c| majority(u.iter().map(|&i| c[i])));
    // Class by class (stable: the shuffled order within a class is kept).
    units.sort_by_key(class_of);
    let mut folds: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut per_class: HashMap<usize, Vec<usize>> = HashMap::new();
    for unit in units {
        let dealt = per_class.entry(class_of(&unit)).or_insert_with(|| vec![0; k]);
        // The fold with the fewest groups of this class, then the fewest samples.
        let f = (0..k)
            .min_by_key(|&f| (dealt[f], folds[f].len()))
            .unwrap_or(0);
        dealt[f] += 1;
        folds[f].extend(unit);
    }
    Ok(folds.into_iter().map(|v| with_validation(n, v)).collect())
}

/// The split of `n` samples whose validation side is `validation` (sorted here), the
/// rest training.
fn with_validation(n: usize, mut validation: Vec<usize>) -> Split {
    validation.sort_unstable();
    let in_val: std::collections::HashSet<usize> = validation.iter().copied().collect();
    Split {
        train: (0..n).filter(|i| !in_val.contains(i)).collect(),
        validation,
    }
}

/// The units a split keeps whole: one per group (in first-seen order, `groups[i]` the
/// group of sample `i`) or, without groups, one per sample.
fn units(n: usize, groups: Option<&[String]>) -> Vec<Vec<usize>> {
    let Some(g) = groups else {
        return (0..n).map(|i| vec![i]).collect();
    };
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut pos: HashMap<&str, usize> = HashMap::new();
    for (i, name) in g.iter().enumerate().take(n) {
        let u = *pos.entry(name.as_str()).or_insert_with(|| {
            units.push(Vec::new());
            units.len() - 1
        });
        units[u].push(i);
    }
    units
}

fn majority(labels: impl Iterator<Item = usize>) -> usize {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    // Highest count, smallest class index on ties.
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(0, |(l, _)| *l)
}

/// Writes the split as a TSV (`sample_id<TAB>set`, set = `train`/`validation`) so a
/// run can be repeated with [`read_split_tsv`].
pub fn write_split_tsv(path: &Path, sample_ids: &[String], split: &Split) -> Result<()> {
    let mut out = String::from("sample_id\tset\n");
    let mut rows: Vec<(usize, &str)> = split
        .train
        .iter()
        .map(|&i| (i, "train"))
        .chain(split.validation.iter().map(|&i| (i, "validation")))
        .collect();
    rows.sort_unstable();
    for (i, set) in rows {
        out.push_str(&format!("{}\t{set}\n", sample_ids[i]));
    }
    let tmp = path.with_extension("tsv.tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(out.as_bytes()).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| DataError::io(path, e))
}

/// Reads a split written by [`write_split_tsv`] against `sample_ids`.
///
/// Errors: unknown `set` values; samples of the split absent from `sample_ids`.
pub fn read_split_tsv(path: &Path, sample_ids: &[String]) -> Result<Split> {
    read_split(path, sample_ids, false)
}

/// Like [`read_split_tsv`], but rows of samples absent from `sample_ids` are skipped
/// (e.g. a pretraining split over samples that have no target). Returns `None` when a
/// sample of `sample_ids` is not in the file, so the caller makes a new split.
pub fn read_split_tsv_covering(path: &Path, sample_ids: &[String]) -> Result<Option<Split>> {
    let s = read_split(path, sample_ids, true)?;
    Ok((s.train.len() + s.validation.len() == sample_ids.len()
        && !s.train.is_empty()
        && !s.validation.is_empty())
    .then_some(s))
}

/// Like [`read_split_tsv`], but rows of samples absent from `sample_ids` are skipped, and
/// samples of `sample_ids` the file does not list are in neither set (e.g. a training
/// run's split read against a table that also holds samples the run left out).
///
/// Errors: unknown `set` values.
pub fn read_split_tsv_listed(path: &Path, sample_ids: &[String]) -> Result<Split> {
    read_split(path, sample_ids, true)
}

fn read_split(path: &Path, sample_ids: &[String], skip_unknown: bool) -> Result<Split> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let pos: HashMap<&str, usize> = sample_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for (k, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (id, set) = line.split_once('\t').ok_or_else(|| {
            DataError::format(
                path,
                format!("line {}: expected `sample_id<TAB>set`", k + 1),
            )
        })?;
        let Some(&i) = pos.get(id) else {
            if skip_unknown {
                continue;
            }
            return Err(DataError::mismatch(path, format!("line {}: sample '{id}' is not in the table; the split belongs to another table", k + 1)));
        };
        match set {
            "train" => train.push(i),
            "validation" => validation.push(i),
            other => {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {}: set '{other}' is not `train` or `validation`",
                        k + 1
                    ),
                ))
            }
        }
    }
    train.sort_unstable();
    validation.sort_unstable();
    Ok(Split { train, validation })
}
