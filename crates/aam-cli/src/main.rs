//! `aam`: Attention All Microbes from the command line.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Attention All Microbes: a hierarchical transformer for 16S microbiome data.
#[derive(Parser)]
#[command(name = "aam", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show and validate a feature table, UniFrac matrices, Faith PD and metadata.
    Inspect(commands::inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
