//! # aam-train
//!
//! Training of AAM models on CPU (Burn's Flex backend, or ndarray for bit-exact runs) or, behind features, GPU backends:
//! losses (UniFrac, masked nucleotides, Faith PD, target, count), optimizers (AdamW,
//! Adam, SGD), learning-rate schedules, gradient clipping and accumulation, early
//! stopping, validation metrics, atomic, resumable checkpoints and experiment tracking
//! (TensorBoard event files, MLflow).
//!
//! The jobs of `aam pretrain` and `aam train` are library calls: [`pretrain_job`] and
//! [`fine_tune_job`] read the inputs ([`job_inputs`]), prepare the data, split and
//! checkpoint configuration, then fit on the backend the caller picks
//! (`examples/train_tiny.rs`). [`tune`] runs the hyper-parameter search of `aam tune`.
#![deny(missing_docs)]

pub mod allocator;
pub mod asv_embedding_cache;
pub mod batch_order;
pub mod batch_size;
mod batch_size_choice;
mod batch_tensors;
pub mod benchmark;
pub mod checkpoint;
pub mod collective;
pub mod data_parallel;
#[cfg(feature = "cuda")]
pub mod device_memory;
pub mod epoch_record;
pub mod fine_tune_job;
pub mod gradient_buffer;
pub mod job_inputs;
pub mod loss_scale;
pub mod losses;
pub mod masking;
#[cfg(feature = "mpi")]
pub mod mpi_collective;
pub mod options;
pub mod plots;
pub mod prefetch;
pub mod pretrain_job;
pub mod process_group;
pub mod random_forest;
pub mod rank_share;
pub mod regression_loss;
pub mod resume_file;
pub mod sample_weights;
pub mod schedule;
pub mod step_bench;
mod step_loss;
pub mod tracking;
pub mod train_data;
pub mod trainer;
pub mod tune;

pub use batch_size::{AutoBatchSize, MemorySource};
pub use epoch_record::{EpochRecord, FitReport};
pub use loss_scale::LossScaler;
pub use options::{ComputeDevice, LossWeights, OptimizerKind, TrainOptions};
pub use prefetch::{PrefetchOptions, PrefetchStats};
pub use regression_loss::{BestMetric, LossConfig, LossType, RegressionLoss};
pub use schedule::{Schedule, ScheduleKind};
pub use tracking::{NoTracking, Tracker, Tracking};
pub use train_data::TrainData;
pub use trainer::{fit, fit_data_parallel, fit_in_group};
