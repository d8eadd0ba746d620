//! An ensemble export (`ensemble.json` and one export directory per member, see
//! [`aam_config::EnsembleManifest`]): every member loaded as a [`Model`] and run on each
//! batch, their outputs averaged.

use std::path::{Path, PathBuf};

use aam_config::{EnsembleManifest, ENSEMBLE_FILE};
use ndarray::{Array, Array2, Dimension, Zip};

use crate::error::{Result, RuntimeError};
use crate::model::{Model, RawOutputs};
use crate::options::LoadOptions;

/// Whether `path` names an ensemble: a directory holding `ensemble.json`, or that file.
pub fn is_ensemble(path: &Path) -> bool {
    ensemble_manifest(path).is_some()
}

/// The manifest (`ensemble.json`) of the ensemble that `path` names: a directory holding
/// one, or a path whose file name is `ensemble.json` (its existence is left to the reader,
/// which names it if missing). `None` otherwise.
pub fn ensemble_manifest(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        let manifest = path.join(ENSEMBLE_FILE);
        manifest.is_file().then_some(manifest)
    } else {
        path.file_name()
            .is_some_and(|n| n == ENSEMBLE_FILE)
            .then(|| path.to_path_buf())
    }
}

/// Loads every member of the ensemble whose manifest is `manifest` (its `ensemble.json`,
/// see [`ensemble_manifest`]) with `options`.
///
/// With a TensorRT engine cache, each member caches its engines in its own subfolder
/// (named as the member).
///
/// Errors: the manifest cannot be read or is not valid
/// ([`EnsembleManifest::read_members`]); a member does not load ([`Model::load_with`]),
/// or is a pretrained encoder;
/// a member's configuration differs from the first's (named: architecture, input
/// preparation, kind or target with its statistics), so their outputs do not mean the
/// same thing.
pub(crate) fn load_members(manifest: &Path, options: &LoadOptions) -> Result<Vec<Model>> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let load_err = |message: String| RuntimeError::Load {
        path: manifest.display().to_string(),
        message,
    };
    let member_dirs = EnsembleManifest::read_members(dir).map_err(load_err)?;
    let mut members: Vec<Model> = Vec::with_capacity(member_dirs.len());
    for member_dir in &member_dirs {
        if is_ensemble(member_dir) {
            return Err(load_err(format!(
                "member {} is itself an ensemble; list its members instead",
                member_dir.display()
            )));
        }
        // ONNX Runtime keys a TensorRT engine by the graph's names, not its weights: the
        // members (one graph, other weights) must not share a cache folder.
        let mut member_options = options.clone();
        if let (Some(cache), Some(name)) = (&options.tensorrt.engine_cache, member_dir.file_name())
        {
            member_options.tensorrt.engine_cache = Some(cache.join(name));
        }
        let model = Model::load_with(member_dir, &member_options)
            .map_err(|e| load_err(format!("member {}: {e}", member_dir.display())))?;
        if model.kind() == aam_config::ModelKind::Encoder {
            return Err(load_err(format!(
                "member {} is a pretrained encoder; an ensemble averages predictors (encoders of other seeds embed samples in unaligned spaces)",
                member_dir.display()
            )));
        }
        if let Some(first) = members.first() {
            if let Some(what) = first.config().ensemble_difference(model.config()) {
                return Err(load_err(format!(
                    "member {} differs from member {} in its {what}; an ensemble's members are fine-tuned with the same settings and split, differing only in --seed",
                    member_dir.display(),
                    member_dirs[0].display()
                )));
            }
        }
        members.push(model);
    }
    Ok(members)
}

/// The members' outputs of one batch combined: class probabilities averaged, with
/// `target_prediction` the log of that mean (log-mean-exp of the members' log-
/// probabilities, finite wherever theirs are); every other output averaged.
///
/// Errors: [`RuntimeError::Run`] when the members' outputs differ in which outputs or
/// which shapes they have (members share a configuration, so this means a broken export).
pub(crate) fn mean_outputs(each: Vec<RawOutputs>) -> Result<RawOutputs> {
    let n = each.len();
    let mut it = each.into_iter();
    let first = it
        .next()
        .ok_or_else(|| RuntimeError::Run("an ensemble without members".into()))?;
    let classifier = first.class_probabilities.is_some();
    // A classifier's target_prediction collects the running log-sum-exp of the members'
    // log-probabilities.
    let mut sum = first;
    for out in it {
        add(&mut sum.embeddings, &out.embeddings, "embeddings")?;
        add_opt(
            &mut sum.class_probabilities,
            &out.class_probabilities,
            "class_probabilities",
        )?;
        add_opt(
            &mut sum.count_prediction,
            &out.count_prediction,
            "count_prediction",
        )?;
        if classifier {
            log_add_exp(&mut sum.target_prediction, &out.target_prediction)?;
        } else {
            add_opt(
                &mut sum.target_prediction,
                &out.target_prediction,
                "target_prediction",
            )?;
        }
    }
    let scale = 1.0 / n as f32;
    sum.embeddings.mapv_inplace(|v| v * scale);
    for a in sum.class_probabilities.iter_mut() {
        a.mapv_inplace(|v| v * scale);
    }
    for a in sum.count_prediction.iter_mut() {
        a.mapv_inplace(|v| v * scale);
    }
    let ln_n = (n as f32).ln();
    for a in sum.target_prediction.iter_mut() {
        if classifier {
            a.mapv_inplace(|v| v - ln_n);
        } else {
            a.mapv_inplace(|v| v * scale);
        }
    }
    Ok(sum)
}

