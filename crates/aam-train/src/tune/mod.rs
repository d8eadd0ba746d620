//! `aam tune`: hyper-parameter search over `aam train` or `aam pretrain`.
//!
//! The study file ([`space`]) names the command, its fixed arguments and the search space.
//! Trials run as child `aam` processes, `parallel` at a time, each writing its checkpoint
//! into `<output>/trials/NNNN` (log in `aam.log`); the parent reads every trial's
//! `metrics.jsonl` as it grows, stops trials the pruner ([`pruner`]) rejects, and asks the
//! sampler ([`sampler`]) for the next trial's parameters. The study's state is
//! `<output>/study.json` ([`study`]): `--resume` continues a stopped study, restarting
//! its unfinished trials from their last epoch.

pub mod pruner;
pub mod sampler;
pub mod space;
pub mod study;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aam_data::files::read_metrics_log;
use anyhow::{bail, Context, Result};

use sampler::Observation;
use space::{Direction, StudyFile};
use study::{Study, Trial, TrialState, STATE_FILE};

/// Parses a trial's command line (`aam`, the command, its options) as the `aam` binary
/// would, or says why it cannot (clap's message).
pub type CommandLineCheck<'a> = dyn Fn(&[String]) -> std::result::Result<(), String> + 'a;

/// What `aam tune` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuneOptions {
    /// Study file (TOML, [`space::StudyFile`]); not needed with `resume`.
    pub study: Option<PathBuf>,
    /// Study directory: `study.json` (the resumable state), `trials/NNNN` (each trial's
    /// checkpoint and `aam.log`), `results.tsv`, `best.toml` and `best.sh`.
    pub output: PathBuf,
    /// Continue the study in `output`.
    pub resume: bool,
    /// Replace the study in `output` (its trials are deleted).
    pub overwrite: bool,
    /// The `aam` binary each trial runs (`aam train` or `aam pretrain` with the trial's
    /// arguments), and that `best.sh` names.
    pub aam: PathBuf,
}

/// How often running trials are looked at.
const POLL: Duration = Duration::from_millis(250);

/// A trial's child process.
struct Running {
    number: usize,
    child: Child,
    started: Instant,
    /// Seconds of earlier processes of this trial (a resumed study).
    seconds_before: f64,
}

