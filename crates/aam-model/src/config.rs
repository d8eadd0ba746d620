//! Model configuration, defined in `aam-config` (serde only) and re-exported here.

pub use aam_config::head_config::*;
pub use aam_config::model_config::*;
