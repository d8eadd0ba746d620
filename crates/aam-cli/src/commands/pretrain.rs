//! `aam pretrain`: self-supervised pretraining of the sequence encoder on UniFrac
//! distances (and masked nucleotides, and Faith PD for the `faith_pd` encoder type).

use aam_config::{EncoderType, ModelConfig};
use aam_train::pretrain_job::PretrainJob;
use anyhow::Result;
use clap::{Args, ValueEnum};

use super::group_args::GroupArgs;
use super::tracking_args::TrackingArgs;
use super::training_args::{
    check_device, check_numbers, on_training_backend, ArchArgs, InputArgs, OptimArgs,
    TrainingDevices,
};

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
    #[command(flatten)]
    group: GroupArgs,
    /// What the encoder learns: UniFrac distances between sample embeddings, or Faith PD.
    #[arg(long, value_enum, default_value_t = EncoderArg::Unifrac)]
    encoder_type: EncoderArg,
    /// Faith PD per sample (.tsv, 1-D .npy, or a QIIME 2 SampleData[AlphaDiversity]
    /// .qza), for --encoder-type faith-pd.
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
    check_device(&args.optim)?;
    check_numbers(&args.optim)?;
    let a = &args.arch;
    let mut inputs = args.input.job_inputs();
    let mut options = args.optim.options(0.0, 0.0, false);
    let joined = args.group.join(&mut inputs, &mut options)?;
    let job = PretrainJob {
        inputs,
        model: ModelConfig {
            encoder_type: match args.encoder_type {
                EncoderArg::Unifrac => EncoderType::Unifrac,
                EncoderArg::FaithPd => EncoderType::FaithPd,
            },
            attention: args.optim.attention,
            mixed_precision: args.optim.mixed_precision,
            ..a.model_config(args.optim.nuc_weight > 0.0)
        },
        data: a.data_settings(args.input.rarefy_depth),
        options,
        faith_pd: args.faith_pd.clone(),
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
