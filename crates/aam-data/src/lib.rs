//! # aam-data
//!
//! Everything a microbiome researcher brings to AAM, read and checked:
//! BIOM feature tables (2.1 HDF5, 1.0 JSON, classic TSV) whose observation IDs are
//! ASV sequences, rarefaction, the nucleotide tokenizer, the per-sample token limit,
//! UniFrac / distance matrices and Faith PD, metadata TSVs, train/validation splits,
//! and model-ready batches.
//!
//! Reference behaviour: `shared/docs/reference-aam.md` §2; where it records a
//! reference bug this crate does the right thing (see each module).
#![warn(missing_docs)]

pub mod augment;
pub mod batch;
pub mod beta_diversity;
pub mod biom;
pub mod distance;
pub mod error;
pub mod faith_pd;
pub mod metadata;
pub mod rarefy;
pub mod split;
pub mod summary;
pub mod table;
pub mod token_limit;
pub mod tokenizer;

pub use augment::Augmentation;
pub use batch::{Batch, Dataset};
pub use beta_diversity::{beta_diversity, BetaMetric};
pub use biom::{load_table, BiomFormat, BiomSampleChunks};
pub use distance::{load_distance_matrix, DistanceMatrix};
pub use error::{DataError, Result};
pub use faith_pd::{load_faith_pd, FaithPd};
pub use metadata::{Metadata, Target, TargetKind};
pub use rarefy::{rarefy, RarefyReport};
pub use split::{split_samples, Split};
pub use table::FeatureTable;
pub use token_limit::{select_asvs, TokenLimitPolicy};
pub use tokenizer::TokenizedAsvs;
