//! Errors of the runtime.

/// What can go wrong loading a model or predicting.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model file cannot be read, is not ONNX, or lacks aam's metadata.
    #[error("{path}: {message}")]
    Load {
        /// Model file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The feature table cannot be read or does not suit the model.
    #[error(transparent)]
    Data(#[from] aam_data::DataError),
    /// The tokens given to [`crate::Model::run`] do not fit the model.
    #[error("{0}")]
    Input(String),
    /// The ONNX graph failed while running.
    #[error("inference failed: {0}")]
    Run(String),
}

/// Result alias of the runtime.
pub type Result<T> = std::result::Result<T, RuntimeError>;
