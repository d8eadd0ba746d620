//! Load parameters, passed by value (llama.cpp style) and checked against the ABI version.

use std::ffi::c_char;
use std::path::{Path, PathBuf};

use aam_runtime::{AsvCacheOptions, Backend, ExecutionProvider, LoadOptions, TensorRtOptions};

use crate::status::{utf8_arg, AamStatus, Failure};
use crate::AAM_ABI_VERSION;

/// Backend: the ONNX graph through pure-Rust tract (always built).
pub const AAM_BACKEND_TRACT: u32 = 0;
/// Backend: ONNX Runtime (only in builds with the `ort` feature).
pub const AAM_BACKEND_ORT: u32 = 1;
/// Execution provider: CPU.
pub const AAM_PROVIDER_CPU: u32 = 0;
/// Execution provider: CUDA (`AAM_BACKEND_ORT` with the onnxruntime-gpu library).
pub const AAM_PROVIDER_CUDA: u32 = 1;
/// Execution provider: TensorRT (`AAM_BACKEND_ORT` with onnxruntime-gpu and TensorRT 10).
pub const AAM_PROVIDER_TENSORRT: u32 = 2;

/// `AamParams.asv_cache`: split graphs when present, embeddings kept within a call.
pub const AAM_ASV_PER_CALL: u32 = 0;
/// `AamParams.asv_cache`: split graphs required, embeddings kept across calls (LRU).
pub const AAM_ASV_CACHE: u32 = 1;
/// `AamParams.asv_cache`: the single `model.onnx`.
pub const AAM_ASV_SINGLE_GRAPH: u32 = 2;

/// How to load and run a model. Start from `aam_default_params()` and change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AamParams {
    /// Must be `AAM_ABI_VERSION` (set by `aam_default_params()`).
    pub abi_version: u32,
    /// `AAM_BACKEND_TRACT` (default) or `AAM_BACKEND_ORT`.
    pub backend: u32,
    /// `AAM_PROVIDER_CPU` (default), `AAM_PROVIDER_CUDA` or `AAM_PROVIDER_TENSORRT`.
    pub provider: u32,
    /// Worker threads for `aam_predict_biom` (each runs whole batches); ≥ 1. Default 1.
    pub threads: u32,
    /// Samples per forward pass in `aam_predict_biom`; ≥ 1. Default 16.
    pub batch_size: u32,
    /// 1: run on the CPU when the provider is not available (see
    /// `aam_model_fallback_reason()`); 0 (default): fail with `AAM_STATUS_UNAVAILABLE`.
    pub allow_fallback: u32,
    /// Threads of one forward pass: ONNX Runtime's intra-op threads; on tract, the
    /// workers for ASV chunks and the samples of the sample graph. 0 (default): one per
    /// core on ONNX Runtime, 1 on tract.
    pub ort_threads: u32,
    /// ONNX Runtime library path (libonnxruntime.so.1.31.1); NULL (default): the
    /// `ORT_DYLIB_PATH` environment variable. Only read during the load call.
    pub ort_library: *const c_char,
    /// TensorRT engine cache directory; NULL (default): no cache. Only read during the
    /// load call.
    pub tensorrt_engine_cache: *const c_char,
    /// 1: TensorRT builds FP16 engines; 0 (default): FP32.
    pub tensorrt_fp16: u32,
    /// Largest batch of the TensorRT optimization profile; default 64.
    pub tensorrt_max_batch: u32,
    /// Which graphs run. `AAM_ASV_PER_CALL` (0, default): the split graphs
    /// (`asv_encoder.onnx` + `sample_model.onnx`, when they lie beside `model.onnx`;
    /// `aam_model_load` only) encoding each unique ASV of a call once, in chunks, empty
    /// slots skipped; otherwise `model.onnx`. `AAM_ASV_CACHE` (1): the split graphs
    /// (required), embeddings also kept across calls (LRU). `AAM_ASV_SINGLE_GRAPH` (2):
    /// `model.onnx`, every ASV slot through the nucleotide attention at once.
    pub asv_cache: u32,
    /// ASV embeddings kept across calls with `AAM_ASV_CACHE` (LRU); 0: only within a
    /// call. Default 100000.
    pub asv_cache_capacity: u32,
    /// Most ASVs per ASV-encoder run on the split graphs (bounds the nucleotide
    /// attention's memory); 0 (default): 4 on tract, 16 on ONNX Runtime.
    pub asv_chunk_rows: u32,
}

/// The default parameters: tract on CPU, 1 thread, batch size 16.
#[no_mangle]
pub extern "C" fn aam_default_params() -> AamParams {
    AamParams {
        abi_version: AAM_ABI_VERSION,
        backend: AAM_BACKEND_TRACT,
        provider: AAM_PROVIDER_CPU,
        threads: 1,
        batch_size: 16,
        allow_fallback: 0,
        ort_threads: 0,
        ort_library: std::ptr::null(),
        tensorrt_engine_cache: std::ptr::null(),
        tensorrt_fp16: 0,
        tensorrt_max_batch: 64,
        asv_cache: 0,
        asv_cache_capacity: 100_000,
        asv_chunk_rows: 0,
    }
}

