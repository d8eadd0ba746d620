//! `aam export`: a checkpoint's best weights as `model.safetensors`, `model.onnx`, and the
//! same model split as `asv_encoder.onnx` + `sample_model.onnx` ([`aam_export::write_export`]);
//! several checkpoints as an ensemble ([`aam_export::write_ensemble`]).

use std::path::PathBuf;

use aam_export::{ExportOptions, GraphPart, WrittenExport};
use anyhow::{bail, Context, Result};
use clap::Args;

/// Arguments of `aam export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint directory (from `aam train`, `aam pretrain` or `aam import-torch`).
    /// Give it several times for an ensemble: each checkpoint is exported into
    /// `<output>/member-K/` beside an `ensemble.json`, and the runtime averages the
    /// members (fine-tuned with the same settings and split, differing in --seed).
    #[arg(long, required = true, num_args = 1..)]
    pub checkpoint: Vec<PathBuf>,
    /// Directory to write `model.onnx` and `model.safetensors` into (created if absent);
    /// for an ensemble, `member-K/` and `ensemble.json`.
    #[arg(long)]
    pub output: PathBuf,
    /// ONNX opset (17 to 21).
    #[arg(long, default_value_t = aam_export::DEFAULT_OPSET)]
    pub opset: i64,
    /// Export `last.safetensors` (the latest epoch) instead of the best `model.safetensors`.
    #[arg(long)]
    pub last: bool,
    /// Replace an existing export in --output (and the --triton model).
    #[arg(long)]
    pub overwrite: bool,
    /// Also write a Triton Inference Server model repository here:
    /// `<DIR>/<--triton-name>/config.pbtxt`, `1/model.onnx` and, for classifiers,
    /// `labels.txt`.
    #[arg(long)]
    pub triton: Option<PathBuf>,
    /// Model name in the Triton repository.
    #[arg(long, default_value = "aam", requires = "triton")]
    pub triton_name: String,
    /// Triton's `max_batch_size` (samples per batch it forms).
    #[arg(long, default_value_t = 64, requires = "triton")]
    pub triton_max_batch: usize,
    /// Dynamic batching's longest wait to fill a batch, in microseconds.
    #[arg(long, default_value_t = 500, requires = "triton")]
    pub triton_max_delay_us: u64,
    /// Add the TensorRT accelerator (GPU instances).
    #[arg(long, requires = "triton")]
    pub triton_tensorrt: bool,
    /// TensorRT in FP16 precision.
    #[arg(long, requires = "triton_tensorrt")]
    pub triton_fp16: bool,
    /// CPU instances (`KIND_CPU`) instead of GPU ones.
    #[arg(long, requires = "triton", conflicts_with = "triton_tensorrt")]
    pub triton_cpu: bool,
}

/// Refuses a bad `--triton-name`, a zero `--triton-max-batch` or an existing Triton
/// model without `--overwrite`, before anything is written.
fn check_triton(args: &ExportArgs) -> Result<()> {
    let Some(repo) = &args.triton else {
        return Ok(());
    };
    let name = &args.triton_name;
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!(
            "--triton-name '{name}': start with a letter or digit, then letters, digits, '-', '_' or '.' (it names a folder and the model in Triton's URLs)"
        );
    }
    if args.triton_max_batch == 0 {
        bail!("--triton-max-batch must be at least 1 (Triton's max_batch_size; the graph has a dynamic batch axis)");
    }
    let dir = repo.join(name);
    if !args.overwrite {
        for p in [dir.join("config.pbtxt"), dir.join("1").join("model.onnx")] {
            if p.exists() {
                bail!(
                    "{} already exists; pass --overwrite to replace it or choose another --triton-name",
                    p.display()
                );
            }
        }
    }
    Ok(())
}

/// Writes the Triton model repository of `--triton` for the exported `onnx` bytes
/// (checked by [`check_triton`] first).
fn write_triton(args: &ExportArgs, onnx: &[u8], labels: Option<&[String]>) -> Result<()> {
    let Some(repo) = &args.triton else {
        return Ok(());
    };
    let dir = repo.join(&args.triton_name);
    let config_path = dir.join("config.pbtxt");
    let options = aam_export::triton::TritonOptions {
        name: args.triton_name.clone(),
        max_batch_size: args.triton_max_batch,
        max_queue_delay_us: args.triton_max_delay_us,
        tensorrt: args.triton_tensorrt,
        tensorrt_fp16: args.triton_fp16,
        gpu: !args.triton_cpu,
    };
    let labels = labels.filter(|l| !l.is_empty());
    let config = aam_export::triton::config_pbtxt(onnx, &options, labels.is_some())?;
    std::fs::create_dir_all(dir.join("1"))
        .with_context(|| format!("cannot create {}", dir.join("1").display()))?;
    aam_data::files::write_atomic(&dir.join("1").join("model.onnx"), onnx)?;
    if let Some(labels) = labels {
        let mut text = labels.join("\n");
        text.push('\n');
        aam_data::files::write_atomic(&dir.join("labels.txt"), text.as_bytes())?;
    }
    aam_data::files::write_atomic(&config_path, config.as_bytes())?;
    println!(
        "Triton model repository: {} (model '{}', max batch {}{})",
        repo.display(),
        args.triton_name,
        args.triton_max_batch,
        if args.triton_tensorrt {
            ", TensorRT"
        } else {
            ""
        }
    );
    Ok(())
}

/// Runs `aam export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    if args.triton.is_some() && args.checkpoint.len() > 1 {
        bail!("--triton writes one model; export each member of the ensemble on its own");
    }
    check_triton(args)?;
    let options = ExportOptions {
        opset: args.opset,
        last: args.last,
        overwrite: args.overwrite,
    };
    if let [checkpoint] = args.checkpoint.as_slice() {
        let written = aam_export::write_export(checkpoint, &args.output, &options)?;
        print_written(&written, args.opset);
        let labels = written
            .config
            .target
            .as_ref()
            .filter(|t| t.kind == aam_data::TargetKind::Categorical)
            .map(|t| t.classes.as_slice());
        return write_triton(args, &written.onnx.1, labels);
    }
    let written = aam_export::write_ensemble(&args.checkpoint, &args.output, &options)?;
    for w in &written {
        print_written(w, args.opset);
    }
    println!(
        "ensemble of {} members: {}",
        written.len(),
        args.output.join(aam_config::ENSEMBLE_FILE).display()
    );
    Ok(())
}

fn print_written(w: &WrittenExport, opset: i64) {
    let kind = match (&w.config.kind, &w.config.target) {
        (aam_config::ModelKind::Encoder, _) => "encoder (embeddings)".to_string(),
        (_, Some(t)) => format!(
            "predictor of '{}' ({})",
            t.column,
            format!("{:?}", t.kind).to_lowercase()
        ),
        (_, None) => "predictor".into(),
    };
    let ((onnx_path, onnx), (st_path, st_len)) = (&w.onnx, &w.safetensors);
    println!(
        "exported {kind} from {}: {} ({:.1} KiB, opset {opset}), {} ({:.1} KiB), and {} + {} (the same model split for the ASV-embedding cache)",
        w.weights.display(),
        onnx_path.display(),
        onnx.len() as f64 / 1024.0,
        st_path.display(),
        *st_len as f64 / 1024.0,
        GraphPart::AsvEncoder.file_name(),
        GraphPart::SampleModel.file_name()
    );
}
