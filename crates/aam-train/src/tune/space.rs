//! The study file of `aam tune` (TOML): the command tuned, its fixed arguments, the search
//! space, the sampler, the pruner and the objective.
//!
//! ```toml
//! command = "train"            # or "pretrain"
//! trials = 20
//! parallel = 2                 # trials run at once
//! sampler = "tpe"              # or "random"
//! seed = 1
//! metric = "loss"              # a validation metric of metrics.jsonl
//! direction = "minimize"       # or "maximize"
//!
//! [pruner]
//! kind = "median"              # or "none"
//! startup_trials = 3           # finished trials before pruning starts
//! warmup_epochs = 1            # epochs of every trial never pruned
//!
//! [args]                       # every trial's arguments: long option names of the command
//! table = "data/circadian-ihc/table.biom"
//! metadata = "data/circadian-ihc/metadata.tsv"
//! metadata-column = "exposure_type"
//! epochs = 6
//!
//! [space]
//! lr = { log_uniform = [1e-4, 1e-2] }
//! dropout = { uniform = [0.0, 0.3] }
//! attention-layers = { int = [1, 3] }
//! embedding-dim = { choice = [16, 32, 64] }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One parameter's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Param {
    /// Real in `[low, high]`, sampled uniformly in log space (`0 < low < high`).
    LogUniform([f64; 2]),
    /// Real in `[low, high]`, sampled uniformly (`low < high`).
    Uniform([f64; 2]),
    /// Integer in `[low, high]`, both included (`low < high`).
    Int([i64; 2]),
    /// One of the listed values (at least two): numbers, strings or booleans.
    Choice(Vec<toml::Value>),
}

/// Which sampler proposes the next trial's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Tree-structured Parzen estimator (Bergstra et al. 2011), after random start-up trials.
    #[default]
    Tpe,
    /// Independent uniform draws.
    Random,
}

/// Whether the objective is minimized or maximized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smaller is better (losses, errors).
    #[default]
    Minimize,
    /// Larger is better (accuracy, R², AUC).
    Maximize,
}

/// Which trials stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrunerKind {
    /// A trial whose best value so far is worse than the median of the finished trials'
    /// best values at the same epoch is stopped (Optuna's MedianPruner).
    #[default]
    Median,
    /// Every trial runs all its epochs.
    None,
}

/// `[pruner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrunerSettings {
    /// The rule.
    #[serde(default)]
    pub kind: PrunerKind,
    /// Finished (completed) trials needed before any trial is pruned.
    #[serde(default = "default_startup")]
    pub startup_trials: usize,
    /// Epochs of every trial that are never pruned.
    #[serde(default = "default_warmup")]
    pub warmup_epochs: usize,
}

fn default_startup() -> usize {
    3
}
fn default_warmup() -> usize {
    1
}

impl Default for PrunerSettings {
    fn default() -> Self {
        PrunerSettings {
            kind: PrunerKind::Median,
            startup_trials: default_startup(),
            warmup_epochs: default_warmup(),
        }
    }
}

/// A study file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    /// `train` or `pretrain`.
    pub command: String,
    /// Trials in the study.
    pub trials: usize,
    /// Trials run at once (child processes).
    #[serde(default = "one")]
    pub parallel: usize,
    /// Sampler.
    #[serde(default)]
    pub sampler: SamplerKind,
    /// Random trials before TPE takes over; default `min(10, max(2, trials / 4))`.
    #[serde(default)]
    pub startup_trials: Option<usize>,
    /// Seed of the sampler (trials keep their own `seed` argument).
    #[serde(default)]
    pub seed: u64,
    /// The validation metric of `metrics.jsonl` optimized (its best epoch counts).
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Minimize or maximize `metric`.
    #[serde(default)]
    pub direction: Direction,
    /// Pruning.
    #[serde(default)]
    pub pruner: PrunerSettings,
    /// Fixed arguments of every trial: long option name → value (`true` for a flag).
    #[serde(default)]
    pub args: BTreeMap<String, toml::Value>,
    /// The search space: long option name → range.
    pub space: BTreeMap<String, Param>,
}

fn one() -> usize {
    1
}
fn default_metric() -> String {
    "loss".into()
}

/// Options `aam tune` sets itself for every trial.
const MANAGED: [&str; 4] = ["output", "resume", "overwrite", "quiet"];

