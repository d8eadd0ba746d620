//! `aam import-torch`: convert a reference PyTorch AAM state dict into a checkpoint of
//! this project, for users migrating their models.

use std::path::PathBuf;

use aam_config::{CheckpointConfig, DataSettings, ModelKind};
use aam_model::model::is_predictor_state_dict;
use aam_model::{AamModel, CpuBackend, ModelConfig, SequenceEncoder, SequencePredictor, WeightMap};
use aam_train::checkpoint;
use anyhow::{bail, Context, Result};
use clap::Args;

/// Arguments of `aam import-torch`.
#[derive(Args, Debug)]
pub struct ImportTorchArgs {
    /// The reference model's state dict as safetensors (PyTorch key names; `_orig_mod.` and
    /// `module.` prefixes are stripped; F16/BF16/F64 are converted to F32).
    #[arg(long)]
    pub state_dict: PathBuf,
    /// JSON of the reference `SequencePredictor` / `SequenceEncoder` constructor arguments.
    #[arg(long)]
    pub config: PathBuf,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace an existing checkpoint in --output.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `aam import-torch`.
pub fn run(args: &ImportTorchArgs) -> Result<()> {
    if args.output.join("config.json").exists() && !args.overwrite {
        bail!("{} already holds a checkpoint; pass --overwrite to replace it or choose another --output", args.output.display());
    }
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let model = ModelConfig::from_reference_json(&text).with_context(|| {
        format!(
            "{}: not a reference model configuration",
            args.config.display()
        )
    })?;
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let weights = WeightMap::load(&args.state_dict)?;
    let device = Default::default();
    let kind = if is_predictor_state_dict(&weights) {
        ModelKind::Predictor
    } else {
        ModelKind::Encoder
    };
    let config = CheckpointConfig {
        format_version: aam_config::FORMAT_VERSION,
        kind,
        model: model.clone(),
        data: DataSettings {
            max_bp: model.max_bp,
            token_limit: model.token_limit,
            token_limit_policy: Default::default(),
            rarefy_depth: None,
        },
        target: None,
    };
    let ctx = || {
        format!(
            "{} does not match {}",
            args.state_dict.display(),
            args.config.display()
        )
    };
    let bytes = match kind {
        ModelKind::Predictor => checkpoint::weights_bytes(
            &SequencePredictor::<CpuBackend>::load_weights(&weights, &model, &device)
                .with_context(ctx)?,
            &config,
        )?,
        ModelKind::Encoder => checkpoint::weights_bytes(
            &SequenceEncoder::<CpuBackend>::load_weights(&weights, &model, &device)
                .with_context(ctx)?,
            &config,
        )?,
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    aam_data::files::write_atomic(&args.output.join("model.safetensors"), &bytes)?;
    aam_data::files::write_json(&args.output.join("config.json"), &config)?;
    println!(
        "imported a {kind:?} ({} tensors) into {}",
        weights.keys().count(),
        args.output.display()
    );
    Ok(())
}
