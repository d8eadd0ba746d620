//! `aam pretrain`: self-supervised pretraining of the sequence encoder on UniFrac
//! distances (and masked nucleotides, and Faith PD for the `faith_pd` encoder type).

use aam_config::{CheckpointConfig, ModelKind};
use aam_data::{load_faith_pd, Dataset, Metadata};
use aam_model::{EncoderType, ModelConfig, SequenceEncoder};
use aam_train::{fit_data_parallel, TrainData};
use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};

use super::tracking_args::{self, TrackingArgs};
use super::training_args::{
    check_device, check_numbers, check_output, on_training_backend, report_done, ArchArgs,
    DeviceArg, InputArgs, OptimArgs, TrainingDevices,
};
use super::training_inputs::{distance_targets, groups, load_input_table, make_split};

/// Arguments of `aam pretrain`.
#[derive(Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    arch: ArchArgs,
    #[command(flatten)]
    optim: OptimArgs,
    #[command(flatten)]
    tracking: TrackingArgs,
    /// What the encoder learns: UniFrac distances between sample embeddings, or Faith PD.
    #[arg(long, value_enum, default_value_t = EncoderArg::Unifrac)]
    encoder_type: EncoderArg,
    /// Faith PD per sample (.tsv or 1-D .npy), for --encoder-type faith-pd.
    #[arg(long)]
    faith_pd: Option<std::path::PathBuf>,
}

/// `--encoder-type` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EncoderArg {
    /// Sample embeddings trained on UniFrac distances.
    Unifrac,
    /// A Faith PD head.
    FaithPd,
}

/// Runs `aam pretrain`.
pub fn run(args: &PretrainArgs) -> Result<()> {
    let input = &args.input;
    check_device(&args.optim)?;
    check_numbers(&args.optim)?;
    let a = &args.arch;
    // Checked before any input is read or anything is written.
    let model_config = ModelConfig {
        encoder_type: match args.encoder_type {
            EncoderArg::Unifrac => EncoderType::Unifrac,
            EncoderArg::FaithPd => EncoderType::FaithPd,
        },
        attention: args.optim.attention_kind(a.dropout),
        mixed_precision: args.optim.mixed_precision,
        ..a.model_config(args.optim.nuc_weight > 0.0)
    };
    model_config.validate().map_err(anyhow::Error::msg)?;
    check_output(input)?;
    let seed = args.optim.seed;
    let (mut table, stream) = load_input_table(input, seed)?;
    let (t, distances) = distance_targets(input, table)?;
    table = t;
    match (&distances, args.encoder_type) {
        (Some(_), _) => {}
        (None, EncoderArg::Unifrac) => bail!("--unifrac-matrix is required for --encoder-type unifrac (make one with `ssu -i table.biom -t tree.nwk -m unweighted_fp32 -o unifrac.h5 --format hdf5_fp32`)"),
        (None, EncoderArg::FaithPd) => {}
    }
    let faith = match (&args.faith_pd, args.encoder_type) {
        (Some(path), EncoderArg::FaithPd) => {
            Some(load_faith_pd(path, &table.sample_ids)?.aligned(&table.sample_ids)?)
        }
        (None, EncoderArg::FaithPd) => bail!("--faith-pd is required for --encoder-type faith-pd"),
        _ => None,
    };
    let metadata = input.metadata.as_deref().map(Metadata::load).transpose()?;
    let groups = groups(input, metadata.as_ref(), &table.sample_ids)?;
    let split = make_split(
        input,
        &table.sample_ids,
        groups.as_deref(),
        None,
        seed,
        None,
    )?;
    let faith_pd = faith.map(|v| {
        let train: Vec<f64> = split.train.iter().map(|&i| v[i]).collect();
        let mean = train.iter().sum::<f64>() / train.len() as f64;
        let std = (train.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / train.len() as f64)
            .sqrt()
            .max(1e-12);
        v.iter()
            .map(|x| ((x - mean) / std) as f32)
            .collect::<Vec<f32>>()
    });
    let config = CheckpointConfig {
        format_version: aam_config::FORMAT_VERSION,
        kind: ModelKind::Encoder,
        model: model_config.clone(),
        data: a.data_settings(input.rarefy_depth),
        target: None,
    };
    let dataset = Dataset::new(
        table,
        a.max_bp,
        a.token_limit,
        a.token_limit_policy,
        seed,
        distances,
        None,
    )?;
    let stream = stream
        .map(|s| s.select(&dataset.table.sample_ids))
        .transpose()?
        .map(std::sync::Arc::new);
    let data = TrainData {
        dataset,
        stream,
        split,
        faith_pd,
        target_kind: None,
        n_classes: 0,
        target_mean: 0.0,
        target_std: 1.0,
    };
    let opts = args.optim.options(0.0, 0.0, false, false);
    let mut tracking = args.tracking.open(&input.output, input.resume)?;
    macro_rules! fit_on {
        ($backend:ty) => {
            fit_encoder::<$backend>(
                &model_config,
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

fn fit_encoder<B: AutodiffBackend>(
    model_config: &ModelConfig,
    data: &TrainData,
    opts: &aam_train::TrainOptions,
    input: &InputArgs,
    config: &CheckpointConfig,
    devices: Vec<B::Device>,
    tracking: &mut aam_train::Tracking,
) -> Result<aam_train::FitReport> {
    let device = devices[0].clone();
    B::seed(&device, opts.seed);
    let model = SequenceEncoder::<B>::new(model_config, &device);
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
