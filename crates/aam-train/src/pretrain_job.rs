//! Pretraining as a library call (`aam pretrain`): the sequence encoder learns the
//! distances between samples (UniFrac, or one computed from the table), masked
//! nucleotides, or Faith PD, on the samples of a table.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use aam_train::job_inputs::JobInputs;
//! use aam_train::pretrain_job::PretrainJob;
//! let mut inputs = JobInputs::new("data/circadian-ihc/table.biom", "runs/encoder");
//! inputs.unifrac_matrix = Some("data/circadian-ihc/unifrac_unweighted.h5".into());
//! let job = PretrainJob::new(inputs);
//! let run = job.prepare()?;
//! let device = Default::default();
//! let report = job.fit::<aam_model::CpuFlexAutodiff>(&run, &[device], &mut aam_train::NoTracking)?;
//! println!("best validation loss {:.4}", report.best.0);
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use aam_config::{CheckpointConfig, DataSettings, EncoderType, ModelConfig, ModelKind};
use aam_data::{load_faith_pd, Metadata};
use aam_model::SequenceEncoder;
use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;

use crate::collective::{Collective, SingleProcess};
use crate::job_inputs::{
    check_output, dataset_and_stream, distance_targets, groups, load_table_input, make_split,
    standardization, warn_fused_dropout, JobInputs, PreparedRun,
};
use crate::tracking::Tracker;
use crate::trainer::fit_in_group;
use crate::{FitReport, TrainData, TrainOptions};

/// A pretraining run: inputs, architecture, input preparation and optimisation.
#[derive(Debug, Clone)]
pub struct PretrainJob {
    /// What it reads and where it writes.
    pub inputs: JobInputs,
    /// The encoder's architecture (`encoder_type` says what it learns).
    pub model: ModelConfig,
    /// Token rows and token limit the table is prepared with (`rarefy_depth` is taken
    /// from the inputs).
    pub data: DataSettings,
    /// Optimisation; the target and count loss weights are not used.
    pub options: TrainOptions,
    /// Faith PD per sample (`.tsv` or 1-D `.npy`), for the `faith_pd` encoder type.
    pub faith_pd: Option<PathBuf>,
}

impl PretrainJob {
    /// A job with the default architecture ([`ModelConfig::default`]), its input
    /// preparation and [`TrainOptions::default`].
    /// These are the reference's defaults (no k-mer or count embedding, no abundance
    /// pooling, the first ASVs within the token limit), not `aam train`'s, which the CLI
    /// sets explicitly.
    pub fn new(inputs: JobInputs) -> Self {
        let model = ModelConfig::default();
        PretrainJob {
            inputs,
            data: DataSettings {
                max_bp: model.max_bp,
                token_limit: model.token_limit,
                token_limit_policy: Default::default(),
                rarefy_depth: None,
            },
            model,
            options: TrainOptions::default(),
            faith_pd: None,
        }
    }

    /// Checks the configuration and the output folder, then reads the table, the
    /// distances, the Faith PD and the metadata groups, splits the samples (writing
    /// `split.tsv`) and assembles the checkpoint configuration.
    ///
    /// Errors: an invalid architecture; an output that holds a checkpoint (without
    /// `overwrite`) or nothing to resume; an unreadable or inconsistent input, each
    /// naming the file; no distance matrix for the `unifrac` encoder type, no Faith PD
    /// for `faith_pd`.
    pub fn prepare(&self) -> Result<PreparedRun> {
        let input = &self.inputs;
        let model = self.model.clone();
        model.validate().map_err(anyhow::Error::msg)?;
        warn_fused_dropout(&model);
        check_output(input)?;
        let seed = self.options.seed;
        let (table, stream) = load_table_input(input, seed)?;
        let (table, distances) = distance_targets(input, table)?;
        match (&distances, &model.encoder_type) {
            (None, &EncoderType::Unifrac) => bail!("--unifrac-matrix is required for --encoder-type unifrac (make one with `ssu -i table.biom -t tree.nwk -m unweighted_fp32 -o unifrac.h5 --format hdf5_fp32`)"),
            _ => {}
        }
        let faith = match (&self.faith_pd, &model.encoder_type) {
            (Some(path), &EncoderType::FaithPd) => {
                Some(load_faith_pd(path, &table.sample_ids)?.aligned(&table.sample_ids)?)
            }
            (None, &EncoderType::FaithPd) => {
                bail!("--faith-pd is required for --encoder-type faith-pd")
            }
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
            let (mean, std) = standardization(&v, &split.train);
            v.iter()
                .map(|x| ((x - mean) / std) as f32)
                .collect::<Vec<f32>>()
        });
        let settings = DataSettings {
            rarefy_depth: input.rarefy_depth,
            ..self.data.clone()
        };
        let config = CheckpointConfig {
            format_version: aam_config::FORMAT_VERSION,
            kind: ModelKind::Encoder,
            model,
            data: settings.clone(),
            target: None,
        };
        let (dataset, stream) = dataset_and_stream(table, &settings, seed, distances, stream)?;
        let data = TrainData {
            dataset,
            stream,
            split,
            faith_pd,
            target_kind: None,
            n_classes: 0,
            target_mean: 0.0,
            target_std: 1.0,
            target_transform: Default::default(),
            sample_weights: None,
            target_offset_scale: None,
            target_column: String::new(),
            more_targets: Vec::new(),
            categorical_ids: None,
        };
        let options = TrainOptions {
            cache_asv_embeddings: false,
            ..self.options.clone()
        };
        Ok(PreparedRun {
            data,
            config,
            options,
        })
    }

    /// Trains a fresh encoder on `run` (from [`PretrainJob::prepare`]) on `devices`
    /// (data parallel when several), writing the checkpoint into the output folder.
    ///
    /// Errors: as [`crate::fit_data_parallel`].
    pub fn fit<B: AutodiffBackend>(
        &self,
        run: &PreparedRun,
        devices: &[B::Device],
        tracker: &mut dyn Tracker,
    ) -> Result<FitReport> {
        self.fit_in_group::<B>(run, devices, tracker, &SingleProcess)
    }

    /// [`Self::fit`] as one process of a training group (`group`; see
    /// [`crate::trainer::fit_in_group`]): every process calls it with the same job, and
    /// writes into its own job's output folder.
    ///
    /// Errors: as [`Self::fit`] and [`crate::trainer::fit_in_group`].
    pub fn fit_in_group<B: AutodiffBackend>(
        &self,
        run: &PreparedRun,
        devices: &[B::Device],
        tracker: &mut dyn Tracker,
        group: &dyn Collective,
    ) -> Result<FitReport> {
        let device = devices.first().cloned().unwrap_or_default();
        B::seed(&device, run.options.seed);
        let model = SequenceEncoder::<B>::new(&run.config.model, &device);
        fit_in_group::<B, _>(
            model,
            &run.data,
            &run.options,
            &self.inputs.output,
            &run.config,
            self.inputs.resume,
            devices,
            tracker,
            group,
        )
    }
}
