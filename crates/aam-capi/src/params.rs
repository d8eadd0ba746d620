//! Load parameters, passed by value (llama.cpp style) and checked against the ABI version.

use crate::status::{AamStatus, Failure};
use crate::AAM_ABI_VERSION;

/// Backend: the ONNX graph through pure-Rust tract (always built).
pub const AAM_BACKEND_TRACT: u32 = 0;
/// Backend: ONNX Runtime (only in builds with the `ort` feature).
pub const AAM_BACKEND_ORT: u32 = 1;
/// Execution provider: CPU.
pub const AAM_PROVIDER_CPU: u32 = 0;
/// Execution provider: CUDA (ONNX Runtime builds only).
pub const AAM_PROVIDER_CUDA: u32 = 1;
/// Execution provider: TensorRT (ONNX Runtime builds only).
pub const AAM_PROVIDER_TENSORRT: u32 = 2;

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
            AAM_BACKEND_ORT => {
                return Err(Failure::new(
                    AamStatus::Unsupported,
                    "this library was built without ONNX Runtime; use AAM_BACKEND_TRACT",
                ))
            }
            b => {
                return invalid(format!(
                    "params.backend {b} is not AAM_BACKEND_TRACT (0) or AAM_BACKEND_ORT (1)"
                ))
            }
        }
        match self.provider {
            AAM_PROVIDER_CPU => {}
            AAM_PROVIDER_CUDA | AAM_PROVIDER_TENSORRT => {
                return Err(Failure::new(
                    AamStatus::Unsupported,
                    "GPU execution providers need AAM_BACKEND_ORT, which this library was built without; use AAM_PROVIDER_CPU",
                ))
            }
            p => return invalid(format!("params.provider {p} is not 0 (CPU), 1 (CUDA) or 2 (TensorRT)")),
        }
        if self.threads == 0 || self.batch_size == 0 {
            return invalid("params.threads and params.batch_size must be at least 1".into());
        }
        Ok(())
    }
}
