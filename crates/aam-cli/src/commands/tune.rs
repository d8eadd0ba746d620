//! `aam tune`: hyper-parameter search over `aam train` or `aam pretrain`
//! ([`aam_train::tune`]); trials run as child processes of this binary.

use std::path::PathBuf;

use aam_train::tune::TuneOptions;
use anyhow::{Context, Result};
use clap::{Args, Parser};

/// Arguments of `aam tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Study file (TOML): command, fixed arguments ([args]), search space ([space]:
    /// log_uniform, uniform, int, choice), trials, parallel, sampler (tpe, random), pruner
    /// (median, none), metric and direction. Not needed with --resume.
    #[arg(long, required_unless_present = "resume")]
    study: Option<PathBuf>,
    /// Study directory: study.json (the resumable state), trials/NNNN (each trial's
    /// checkpoint and aam.log), results.tsv, best.toml and best.sh.
    #[arg(long)]
    output: PathBuf,
    /// Continue the study in --output: unfinished trials restart from their last epoch,
    /// then new trials run until the study has its number of trials.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace the study in --output (its trials are deleted).
    #[arg(long)]
    overwrite: bool,
}

/// Runs `aam tune`.
pub fn run(args: &TuneArgs) -> Result<()> {
    let options = TuneOptions {
        study: args.study.clone(),
        output: args.output.clone(),
        resume: args.resume,
        overwrite: args.overwrite,
        aam: std::env::current_exe().context("cannot locate the aam binary")?,
    };
    aam_train::tune::run(&options, &|words| {
        crate::Cli::try_parse_from(words)
            .map(|_| ())
            .map_err(|e| e.render().to_string())
    })
}
