//! The state of a study, `<output>/study.json`, rewritten atomically after every change so
//! that `aam tune --resume` continues where a stopped study left off; and what it reports:
//! `results.tsv`, `best.toml` and `best.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aam_data::files::{read_json, write_atomic, write_json};
use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::pruner::best_up_to;
use super::space::{value_text, Direction, StudyFile};

/// Where a trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Started and not finished (a stopped study restarts it when resumed).
    Running,
    /// Ran all its epochs (or stopped early by its own `--patience`).
    Complete,
    /// Stopped by the pruner.
    Pruned,
    /// Exited with an error, or logged no value of the metric.
    Failed,
}

impl TrialState {
    /// Its name in `study.json` and `results.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
        }
    }
}

/// One trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based; its output is `trials/<number, 4 digits>`.
    pub number: usize,
    /// The sampled options.
    pub params: BTreeMap<String, toml::Value>,
    /// Its state.
    pub state: TrialState,
    /// The metric's validation value of every epoch logged so far.
    pub values: Vec<f64>,
    /// Wall time of its process(es), s.
    pub seconds: f64,
    /// Why it failed (the last line of its log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Trial {
    /// Best value over its epochs and that epoch (1-based).
    pub fn best(&self, direction: Direction) -> Option<(f64, usize)> {
        let best = best_up_to(&self.values, self.values.len().checked_sub(1)?, direction)?;
        let epoch = self.values.iter().position(|v| *v == best)? + 1;
        Some((best, epoch))
    }
}

/// `study.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The study file as read when the study began.
    pub definition: StudyFile,
    /// Directory the trials run in (relative paths of `[args]` are relative to it).
    pub workdir: PathBuf,
    /// Every trial started so far, by number.
    pub trials: Vec<Trial>,
}

/// File name of the study state.
pub const STATE_FILE: &str = "study.json";

impl Study {
    /// Reads `dir/study.json`. Errors: unreadable or not a study state.
    pub fn load(dir: &Path) -> Result<Study> {
        read_json(&dir.join(STATE_FILE))
    }

    /// Writes `dir/study.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(STATE_FILE), self)
    }

    /// The output directory of trial `number`.
    pub fn trial_dir(dir: &Path, number: usize) -> PathBuf {
        dir.join("trials").join(format!("{number:04}"))
    }

    /// The completed trial with the best value (the first of equal ones).
    pub fn best(&self) -> Option<(&Trial, f64, usize)> {
        let direction = self.definition.direction;
        self.trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .filter_map(|t| t.best(direction).map(|(v, e)| (t, v, e)))
            .reduce(|a, b| {
                let better = match direction {
                    Direction::Minimize => b.1 < a.1,
                    Direction::Maximize => b.1 > a.1,
                };
                if better {
                    b
                } else {
                    a
                }
            })
    }

    /// `results.tsv`: one row per trial (number, state, best value, its epoch, epochs
    /// run, seconds, every parameter).
    pub fn results_tsv(&self) -> String {
        let names: Vec<&String> = self.definition.space.keys().collect();
        let metric = &self.definition.metric;
        let mut out = format!(
            "trial\tstate\tvalidation_{metric}\tbest_epoch\tepochs\tseconds\t{}\n",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join("\t")
        );
        for t in &self.trials {
            let (value, epoch) = t
                .best(self.definition.direction)
                .map_or((String::new(), String::new()), |(v, e)| {
                    (format!("{v}"), e.to_string())
                });
            let state = t.state.name();
            let params: Vec<String> = names
                .iter()
                .map(|n| t.params.get(*n).map(value_text).unwrap_or_default())
                .collect();
            out.push_str(&format!(
                "{}\t{state}\t{value}\t{epoch}\t{}\t{:.1}\t{}\n",
                t.number,
                t.values.len(),
                t.seconds,
                params.join("\t")
            ));
        }
        out
    }

    /// Writes `results.tsv` and, when a trial completed, `best.toml` (the best trial's
    /// full set of options) and `best.sh` (its command line, run by the binary `aam`,
    /// ready to run: output to its first argument, default `<dir>/best`). Returns the
    /// best trial's number.
    pub fn write_reports(&self, dir: &Path, aam: &Path) -> Result<Option<usize>> {
        write_atomic(&dir.join("results.tsv"), self.results_tsv().as_bytes())?;
        let Some((best, value, epoch)) = self.best() else {
            return Ok(None);
        };
        let d = &self.definition;
        let mut options: BTreeMap<String, toml::Value> = d.args.clone();
        options.extend(best.params.clone());
        let header = format!(
            "# Best trial of the study in {}: trial {}, validation {} = {value} at epoch {epoch}.\n",
            dir.display(),
            best.number,
            d.metric
        );
        let table = toml::to_string(&BestFile {
            command: d.command.clone(),
            options: options.clone(),
        })?;
        write_atomic(
            &dir.join("best.toml"),
            format!("{header}{table}").as_bytes(),
        )?;
        let mut words = vec![aam.display().to_string()];
        words.extend(d.trial_args(&best.params));
        let dir_abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let script = format!(
            "#!/bin/sh\n{header}# Usage: best.sh [OUTPUT] (default {best_dir}); relative paths are those of the study's directory.\nset -e\ncd {workdir}\nexec {command} --output \"${{1:-{best_dir}}}\"\n",
            best_dir = dir_abs.join("best").display(),
            workdir = shell_words::quote(&self.workdir.display().to_string()),
            command = shell_words::join(&words),
        );
        let path = dir.join("best.sh");
        write_atomic(&path, script.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Some(best.number))
    }
}

/// `best.toml`.
#[derive(Serialize)]
struct BestFile {
    command: String,
    options: BTreeMap<String, toml::Value>,
}