/// Whether this library was built with `backend` (`AAM_BACKEND_TRACT` always;
/// `AAM_BACKEND_ORT` in builds with the `ort` feature): 1 or 0.
#[no_mangle]
pub extern "C" fn aam_has_backend(backend: u32) -> u32 {
    match backend {
        AAM_BACKEND_TRACT => 1,
        AAM_BACKEND_ORT => u32::from(cfg!(feature = "ort")),
        _ => 0,
    }
}

impl AamParams {
    /// Checks every field.
    pub(crate) fn validate(&self) -> Result<(), Failure> {
        let invalid = |m: String| Err(Failure::new(AamStatus::InvalidArgument, m));
        if self.abi_version != AAM_ABI_VERSION {
            return invalid(format!(
                "params.abi_version is {} but this library has ABI {AAM_ABI_VERSION}; start from aam_default_params() and rebuild against this aam.h",
                self.abi_version
            ));
        }
        match self.backend {
            AAM_BACKEND_TRACT => {}
            AAM_BACKEND_ORT if aam_has_backend(AAM_BACKEND_ORT) == 1 => {}
            AAM_BACKEND_ORT => {
                return Err(Failure::new(
                    AamStatus::Unsupported,
                    "this library was built without ONNX Runtime (cargo feature `ort`); use AAM_BACKEND_TRACT",
                ))
            }
            b => {
                return invalid(format!(
                    "params.backend {b} is not AAM_BACKEND_TRACT (0) or AAM_BACKEND_ORT (1)"
                ))
            }
        }
        if self.provider > AAM_PROVIDER_TENSORRT {
            return invalid(format!(
                "params.provider {} is not 0 (CPU), 1 (CUDA) or 2 (TensorRT)",
                self.provider
            ));
        }
        if self.allow_fallback > 1 || self.tensorrt_fp16 > 1 {
            return invalid("params.allow_fallback and params.tensorrt_fp16 must be 0 or 1".into());
        }
        if self.asv_cache > AAM_ASV_SINGLE_GRAPH {
            return invalid(format!(
                "params.asv_cache {} is not AAM_ASV_PER_CALL (0), AAM_ASV_CACHE (1) or AAM_ASV_SINGLE_GRAPH (2)",
                self.asv_cache
            ));
        }
        if self.tensorrt_max_batch == 0 {
            return invalid("params.tensorrt_max_batch must be at least 1".into());
        }
        if self.threads == 0 || self.batch_size == 0 {
            return invalid("params.threads and params.batch_size must be at least 1".into());
        }
        Ok(())
    }

    /// The runtime's load options for the model at `model_path` (`None`: loaded from
    /// memory); path arguments are read now, while the caller's strings are valid.
    pub(crate) fn load_options(&self, model_path: Option<&Path>) -> Result<LoadOptions, Failure> {
        let path = |p: *const c_char, name: &str| -> Result<Option<PathBuf>, Failure> {
            if p.is_null() {
                Ok(None)
            } else {
                Ok(Some(PathBuf::from(utf8_arg(p, name)?)))
            }
        };
        Ok(LoadOptions {
            backend: if self.backend == AAM_BACKEND_ORT {
                Backend::Ort
            } else {
                Backend::Tract
            },
            provider: match self.provider {
                AAM_PROVIDER_CUDA => ExecutionProvider::Cuda,
                AAM_PROVIDER_TENSORRT => ExecutionProvider::TensorRt,
                _ => ExecutionProvider::Cpu,
            },
            allow_fallback: self.allow_fallback == 1,
            threads: (self.ort_threads > 0).then_some(self.ort_threads as usize),
            ort_library: path(self.ort_library, "params.ort_library")?,
            tensorrt: TensorRtOptions {
                engine_cache: path(self.tensorrt_engine_cache, "params.tensorrt_engine_cache")?,
                fp16: self.tensorrt_fp16 == 1,
                max_batch: self.tensorrt_max_batch as usize,
                opt_batch: 16.min(self.tensorrt_max_batch as usize),
            },
            asv_cache: match self.asv_cache {
                AAM_ASV_CACHE => Some(AsvCacheOptions {
                    capacity: self.asv_cache_capacity as usize,
                    chunk_rows: self.asv_chunk_rows as usize,
                }),
                // A file's export without the split graphs runs model.onnx
                // (`Model::load_with`); a model given as bytes runs its one graph.
                AAM_ASV_PER_CALL if model_path.is_some() => Some(AsvCacheOptions {
                    capacity: 0,
                    chunk_rows: self.asv_chunk_rows as usize,
                }),
                _ => None,
            },
            single_graph: self.asv_cache == AAM_ASV_SINGLE_GRAPH,
        })
    }

    /// A copy without the borrowed strings, safe to keep after the load call.
    pub(crate) fn detached(&self) -> AamParams {
        AamParams {
            ort_library: std::ptr::null(),
            tensorrt_engine_cache: std::ptr::null(),
            ..*self
        }
    }
}
