//! `aam export`: a checkpoint's best weights as `model.safetensors` and `model.onnx`.

use std::path::PathBuf;

use aam_model::WeightMap;
use aam_train::checkpoint;
use anyhow::{bail, Context, Result};
use clap::Args;

/// Arguments of `aam export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint directory (from `aam train`, `aam pretrain` or `aam import-torch`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory to write `model.onnx` and `model.safetensors` into (created if absent).
    #[arg(long)]
    pub output: PathBuf,
    /// ONNX opset (17 to 21).
    #[arg(long, default_value_t = aam_export::DEFAULT_OPSET)]
    pub opset: i64,
    /// Export `last.safetensors` (the latest epoch) instead of the best `model.safetensors`.
    #[arg(long)]
    pub last: bool,
    /// Replace an existing export in --output.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `aam export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let config = checkpoint::load_config(&args.checkpoint)?;
    let file = if args.last {
        "last.safetensors"
    } else {
        "model.safetensors"
    };
    let weights_path = args.checkpoint.join(file);
    let w = WeightMap::load(&weights_path)?;
    let onnx = aam_export::onnx_bytes(&config, &w, args.opset)
        .with_context(|| format!("cannot export {}", weights_path.display()))?;
    let st = aam_export::safetensors_bytes(&config, &w)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let onnx_path = args.output.join("model.onnx");
    let st_path = args.output.join("model.safetensors");
    if !args.overwrite {
        if let Some(p) = [&onnx_path, &st_path].into_iter().find(|p| p.exists()) {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --output",
                p.display()
            );
        }
    }
    checkpoint::write_atomic(&onnx_path, &onnx)?;
    checkpoint::write_atomic(&st_path, &st)?;
    let kind = match config.kind {
        aam_train::ModelKind::Encoder => "encoder (embeddings)".to_string(),
        aam_train::ModelKind::Predictor => match &config.target {
            Some(t) => format!(
                "predictor of '{}' ({})",
                t.column,
                format!("{:?}", t.kind).to_lowercase()
            ),
            None => "predictor".into(),
        },
    };
    println!(
        "exported {kind} from {}: {} ({:.1} KiB, opset {}) and {} ({:.1} KiB)",
        weights_path.display(),
        onnx_path.display(),
        onnx.len() as f64 / 1024.0,
        args.opset,
        st_path.display(),
        st.len() as f64 / 1024.0
    );
    Ok(())
}
