//! One module per subcommand.

pub mod attention;
pub mod baseline;
pub mod benchmark;
pub mod burn_runner;
pub mod distance;
pub mod evaluate;
pub mod export;
pub mod forward;
pub mod group_args;
pub mod head_args;
pub mod import_torch;
pub mod importance;
pub mod inspect;
pub mod inspected_model;
pub mod predict;
pub mod pretrain;
pub mod serve;
pub mod speed;
pub mod taxonomy_args;
pub mod tracking_args;
pub mod train;
pub mod training_args;
pub mod tune;
