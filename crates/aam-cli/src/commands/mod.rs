//! One module per subcommand.

pub mod attention;
pub mod baseline;
pub mod bench;
pub mod bench_train;
pub mod benchmark;
pub mod burn_runner;
pub mod distance;
pub mod evaluate;
pub mod export;
pub mod forward;
pub mod import_torch;
pub mod importance;
pub mod inspect;
pub mod inspection;
pub mod plots;
pub mod predict;
pub mod pretrain;
pub mod serve;
pub mod tracking_args;
pub mod tune;
pub mod train;
pub mod training_args;
