//! `aam train`: fine-tune a predictor on a metadata column (regression or
//! classification), optionally on top of a pretrained encoder.

use std::path::PathBuf;

use aam_config::{CheckpointConfig, DataSettings, ModelKind, TargetInfo};
use aam_data::error::name_list;
use aam_data::{Dataset, Metadata, TargetKind};
use aam_model::count_embedding::CountEmbedding;
use aam_model::{AamModel, ModelConfig, SequenceEncoder, SequencePredictor};
use aam_train::{checkpoint, fit_data_parallel, TrainData};
use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use super::inspect::TargetTypeArg;

use super::tracking_args::{self, TrackingArgs};
use super::training_args::{
    check_device, check_numbers, check_output, on_training_backend, report_done, ArchArgs,
    DeviceArg, InputArgs, OptimArgs, TrainingDevices,
};
use super::training_inputs::{distance_targets, groups, load_input_table, make_split};

/// Arguments of `aam train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    arch: ArchArgs,
    #[command(flatten)]
    optim: OptimArgs,
    #[command(flatten)]
    tracking: TrackingArgs,
    /// Metadata column to predict.
    #[arg(long, requires = "metadata")]
    metadata_column: String,
    /// Force regression (numeric) or classification (categorical) instead of detecting it.
    #[arg(long, value_enum)]
    target_type: Option<TargetTypeArg>,
    /// Pretrained encoder checkpoint directory (from `aam pretrain`); its architecture, and its
    /// split when that covers every sample, are used.
    #[arg(long)]
    pretrained_encoder: Option<PathBuf>,
    /// Keep the pretrained encoder's weights fixed. Its ASV embeddings are then computed
    /// once per distinct ASV of the run (eval mode, no dropout) and reused every epoch,
    /// so each step runs only the sample-level stacks; the masked-nucleotide loss, which
    /// would train only the frozen encoder, is off.
    #[arg(long, requires = "pretrained_encoder")]
    freeze_base: bool,
    /// Weight of the target loss.
    #[arg(long, default_value_t = 1.0)]
    target_weight: f64,
    /// Weight of the count loss (log1p relative abundance per ASV).
    #[arg(long, default_value_t = 1.0)]
    count_weight: f64,
    /// Huber loss instead of MSE for regression.
    #[arg(long)]
    huber: bool,
    /// Inverse-frequency class weights for classification.
    #[arg(long)]
    class_weights: bool,
}

