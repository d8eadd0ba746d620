//! `aam train`: fine-tune a predictor on a metadata column (regression or
//! classification), optionally on top of a pretrained encoder.

use std::path::PathBuf;

use aam_config::TargetTransform;
use aam_data::TargetKind;
use aam_train::fine_tune_job::FineTuneJob;
use aam_train::{BestMetric, LossConfig, LossType, RegressionLoss, TrainOptions};
use anyhow::Result;
use clap::Args;

use super::group_args::GroupArgs;
use super::head_args::HeadArgs;
use super::tracking_args::TrackingArgs;
use super::training_args::{
    check_device, check_numbers, on_training_backend, ArchArgs, InputArgs, OptimArgs,
    TrainingDevices,
};

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
    head: HeadArgs,
    #[command(flatten)]
    tracking: TrackingArgs,
    #[command(flatten)]
    group: GroupArgs,
    /// Metadata column to predict; several numeric columns (`a,b`) train one regressor
    /// with an output per column.
    #[arg(long, requires = "metadata", value_delimiter = ',', required = true)]
    metadata_column: Vec<String>,
    /// Force regression (numeric) or classification (categorical) instead of detecting it.
    #[arg(long, value_enum)]
    target_type: Option<TargetKind>,
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
    /// Regression loss, on the transformed target.
    #[arg(long, value_enum, default_value_t = LossType::default())]
    loss_type: LossType,
    /// The loss of each target column, as JSON keyed by output index or column name
    /// (`{"0": "mse", "shannon": "huber"}`; mse, mae or huber); others use --loss-type.
    #[arg(long, value_name = "JSON", value_parser = LossConfig::parse)]
    loss_config: Option<LossConfig>,
    /// Same as --loss-type huber (kept for older command lines).
    #[arg(long, hide = true, conflicts_with = "loss_type")]
    huber: bool,
    /// Quantile levels in (0, 1) of --loss-type quantile (default 0.1,0.5,0.9): the model
    /// predicts one value per level, and `aam predict` writes one column per level.
    #[arg(long, value_delimiter = ',')]
    quantiles: Option<Vec<f64>>,
    /// Weight of over-prediction with --loss-type asymmetric.
    #[arg(long, default_value_t = RegressionLoss::default().over_penalty)]
    over_penalty: f64,
    /// Weight of under-prediction with --loss-type asymmetric.
    #[arg(long, default_value_t = RegressionLoss::default().under_penalty)]
    under_penalty: f64,
    /// How a regression target is rescaled for training (statistics from the training
    /// samples only; stored, and inverted at prediction).
    #[arg(long, value_enum, default_value_t = TargetTransform::default())]
    target_transform: TargetTransform,
    /// The categorical column (one of --categorical-columns) within whose categories
    /// `--target-transform zscore-category` z-scores the target.
    #[arg(long, value_name = "COLUMN")]
    normalize_by: Option<String>,
    /// Validation metric whose best epoch is kept as model.safetensors (and that early
    /// stopping watches).
    #[arg(long, value_enum, default_value_t = BestMetric::default())]
    best_metric: BestMetric,
    /// Inverse-frequency class weights for classification.
    #[arg(long)]
    class_weights: bool,
}

/// Runs `aam train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    check_device(&args.optim)?;
    check_numbers(&args.optim)?;
    let a = &args.arch;
    let model = aam_config::ModelConfig {
        head: args.head.head_config()?,
        ..a.model_config(args.optim.nuc_weight > 0.0)
    };
    let mut inputs = args.input.job_inputs();
    let mut options = args
        .optim
        .options(args.target_weight, args.count_weight, args.class_weights);
    let regression = RegressionLoss::new(
        if args.huber {
            LossType::Huber
        } else {
            args.loss_type
        },
        args.quantiles.clone(),
        args.over_penalty,
        args.under_penalty,
    )
    .map_err(anyhow::Error::msg)?;
    // Last before the job: from here on every error ends the whole group.
    let joined = args.group.join(&mut inputs, &mut options)?;
    let job = FineTuneJob {
        inputs,
        metadata_column: args.metadata_column[0].clone(),
        more_target_columns: args.metadata_column[1..].to_vec(),
        loss_config: args.loss_config.clone(),
        target_type: args.target_type,
        data: a.data_settings(args.input.rarefy_depth),
        pretrained_encoder: args.pretrained_encoder.clone(),
        freeze_base: args.freeze_base,
        count_embedding: a.count_embedding.0,
        abundance_pooling: a.abundance_pooling,
        categorical_columns: args.head.categorical_columns.clone(),
        categorical_loss_weights: args.head.categorical_loss_weights.clone(),
        categorical_loss_weight_column: args.head.categorical_loss_weight_column.clone(),
        attention: args.optim.attention,
        mixed_precision: args.optim.mixed_precision,
        target_transform: args.target_transform,
        normalize_by: args.normalize_by.clone(),
        options: TrainOptions {
            regression,
            best_metric: args.best_metric,
            ..options
        },
        model,
    };
    let result = job.prepare().and_then(|run| {
        joined.fit_and_report(
            &args.tracking,
            &args.input,
            &job.inputs,
            |tracking, group| {
                macro_rules! fit_on {
                    ($backend:ty) => {
                        job.fit_in_group::<$backend>(
                            &run,
                            &<$backend as TrainingDevices>::training_devices(&args.optim.devices),
                            tracking,
                            group,
                        )
                    };
                }
                on_training_backend!(args.optim, fit_on)
            },
        )
    });
    joined.finish(result)
}