impl StudyFile {
    /// Reads and checks `path`. Errors: unreadable file, TOML or field errors (with the
    /// line), and the checks of [`StudyFile::check`].
    pub fn load(path: &Path) -> Result<StudyFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the study file {}", path.display()))?;
        let file: StudyFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid study file", path.display()))?;
        file.check()
            .with_context(|| format!("{}: invalid study", path.display()))?;
        Ok(file)
    }

    /// The checks beyond the TOML's shape: a known command, at least one trial, ranges
    /// with `low < high` (`0 < low` for log_uniform), two or more choices, no option both
    /// fixed and searched, none of the options `aam tune` sets.
    pub fn check(&self) -> Result<()> {
        if self.command != "train" && self.command != "pretrain" {
            bail!("command = \"{}\": aam tune runs \"train\" or \"pretrain\"", self.command);
        }
        if self.trials == 0 || self.parallel == 0 {
            bail!("trials and parallel must be at least 1");
        }
        if self.space.is_empty() {
            bail!("[space] is empty: name at least one option to search");
        }
        for key in self.args.keys().chain(self.space.keys()) {
            if MANAGED.contains(&key.as_str()) {
                bail!("'{key}' is set by aam tune for every trial (each trial writes to <study>/trials/NNNN); leave it out");
            }
            if key.starts_with('-') {
                bail!("'{key}': name options without their dashes ('{}')", key.trim_start_matches('-'));
            }
        }
        for (key, param) in &self.space {
            if self.args.contains_key(key) {
                bail!("'{key}' is both in [args] and in [space]; keep one");
            }
            let ok = match param {
                Param::LogUniform([lo, hi]) => 0.0 < *lo && lo < hi,
                Param::Uniform([lo, hi]) => lo < hi && lo.is_finite() && hi.is_finite(),
                Param::Int([lo, hi]) => lo < hi,
                Param::Choice(values) => values.len() >= 2,
            };
            if !ok {
                bail!("[space] {key} = {param:?}: a range needs low < high (and 0 < low for log_uniform), a choice at least two values");
            }
        }
        Ok(())
    }

    /// The command-line arguments of a trial: the command, `[args]`, then `params`
    /// (`--name value`, a `true` flag as `--name`, a `false` one left out).
    pub fn trial_args(&self, params: &BTreeMap<String, toml::Value>) -> Vec<String> {
        let mut out = vec![self.command.clone()];
        for (key, value) in self.args.iter().chain(params) {
            push_option(&mut out, key, value);
        }
        out
    }

    /// Random start-up trials of the TPE sampler.
    pub fn tpe_startup(&self) -> usize {
        self.startup_trials
            .unwrap_or_else(|| (self.trials / 4).clamp(2, 10))
    }
}

fn push_option(out: &mut Vec<String>, key: &str, value: &toml::Value) {
    match value {
        toml::Value::Boolean(true) => out.push(format!("--{key}")),
        toml::Value::Boolean(false) => {}
        toml::Value::Array(items) => {
            // A list option (e.g. devices): comma-separated, clap's value delimiter.
            out.push(format!("--{key}"));
            out.push(items.iter().map(value_text).collect::<Vec<_>>().join(","));
        }
        other => {
            out.push(format!("--{key}"));
            out.push(value_text(other));
        }
    }
}

/// A TOML value as a command-line value (strings unquoted, floats in their shortest
/// round-tripping form).
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
command = "train"
trials = 8
parallel = 2
metric = "accuracy"
direction = "maximize"
[pruner]
startup_trials = 2
[args]
table = "t.biom"
metadata-column = "exposure_type"
epochs = 4
class-weights = true
[space]
lr = { log_uniform = [1e-4, 1e-2] }
dropout = { uniform = [0.0, 0.3] }
attention-layers = { int = [1, 3] }
embedding-dim = { choice = [16, 32] }
"#;

    #[test]
    fn reads_the_example() {
        let s: StudyFile = toml::from_str(EXAMPLE).unwrap();
        s.check().unwrap();
        assert_eq!(s.space["lr"], Param::LogUniform([1e-4, 1e-2]));
        assert_eq!(s.space["attention-layers"], Param::Int([1, 3]));
        assert_eq!(s.pruner.kind, PrunerKind::Median);
        assert_eq!((s.pruner.startup_trials, s.pruner.warmup_epochs), (2, 1));
        assert_eq!(s.direction, Direction::Maximize);
        assert_eq!(s.tpe_startup(), 2);
        let params = BTreeMap::from([
            ("lr".to_string(), toml::Value::Float(0.0025)),
            ("embedding-dim".to_string(), toml::Value::Integer(32)),
        ]);
        assert_eq!(
            s.trial_args(&params),
            [
                "train", "--class-weights", "--epochs", "4", "--metadata-column",
                "exposure_type", "--table", "t.biom", "--embedding-dim", "32", "--lr", "0.0025"
            ]
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let bad = |edit: &str| -> String {
            let text = format!("{EXAMPLE}\n{edit}");
            match toml::from_str::<StudyFile>(&text) {
                Ok(s) => format!("{:#}", s.check().unwrap_err()),
                Err(e) => e.to_string(),
            }
        };
        assert!(bad("seed-dim = { int = [3, 1] }").contains("low < high"));
        assert!(bad("output = { choice = [\"a\", \"b\"] }").contains("set by aam tune"));
        assert!(bad("epochs = { int = [1, 3] }").contains("both in [args] and in [space]"));
        assert!(bad("x = { normal = [0, 1] }").contains("unknown variant"));
        let wrong_command = EXAMPLE.replace("command = \"train\"", "command = \"predict\"");
        let s: StudyFile = toml::from_str(&wrong_command).unwrap();
        assert!(s.check().unwrap_err().to_string().contains("\"train\" or \"pretrain\""));
    }
}