/// Runs `aam train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let input = &args.input;
    check_device(&args.optim)?;
    check_numbers(&args.optim)?;
    if args.pretrained_encoder.is_none() {
        // The architecture is checked before any input is read or anything is written
        // (out_dim is set from the target later and checked again then).
        args.arch
            .model_config(args.optim.nuc_weight > 0.0)
            .validate()
            .map_err(anyhow::Error::msg)?;
    }
    check_output(input)?;
    let pretrained = args.pretrained_encoder.as_ref().map(|dir| -> Result<_> {
        let pre = checkpoint::load_config(dir)?;
        if pre.kind != ModelKind::Encoder {
            bail!("{} holds a {:?} checkpoint; --pretrained-encoder takes the output of `aam pretrain`", dir.display(), pre.kind);
        }
        eprintln!("pretrained encoder: {} (D={}, max_bp {}, token limit {})", dir.display(), pre.model.embedding_dim, pre.model.max_bp, pre.model.token_limit);
        Ok((dir.clone(), pre))
    }).transpose()?;
    let seed = args.optim.seed;
    let (table, stream) = load_input_table(input, seed)?;
    let md_path = input.metadata.as_ref().context("--metadata is required")?;
    let metadata = Metadata::load(md_path)?;
    let target = metadata.target(
        &args.metadata_column,
        &table.sample_ids,
        args.target_type.map(TargetKind::from),
    )?;
    if !target.absent_samples.is_empty() && !input.allow_sample_subset {
        bail!(
            "{}: {} of the table's samples have no metadata row: {}; add them, or pass --allow-sample-subset to leave them out",
            md_path.display(),
            target.absent_samples.len(),
            name_list(&target.absent_samples, 10)
        );
    }
    if !target.missing_samples.is_empty() {
        eprintln!(
            "warning: {} samples have no value in '{}' and are left out: {}",
            target.missing_samples.len(),
            args.metadata_column,
            name_list(&target.missing_samples, 10)
        );
    }
    let n_classes = target.classes.len();
    if target.kind == TargetKind::Categorical && n_classes < 2 {
        bail!(
            "column '{}' has a single class ({}); classification needs at least two",
            args.metadata_column,
            name_list(&target.classes, 3)
        );
    }
    let usable: Vec<usize> = (0..table.n_samples())
        .filter(|&i| target.values[i].is_some())
        .collect();
    let values: Vec<f64> = usable
        .iter()
        .map(|&i| target.values[i].expect("filtered"))
        .collect();
    let mut table = table.select_samples(&usable);
    let mut values_by_id: std::collections::HashMap<String, f64> =
        table.sample_ids.iter().cloned().zip(values).collect();
    let (t, distances) = distance_targets(input, table)?;
    table = t;
    let raw: Vec<f64> = table
        .sample_ids
        .iter()
        .map(|s| values_by_id.remove(s).expect("aligned"))
        .collect();
    let classes: Option<Vec<usize>> =
        (target.kind == TargetKind::Categorical).then(|| raw.iter().map(|&v| v as usize).collect());
    let groups = groups(input, Some(&metadata), &table.sample_ids)?;
    let inherit = args
        .pretrained_encoder
        .as_ref()
        .map(|d| d.join("split.tsv"));
    let split = make_split(
        input,
        &table.sample_ids,
        groups.as_deref(),
        classes.as_deref(),
        seed,
        inherit.as_deref(),
    )?;
    let (mean, std) = match target.kind {
        TargetKind::Numeric => {
            let t: Vec<f64> = split.train.iter().map(|&i| raw[i]).collect();
            let m = t.iter().sum::<f64>() / t.len() as f64;
            let s = (t.iter().map(|x| (x - m).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
            (m, if s > 0.0 { s } else { 1.0 })
        }
        TargetKind::Categorical => (0.0, 1.0),
    };
    let targets: Vec<f32> = raw.iter().map(|&v| ((v - mean) / std) as f32).collect();

    let (model_config, data_settings) = match &pretrained {
        Some((_, pre)) => {
            let mut m = pre.model.clone();
            // A count embedding can be added on top of an encoder pretrained without one.
            if let (Some(method), false) = (args.arch.count_embedding.0, m.count_embedding) {
                m.count_embedding = true;
                m.count_embedding_method = method;
                eprintln!(
                    "count embedding `{}` added to the pretrained encoder (fresh layers)",
                    method.name()
                );
            }
            if args.arch.abundance_pooling && !m.abundance_pooling {
                m.abundance_pooling = true;
                eprintln!("abundance-weighted pooling added to the pretrained encoder");
            }
            (m, pre.data.clone())
        }
        None => (
            args.arch.model_config(args.optim.nuc_weight > 0.0),
            args.arch.data_settings(input.rarefy_depth),
        ),
    };
    let model_config = ModelConfig {
        out_dim: if target.kind == TargetKind::Categorical {
            n_classes
        } else {
            1
        },
        is_classifier: target.kind == TargetKind::Categorical,
        attention: args.optim.attention_kind(model_config.dropout),
        mixed_precision: args.optim.mixed_precision,
        ..model_config
    };
    model_config.validate().map_err(anyhow::Error::msg)?;
    let config = CheckpointConfig {
        format_version: aam_config::FORMAT_VERSION,
        kind: ModelKind::Predictor,
        model: model_config.clone(),
        data: DataSettings {
            rarefy_depth: input.rarefy_depth,
            ..data_settings.clone()
        },
        target: Some(TargetInfo {
            column: args.metadata_column.clone(),
            kind: target.kind,
            classes: target.classes.clone(),
            mean,
            std,
        }),
    };
    let dataset = Dataset::new(
        table,
        data_settings.max_bp,
        data_settings.token_limit,
        data_settings.token_limit_policy,
        seed,
        distances,
        Some(targets),
    )?;
    let stream = stream
        .map(|s| s.select(&dataset.table.sample_ids))
        .transpose()?
        .map(std::sync::Arc::new);
    let data = TrainData {
        dataset,
        stream,
        split,
        faith_pd: None,
        target_kind: Some(target.kind),
        n_classes,
        target_mean: mean,
        target_std: std,
    };
    let unifrac_weight = if data.dataset.distances.is_some() {
        args.optim.unifrac_weight
    } else {
        0.0
    };
    let mut opts = args.optim.options(
        args.target_weight,
        args.count_weight,
        args.huber,
        args.class_weights,
    );
    opts.weights.unifrac = unifrac_weight;
    opts.cache_asv_embeddings = args.freeze_base;
    let encoder_dir = pretrained
        .as_ref()
        .map(|p| (p.0.as_path(), p.1.model.count_embedding));
    let mut tracking = args.tracking.open(&input.output, input.resume)?;
    macro_rules! fit_on {
        ($backend:ty) => {
            fit_predictor::<$backend>(
                &model_config,
                encoder_dir,
                args.freeze_base,
                &data,
                &opts,
                input,
                &config,
                <$backend as TrainingDevices>::training_devices(&args.optim.devices),
                &mut tracking,
            )
        };
    }
    let result = on_training_backend!(args.optim, fit_on);
    let report = tracking_args::finish(tracking, result, &input.output)?;

    report_done(&report, input);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn fit_predictor<B: AutodiffBackend>(
    model_config: &ModelConfig,
    pretrained_encoder: Option<(&std::path::Path, bool)>,
    freeze_base: bool,
    data: &TrainData,
    opts: &aam_train::TrainOptions,
    input: &InputArgs,
    config: &CheckpointConfig,
    devices: Vec<B::Device>,
    tracking: &mut aam_train::Tracking,
) -> Result<aam_train::FitReport> {
    let device = devices[0].clone();
    B::seed(&device, opts.seed);
    let model = match pretrained_encoder {
        Some((dir, has_counts)) => {
            // `model_config` is the encoder's own (read once in `run`) plus the target
            // head's width, which the encoder's weights do not involve, and a count
            // embedding the encoder may lack (`has_counts` false): fresh layers then.
            let encoder_config = ModelConfig {
                count_embedding: has_counts,
                ..model_config.clone()
            };
            let mut base: SequenceEncoder<B> =
                checkpoint::load_model(dir, "model.safetensors", &encoder_config, &device)?;
            if !has_counts {
                base.sample_encoder.count_embedding = CountEmbedding::new(model_config, &device);
            }
            SequencePredictor::with_base(base, model_config, &device)
        }
        None => SequencePredictor::new(model_config, &device),
    };
    let model = if freeze_base {
        model.freeze_base()
    } else {
        model
    };
    fit_data_parallel::<B, _>(
        model,
        data,
        opts,
        &input.output,
        config,
        input.resume,
        &devices,
        tracking,
    )
}
