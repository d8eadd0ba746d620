//! One module per subcommand.

pub mod forward;
pub mod import_torch;
pub mod inspect;
pub mod pretrain;
pub mod train;
pub mod training_args;