/// Runs the study of `args` to its end, or continues it with `resume`.
///
/// Errors: a study file that cannot be read or checked; an `output` that holds a study
/// (without `resume` or `overwrite`) or none to resume; a study file that differs from
/// the one being resumed; a trial that cannot be started.
pub fn run(args: &TuneOptions, check_args: &CommandLineCheck<'_>) -> Result<()> {
    let dir = &args.output;
    let state_path = dir.join(STATE_FILE);
    let mut study = if args.resume {
        if !state_path.exists() {
            bail!(
                "{}: no study to resume (no {STATE_FILE}); start one with --study",
                dir.display()
            );
        }
        let study = Study::load(dir)?;
        if let Some(path) = &args.study {
            let file = StudyFile::load(path)?;
            if file != study.definition {
                bail!("{} differs from the study in {} ({STATE_FILE}); resume without --study, or start a new study with --overwrite", path.display(), dir.display());
            }
        }
        study
    } else {
        if state_path.exists() && !args.overwrite {
            bail!("{} already holds a study; pass --resume to continue it, --overwrite to replace it, or choose another --output", dir.display());
        }
        let path = args.study.as_ref().context("--study is required")?;
        let definition = StudyFile::load(path)?;
        if args.overwrite {
            for old in [STATE_FILE, "results.tsv", "best.toml", "best.sh"] {
                let _ = std::fs::remove_file(dir.join(old));
            }
            let trials = dir.join("trials");
            if trials.exists() {
                std::fs::remove_dir_all(&trials)
                    .with_context(|| format!("cannot remove {}", trials.display()))?;
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Study {
            definition,
            workdir: std::env::current_dir().context("cannot read the current directory")?,
            trials: Vec::new(),
        }
    };
    check_command_line(&study.definition, check_args)?;
    study.save(dir)?;
    let d = study.definition.clone();
    eprintln!(
        "study {}: {} trials of `aam {}` ({} at a time), {} sampler, {} validation {}, {} pruner",
        dir.display(),
        d.trials,
        d.command,
        d.parallel,
        match d.sampler {
            space::SamplerKind::Tpe => "TPE",
            space::SamplerKind::Random => "random",
        },
        match d.direction {
            Direction::Minimize => "minimizing",
            Direction::Maximize => "maximizing",
        },
        d.metric,
        match d.pruner.kind {
            space::PrunerKind::Median => "median",
            space::PrunerKind::None => "no",
        }
    );

    // Trials a stopped study left running restart first (from their last epoch).
    let mut restart: Vec<usize> = study
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Running)
        .map(|t| t.number)
        .collect();
    let mut running: Vec<Running> = Vec::new();
    loop {
        while running.len() < d.parallel {
            let number = if !restart.is_empty() {
                restart.remove(0)
            } else if study.trials.len() < d.trials {
                let number = study.trials.len();
                let params = sampler::propose(
                    &d.space,
                    d.sampler,
                    d.tpe_startup(),
                    &observations(&study),
                    d.seed,
                    number,
                )?;
                study.trials.push(Trial {
                    number,
                    params,
                    state: TrialState::Running,
                    values: Vec::new(),
                    seconds: 0.0,
                    message: None,
                });
                number
            } else {
                break;
            };
            running.push(start_trial(&study, dir, number, &args.aam)?);
            study.save(dir)?;
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(POLL);
        let mut i = 0;
        while i < running.len() {
            match poll_trial(&mut study, dir, &mut running[i]) {
                Ok(true) => {
                    running.swap_remove(i);
                    study.save(dir)?;
                }
                Ok(false) => i += 1,
                Err(e) => {
                    // The study stops (a metric it cannot find): so do its other trials,
                    // left `running` in study.json for --resume.
                    for other in &mut running {
                        let _ = other.child.kill();
                        let _ = other.child.wait();
                    }
                    study.save(dir)?;
                    return Err(e);
                }
            }
        }
    }
    study.save(dir)?;
    let best = study.write_reports(dir, &args.aam)?;
    report(&study, dir, best);
    if best.is_none() {
        bail!(
            "no trial of the study completed; see the trials' aam.log files under {}",
            dir.join("trials").display()
        );
    }
    Ok(())
}

/// Checks that `[args]` and `[space]` make a valid command line before any trial runs
/// (with the first value of every range), so a typo fails at once: `parse` parses the
/// words (`aam`, the command, its options) as the `aam` binary would, or says why not.
fn check_command_line(d: &StudyFile, parse: &CommandLineCheck<'_>) -> Result<()> {
    let sample = sampler::propose(&d.space, space::SamplerKind::Random, 0, &[], 0, 0)?;
    let mut words = vec!["aam".to_string()];
    words.extend(d.trial_args(&sample));
    words.extend([
        "--output".into(),
        "trial".into(),
        "--quiet".into(),
        "--overwrite".into(),
    ]);
    parse(&words).map_err(|e| {
        anyhow::anyhow!(
            "the study's [args] and [space] do not make a valid `aam {}` command line (option names are the command's long options without dashes):\n{e}",
            d.command,
        )
    })?;
    Ok(())
}

/// What the sampler learns from: completed trials at their best value, pruned ones at
/// their best value so far (maximized metrics negated).
fn observations(study: &Study) -> Vec<Observation> {
    let direction = study.definition.direction;
    study
        .trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
        .filter_map(|t| {
            let (best, _) = t.best(direction)?;
            Some(Observation {
                params: t.params.clone(),
                loss: match direction {
                    Direction::Minimize => best,
                    Direction::Maximize => -best,
                },
            })
        })
        .collect()
}

/// Starts trial `number` as a child `aam` process (continuing its checkpoint when it has
/// a completed epoch, as after a stopped study).
fn start_trial(study: &Study, dir: &Path, number: usize, aam: &Path) -> Result<Running> {
    let trial = &study.trials[number];
    let out = Study::trial_dir(dir, number);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let resume = crate::resume_file::exists(&out);
    let log_path = out.join("aam.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(aam);
    command
        .args(study.definition.trial_args(&trial.params))
        .arg("--output")
        .arg(std::path::absolute(&out)?)
        .arg("--quiet")
        .arg(if resume { "--resume" } else { "--overwrite" })
        .current_dir(&study.workdir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Trials share the cores: each one's thread pool gets its share (unless set).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        command.env(
            "RAYON_NUM_THREADS",
            (cores / study.definition.parallel).max(1).to_string(),
        );
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start trial {number}"))?;
    eprintln!(
        "trial {number} {}: {}",
        if resume { "resumed" } else { "started" },
        trial
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", space::value_text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Running {
        number,
        child,
        started: Instant::now(),
        seconds_before: trial.seconds,
    })
}

/// Reads the metric of every epoch in `dir/metrics.jsonl`. Errors: a line that is not
/// JSON; an epoch without `validation.<metric>` (the message lists the metrics there).
fn read_values(out: &Path, metric: &str) -> Result<Vec<f64>> {
    let path = out.join("metrics.jsonl");
    if !path.exists() {
        return Ok(Vec::new()); // no epoch yet
    }
    let mut values = Vec::new();
    // A line being written has no newline yet: only complete lines are read.
    for record in read_metrics_log(&path)? {
        let validation = &record["validation"];
        let value = validation[metric].as_f64().with_context(|| {
            let names: Vec<&String> = validation
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            format!(
                "metric = \"{metric}\": the trials log no such validation metric (they log: {}); set `metric` in the study file to one of them",
                names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        values.push(value);
    }
    Ok(values)
}

/// Looks at a running trial: new epochs, pruning, exit. Returns whether it has ended.
/// Errors: its log lacks the study's metric (the trial is marked failed; the caller saves
/// the study and stops it).
fn poll_trial(study: &mut Study, dir: &Path, run: &mut Running) -> Result<bool> {
    let Study {
        definition: d,
        trials,
        ..
    } = study;
    let out = Study::trial_dir(dir, run.number);
    let exited = run.child.try_wait()?;
    let values = read_values(&out, &d.metric);
    trials[run.number].seconds = run.seconds_before + run.started.elapsed().as_secs_f64();
    let values = match values {
        Ok(v) => v,
        Err(e) => {
            // The metric is missing: every trial would miss it.
            let _ = run.child.kill();
            let _ = run.child.wait();
            let trial = &mut trials[run.number];
            trial.state = TrialState::Failed;
            trial.message = Some(format!("{e:#}"));
            return Err(e);
        }
    };
    // The pruner decides at every logged epoch, in order, whether or not this poll came
    // while the trial was still running: a trial that logged several epochs (or ended)
    // between two polls is judged at each of them against the trials completed now, so
    // a fast trial cannot outrun the pruner. A trial pruned after it ran past that epoch
    // keeps its later checkpoints; its log and record stop at the epoch it was pruned at.
    let completed: Vec<&[f64]> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .map(|t| t.values.as_slice())
        .collect();
    let seen = trials[run.number].values.len();
    let prune_at = (seen..values.len())
        .find(|&e| pruner::should_prune(&d.pruner, d.direction, &values[..=e], &completed));
    let trial = &mut trials[run.number];
    trial.values = values;
    if let Some(epoch) = prune_at {
        // Checkpoints are written atomically: killing the trial leaves them intact. What
        // it logged past the epoch it was pruned at is dropped from its log and record.
        let _ = run.child.kill();
        let _ = run.child.wait();
        trial.values.truncate(epoch + 1);
        crate::resume_file::trim_metrics(&out, epoch + 1)?;
        trial.state = TrialState::Pruned;
        eprintln!("{}", trial_line(trial, d));
        return Ok(true);
    }
    if let Some(status) = exited {
        if status.success() {
            if trial.values.is_empty() {
                trial.state = TrialState::Failed;
                trial.message = Some("it logged no epoch".into());
            } else {
                trial.state = TrialState::Complete;
            }
        } else {
            trial.state = TrialState::Failed;
            trial.message = Some(last_line(&out.join("aam.log")));
        }
        eprintln!("{}", trial_line(trial, d));
        return Ok(true);
    }
    Ok(false)
}

fn trial_line(t: &Trial, d: &StudyFile) -> String {
    let state = match t.state {
        TrialState::Failed => "FAILED",
        other => other.name(),
    };
    let best = t.best(d.direction).map_or(String::new(), |(v, e)| {
        format!(", best validation {} {v:.4} at epoch {e}", d.metric)
    });
    let why = t
        .message
        .as_ref()
        .map_or(String::new(), |m| format!(": {m}"));
    format!(
        "trial {} {state} after {} epochs ({:.1} s){best}{why}",
        t.number,
        t.values.len(),
        t.seconds
    )
}

fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("no output; see {}", path.display()))
}

fn report(study: &Study, dir: &Path, best: Option<usize>) {
    let count = |s: TrialState| study.trials.iter().filter(|t| t.state == s).count();
    eprintln!(
        "study done: {} complete, {} pruned, {} failed; results in {}",
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Failed),
        dir.join("results.tsv").display()
    );
    if let Some((t, value, epoch)) = best.and_then(|_| study.best()) {
        eprintln!(
            "best: trial {} (validation {} {value:.4} at epoch {epoch}): {}",
            t.number,
            study.definition.metric,
            t.params
                .iter()
                .map(|(k, v)| format!("--{k} {}", space::value_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        );
        eprintln!("run it again: {}", dir.join("best.sh").display());
    }
}
