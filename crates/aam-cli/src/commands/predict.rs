//! `aam predict`: predictions for every sample of a feature table with an exported model.

use std::io::Write;
use std::path::{Path, PathBuf};

use aam_runtime::{predict_with, Model, PredictOptions, Predictions};
use aam_train::checkpoint::write_atomic;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::burn_runner;

/// Where the built-in default model comes from (repository path).
const SHIPPED_MODEL: &str = "models/circadian-exposure";
/// The shipped model's ONNX graph, built into the binary.
static SHIPPED_ONNX: &[u8] = include_bytes!("../../../../models/circadian-exposure/model.onnx");
/// The shipped model's weights, built into the binary.
static SHIPPED_SAFETENSORS: &[u8] =
    include_bytes!("../../../../models/circadian-exposure/model.safetensors");

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The ONNX graph (`model.onnx`) through pure-Rust tract-onnx.
    Tract,
    /// The weights (`model.safetensors`) loaded back into the Burn model.
    Burn,
}

/// Arguments of `aam predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Exported model: a directory from `aam export`, or its model.onnx (tract) or
    /// model.safetensors (burn). Default: the shipped model `models/circadian-exposure`
    /// (built into the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON or TSV); observation IDs are ASV sequences.
    #[arg(long)]
    pub table: PathBuf,
    /// Predictions TSV to write; printed to standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write the sample embeddings (`embedding_0…`) to this TSV.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Replace existing --output / --embeddings files.
    #[arg(long)]
    pub overwrite: bool,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Worker threads (each runs whole batches).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Engine: tract (ONNX) or burn (safetensors).
    #[arg(long, value_enum, default_value = "tract")]
    pub backend: Backend,
}

/// The file of `model` for `backend`: a directory resolves to its model.onnx or
/// model.safetensors; a file of the other kind to its sibling.
fn model_file(model: &Path, backend: Backend) -> PathBuf {
    let name = file_name(backend);
    let wanted_ext = Path::new(name).extension();
    if model.is_dir() {
        model.join(name)
    } else if model.extension() == wanted_ext {
        model.to_path_buf()
    } else {
        model.with_file_name(name)
    }
}

/// The file of an export directory that `backend` reads.
fn file_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Tract => "model.onnx",
        Backend::Burn => "model.safetensors",
    }
}

fn check_writable(path: &Option<PathBuf>, overwrite: bool) -> Result<()> {
    if let Some(p) = path {
        if p.exists() && !overwrite {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another file",
                p.display()
            );
        }
    }
    Ok(())
}

/// Runs `aam predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    if args.batch_size == 0 || args.threads == 0 {
        bail!("--batch-size and --threads must be at least 1");
    }
    check_writable(&args.output, args.overwrite)?;
    check_writable(&args.embeddings, args.overwrite)?;
    let (table, format) = aam_data::load_table(&args.table)?;
    eprintln!(
        "table {} [{format}]: {} samples × {} ASVs",
        args.table.display(),
        table.n_samples(),
        table.n_asv()
    );
    let options = PredictOptions {
        batch_size: args.batch_size,
        threads: args.threads,
    };
    let path = match &args.model {
        Some(m) => model_file(m, args.backend),
        None => Path::new(SHIPPED_MODEL).join(file_name(args.backend)),
    };
    let origin = args.table.display().to_string();
    let preds: Predictions = match args.backend {
        Backend::Tract => {
            let model = match &args.model {
                Some(_) => Model::load(&path)?,
                None => Model::from_bytes(SHIPPED_ONNX, &path)?,
            };
            model.predict_table(table, &origin, options)?
        }
        Backend::Burn => {
            let (config, model) = match &args.model {
                Some(_) => burn_runner::load(&path)?,
                None => burn_runner::from_bytes(SHIPPED_SAFETENSORS, &path)?,
            };
            // One thread: the Burn CPU backend is used single-threaded (deterministic).
            let options = PredictOptions {
                threads: 1,
                ..options
            };
            predict_with(&config, table, &origin, options, &|t| model.run(t))?
        }
    };
    eprintln!("model {} ({:?} backend)", path.display(), args.backend);
    for w in &preds.warnings {
        eprintln!("warning: {w}");
    }
    let tsv = preds.to_tsv();
    match &args.output {
        Some(p) => {
            write_atomic(p, &tsv)?;
            eprintln!(
                "wrote {} predictions to {}",
                preds.samples.len(),
                p.display()
            );
        }
        None => std::io::stdout()
            .write_all(&tsv)
            .context("cannot write to standard output")?,
    }
    if let Some(p) = &args.embeddings {
        write_atomic(p, &preds.embeddings_tsv())?;
        eprintln!("wrote embeddings to {}", p.display());
    }
    Ok(())
}