fn mismatch(name: &str) -> RuntimeError {
    RuntimeError::Run(format!(
        "the ensemble's members give differently shaped `{name}` outputs; re-export the members from checkpoints of one configuration"
    ))
}

fn add<D: Dimension>(sum: &mut Array<f32, D>, x: &Array<f32, D>, name: &str) -> Result<()> {
    if sum.shape() != x.shape() {
        return Err(mismatch(name));
    }
    *sum += x;
    Ok(())
}

fn add_opt<D: Dimension>(
    sum: &mut Option<Array<f32, D>>,
    x: &Option<Array<f32, D>>,
    name: &str,
) -> Result<()> {
    match (sum, x) {
        (Some(s), Some(x)) => add(s, x, name),
        (None, None) => Ok(()),
        _ => Err(mismatch(name)),
    }
}

/// `sum = ln(e^sum + e^x)` element-wise, computed from the larger term so it neither
/// overflows nor loses a tiny probability.
fn log_add_exp(sum: &mut Option<Array2<f32>>, x: &Option<Array2<f32>>) -> Result<()> {
    match (sum, x) {
        (Some(s), Some(x)) if s.shape() == x.shape() => {
            Zip::from(s).and(x).for_each(|a, &b| {
                let (hi, lo) = if *a >= b { (*a, b) } else { (b, *a) };
                *a = hi + (lo - hi).exp().ln_1p();
            });
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(mismatch("target_prediction")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn classifier_out(p: [f32; 2]) -> RawOutputs {
        RawOutputs {
            embeddings: array![[p[0], 1.0]],
            target_prediction: Some(array![[p[0].ln(), p[1].ln()]]),
            class_probabilities: Some(array![[p[0], p[1]]]),
            count_prediction: None,
        }
    }

    #[test]
    fn class_probabilities_average_and_their_log_is_the_prediction() {
        let out = mean_outputs(vec![
            classifier_out([0.9, 0.1]),
            classifier_out([0.5, 0.5]),
            classifier_out([0.1, 0.9]),
        ])
        .unwrap();
        // Means by hand: (0.9 + 0.5 + 0.1) / 3 = 0.5, likewise 0.5.
        let p = out.class_probabilities.unwrap();
        assert!((p[[0, 0]] - 0.5).abs() < 1e-6 && (p[[0, 1]] - 0.5).abs() < 1e-6);
        let lp = out.target_prediction.unwrap();
        assert!((lp[[0, 0]] - 0.5f32.ln()).abs() < 1e-6, "{lp}");
        assert!((lp[[0, 1]] - 0.5f32.ln()).abs() < 1e-6, "{lp}");
        assert_eq!(out.embeddings, array![[0.5, 1.0]]);
    }

    #[test]
    fn a_probability_far_below_f32_stays_finite() {
        // ln p = −200 and −100 (e^-200 is 0 in f32): ln((e^-200 + e^-100) / 2)
        // = −100 + ln(1 + e^-100) − ln 2 ≈ −100.693147.
        let out = |lp: f32| RawOutputs {
            embeddings: array![[0.0]],
            target_prediction: Some(array![[lp, 0.0]]),
            class_probabilities: Some(array![[0.0, 1.0]]),
            count_prediction: None,
        };
        let lp = mean_outputs(vec![out(-200.0), out(-100.0)])
            .unwrap()
            .target_prediction
            .unwrap();
        assert!((lp[[0, 0]] - (-100.0 - 2f32.ln())).abs() < 1e-4, "{lp}");
        assert!(lp[[0, 1]].abs() < 1e-6, "{lp}");
    }

    #[test]
    fn regression_values_and_counts_average() {
        let out = |v: f32| RawOutputs {
            embeddings: array![[v, -v]],
            target_prediction: Some(array![[v, 2.0 * v]]),
            class_probabilities: None,
            count_prediction: Some(array![[[v], [1.0]]]),
        };
        let m = mean_outputs(vec![out(1.0), out(4.0)]).unwrap();
        assert_eq!(m.target_prediction.unwrap(), array![[2.5, 5.0]]);
        assert_eq!(m.count_prediction.unwrap(), array![[[2.5], [1.0]]]);
        assert_eq!(m.embeddings, array![[2.5, -2.5]]);
        let mut other = out(1.0);
        other.target_prediction = Some(array![[1.0]]);
        let err = mean_outputs(vec![out(1.0), other]).unwrap_err().to_string();
        assert!(
            err.contains("differently shaped `target_prediction`"),
            "{err}"
        );
    }
}
