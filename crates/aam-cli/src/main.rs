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
    /// Pretrain the sequence encoder on UniFrac distances and masked nucleotides.
    Pretrain(commands::pretrain::PretrainArgs),
    /// Train (fine-tune) a predictor on a metadata column.
    Train(commands::train::TrainArgs),
    /// Hyper-parameter search over `train` or `pretrain`: a TOML search space, TPE or
    /// random sampling, median pruning, parallel trials, a resumable study.
    Tune(commands::tune::TuneArgs),
    /// Convert a reference PyTorch AAM state dict into an aam checkpoint.
    ImportTorch(commands::import_torch::ImportTorchArgs),
    /// Run one eval-mode forward pass on a token array and write every output.
    Forward(commands::forward::ForwardArgs),
    /// Export a checkpoint as model.safetensors, model.onnx and the split graphs.
    Export(commands::export::ExportArgs),
    /// Predict every sample of a feature table with an exported model.
    Predict(commands::predict::PredictArgs),
    /// Evaluate a predictor against known targets: metrics with bootstrap confidence
    /// intervals, per-sample errors, error correlations and plots.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// The classical baseline: a random forest on relative abundances, scored like
    /// `evaluate` on the validation samples of a split.
    Baseline(commands::baseline::BaselineArgs),
    /// Per-ASV importance of a predictor (integrated gradients, target pooling weights,
    /// or permutation: loss increase when an ASV's counts are shuffled), aggregated and
    /// per sample.
    Importance(commands::importance::ImportanceArgs),
    /// Attention weights of every stack, layer and head and the pooling weights of chosen
    /// samples: TSV tables and heatmaps.
    Attention(commands::attention::AttentionArgs),
    /// Pretrain → train → export → evaluate → baseline on the standard datasets with
    /// fixed seeds, and a Markdown report (model next to the random forest).
    Benchmark(commands::benchmark::BenchmarkArgs),
    /// A beta-diversity matrix computed from a table (Bray-Curtis, Jaccard, robust
    /// Aitchison) as .npy with its sample IDs: the --distance targets.
    Distance(commands::distance::DistanceArgs),
    /// Measure inference speed and memory of each backend, with and without the ASV cache.
    Bench(commands::speed::BenchArgs),
    /// Serve a model over HTTP: KServe v2 endpoints, ASV sequences with counts, dynamic
    /// batching, Prometheus metrics.
    Serve(commands::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Pretrain(args) => commands::pretrain::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Tune(args) => commands::tune::run(&args),
        Command::ImportTorch(args) => commands::import_torch::run(&args),
        Command::Forward(args) => commands::forward::run(&args),
        Command::Export(args) => commands::export::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Evaluate(args) => commands::evaluate::run(&args),
        Command::Baseline(args) => commands::baseline::run(&args),
        Command::Importance(args) => commands::importance::run(&args),
        Command::Attention(args) => commands::attention::run(&args),
        Command::Benchmark(args) => commands::benchmark::run(&args),
        Command::Distance(args) => commands::distance::run(&args),
        Command::Bench(args) => commands::speed::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
