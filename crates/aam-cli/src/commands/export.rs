//! `aam export`: a checkpoint's best weights as `model.safetensors`, `model.onnx`, and the
//! same model split as `asv_encoder.onnx` + `sample_model.onnx`.

use std::path::PathBuf;

use aam_export::GraphPart;
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
    // model.onnx, then the same model split for the ASV-embedding cache.
    let parts = [
        GraphPart::Full,
        GraphPart::AsvEncoder,
        GraphPart::SampleModel,
    ];
    let mut graphs = Vec::new();
    for part in parts {
        let bytes = aam_export::onnx_part_bytes(&config, &w, args.opset, part)
            .with_context(|| format!("cannot export {}", weights_path.display()))?;
        graphs.push((args.output.join(part.file_name()), bytes));
    }
    let st = aam_export::safetensors_bytes(&config, &w)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let st_path = args.output.join("model.safetensors");
    if !args.overwrite {
        let mut targets = graphs.iter().map(|(p, _)| p).chain([&st_path]);
        if let Some(p) = targets.find(|p| p.exists()) {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --output",
                p.display()
            );
        }
    }
    for (path, bytes) in &graphs {
        checkpoint::write_atomic(path, bytes)?;
    }
    checkpoint::write_atomic(&st_path, &st)?;
    let (onnx_path, onnx) = &graphs[0];
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
        "exported {kind} from {}: {} ({:.1} KiB, opset {}), {} ({:.1} KiB), and {} + {} (the same model split for the ASV-embedding cache)",
        weights_path.display(),
        onnx_path.display(),
        onnx.len() as f64 / 1024.0,
        args.opset,
        st_path.display(),
        st.len() as f64 / 1024.0,
        GraphPart::AsvEncoder.file_name(),
        GraphPart::SampleModel.file_name()
    );
    Ok(())
}
