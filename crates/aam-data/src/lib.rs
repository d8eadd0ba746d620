//! # aam-data
//!
//! Everything a microbiome researcher brings to AAM, read and checked:
//! BIOM feature tables (2.1 HDF5, 1.0 JSON, classic TSV, QIIME 2 `.qza`) whose
//! observation IDs are ASV sequences (or feature hashes mapped to them by
//! `--sequences`), rarefaction, the nucleotide tokenizer, the per-sample token limit,
//! UniFrac / distance matrices and Faith PD, metadata TSVs, train/validation splits,
//! and model-ready batches. Below every other crate, it also holds what all of them
//! use: [`files`] (atomic writes), [`metrics`] and [`evaluation`] (predictions against
//! targets), and [`process_memory`] (peak RSS).
//!
//! Reference behaviour: `shared/docs/reference-aam.md` §2; where it records a
//! reference bug this crate does the right thing (see each module).
//!
//! ```
//! # fn main() -> aam_data::Result<()> {
//! use std::path::Path;
//! let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! // The shipped example: a BIOM 2.1 table whose observation IDs are ASV sequences.
//! let (table, format) = aam_data::load_table(&repo.join("data/circadian-ihc/table.biom"))?;
//! assert_eq!(format, aam_data::BiomFormat::Hdf5);
//! assert_eq!((table.n_samples(), table.n_asv()), (46, 500));
//! // Every ASV as `[max_bp + 1]` tokens: START then one token per nucleotide.
//! let tokens = aam_data::tokenizer::TokenizedAsvs::new(&table.observation_ids, 150);
//! assert_eq!(tokens.row(0)[0], aam_data::tokenizer::START);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod augment;
pub mod batch;
pub mod beta_diversity;
pub mod biom;
pub mod categories;
pub mod distance;
pub mod error;
pub mod evaluation;
pub mod evaluation_report;
pub mod faith_pd;
pub mod files;
mod hdf5_shape;
pub mod metadata;
pub mod metrics;
pub mod npy;
pub mod process_memory;
pub mod qiime2;
pub mod rarefy;
pub mod sequences;
pub mod sample_stream;
pub mod split;
pub mod summary;
pub mod table;
pub mod taxonomy;
pub mod token_limit;
pub mod tokenizer;

pub use augment::Augmentation;
pub use batch::{Batch, Dataset};
pub use beta_diversity::{beta_diversity, BetaMetric};
pub use biom::{load_table, load_table_with_sequences, BiomFormat, BiomSampleChunks};
pub use categories::CategoryIndices;
pub use distance::{load_distance_matrix, DistanceMatrix};
pub use error::{DataError, Result};
pub use faith_pd::{load_faith_pd, FaithPd};
pub use metadata::{Metadata, Target, TargetKind};
pub use npy::check_npy_size;
pub use rarefy::{rarefy, RarefyReport};
pub use sequences::{load_sequences, FeatureSequences};
pub use sample_stream::SampleStream;
pub use split::{group_kfold, split_samples, Split};
pub use table::FeatureTable;
pub use taxonomy::{load_taxonomy, TaxonRank, Taxonomy};
pub use token_limit::{select_asvs, TokenLimitPolicy};
pub use tokenizer::TokenizedAsvs;
