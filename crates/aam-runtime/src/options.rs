//! How a model is loaded: which backend runs the ONNX graph and on which execution
//! provider.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::asv_cache::AsvCacheOptions;

/// The engine that runs the ONNX graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Backend {
    /// Pure-Rust `tract-onnx` on CPU; always built.
    #[default]
    #[cfg_attr(
        feature = "clap",
        value(help = "The ONNX graph through pure-Rust tract-onnx")
    )]
    Tract,
    /// ONNX Runtime through the `ort` crate (cargo feature `ort`), the library loaded at
    /// run time from the PyPI `onnxruntime` / `onnxruntime-gpu` wheel.
    #[cfg_attr(
        feature = "clap",
        value(
            help = "The ONNX graph through ONNX Runtime (a build with --features ort; library from --ort-lib or ORT_DYLIB_PATH)"
        )
    )]
    Ort,
}

impl Backend {
    /// The name used on the command line: `tract` or `ort`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Tract => "tract",
            Backend::Ort => "ort",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tract" => Ok(Backend::Tract),
            "ort" | "onnxruntime" => Ok(Backend::Ort),
            _ => Err(format!("unknown backend `{s}`; use `tract` or `ort`")),
        }
    }
}

/// Where ONNX Runtime runs the graph (ONNX Runtime's "execution provider").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    /// The CPU (every backend).
    #[default]
    Cpu,
    /// NVIDIA CUDA (`onnxruntime-gpu`, a CUDA driver and a device).
    Cuda,
    /// NVIDIA TensorRT (as CUDA, plus TensorRT 10's `libnvinfer`).
    TensorRt,
}

impl ExecutionProvider {
    /// The name used on the command line: `cpu`, `cuda` or `tensorrt`.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExecutionProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(ExecutionProvider::Cpu),
            "cuda" => Ok(ExecutionProvider::Cuda),
            "tensorrt" | "trt" => Ok(ExecutionProvider::TensorRt),
            _ => Err(format!(
                "unknown execution provider `{s}`; use `cpu`, `cuda` or `tensorrt`"
            )),
        }
    }
}

/// TensorRT settings. The optimization profile covers `batch` 1..=`max_batch` (tuned
/// for `opt_batch`) and `n_asv` 1..=token limit (tuned for the token limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRtOptions {
    /// Directory where built engines are cached between runs (none: rebuilt each load,
    /// which takes minutes).
    pub engine_cache: Option<PathBuf>,
    /// Build FP16 engines (faster; outputs differ from FP32 by ~1e-3).
    pub fp16: bool,
    /// Largest batch the engine accepts.
    pub max_batch: usize,
    /// Batch the engine is tuned for.
    pub opt_batch: usize,
}

impl Default for TensorRtOptions {
    fn default() -> Self {
        TensorRtOptions {
            engine_cache: None,
            fp16: false,
            max_batch: 64,
            opt_batch: 16,
        }
    }
}

/// Everything [`crate::Model::load_with`] needs besides the model file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Engine running the graph.
    pub backend: Backend,
    /// Execution provider (anything but CPU needs [`Backend::Ort`]).
    pub provider: ExecutionProvider,
    /// Run on the CPU, with a warning, when the provider is not available, instead of
    /// failing.
    pub allow_fallback: bool,
    /// Threads of one forward pass: ONNX Runtime's intra-op threads; on tract, the
    /// workers that encode ASV chunks and run the sample graph on the samples (split
    /// graphs). `None`: one per core on ONNX Runtime, one on tract.
    pub threads: Option<usize>,
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.31.1`); `None` reads
    /// `ORT_DYLIB_PATH`.
    pub ort_library: Option<PathBuf>,
    /// TensorRT settings, used with [`ExecutionProvider::TensorRt`].
    pub tensorrt: TensorRtOptions,
    /// The ASV-embedding path (split graphs `asv_encoder.onnx` + `sample_model.onnx`):
    /// `Some` requires them, with these settings (LRU capacity, chunk size); `None` uses
    /// them when they lie beside `model.onnx`, keeping embeddings within a call only
    /// (capacity 0, chunks of [`AsvCacheOptions::default`]), and runs `model.onnx`
    /// otherwise.
    pub asv_cache: Option<AsvCacheOptions>,
    /// Run the single `model.onnx` even when the split graphs lie beside it: every ASV
    /// slot, empty or repeated, goes through the nucleotide attention at once (for
    /// comparison; memory grows with `batch · n_asv`).
    pub single_graph: bool,
}
