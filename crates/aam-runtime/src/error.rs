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
    /// The ONNX Runtime library cannot be found or loaded.
    #[error("ONNX Runtime library {path}: {message}")]
    OrtLibrary {
        /// Library path tried (or `<none>`).
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The ONNX Runtime library is older than the C API this build needs.
    #[error("ONNX Runtime library {path} is version {found}, but aam needs {required} or newer; install it with `pip install onnxruntime=={recommended}` and point ORT_DYLIB_PATH (or --ort-lib) at onnxruntime/capi/libonnxruntime.so.{recommended}")]
    OrtVersion {
        /// Library path.
        path: String,
        /// Version the library reports.
        found: String,
        /// Oldest version this build can use.
        required: String,
        /// Version aam is tested with.
        recommended: String,
    },
    /// The requested execution provider cannot run here (and fallback was not allowed).
    #[error("execution provider `{provider}` is not available: {missing}. Pass --allow-fallback to run on the CPU instead")]
    ProviderUnavailable {
        /// Provider asked for (`cuda`, `tensorrt`).
        provider: String,
        /// What is missing (library without the provider, no CUDA driver, no device, no TensorRT).
        missing: String,
    },
    /// The request needs a cargo feature this build lacks.
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias of the runtime.
pub type Result<T> = std::result::Result<T, RuntimeError>;
