//! Availability of an execution provider, checked before ONNX Runtime is asked for it, so
//! the error says what is missing: the provider in the library (`onnxruntime-gpu`), the
//! CUDA driver and a device (through `cudarc`), TensorRT's `libnvinfer`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ort::ep::{self, ExecutionProvider as _};

use crate::options::ExecutionProvider;

/// `Ok` when `provider` can run here; otherwise what is missing, in words.
pub(crate) fn probe(provider: ExecutionProvider, library: &Path) -> Result<(), String> {
    match provider {
        ExecutionProvider::Cpu => Ok(()),
        ExecutionProvider::Cuda => {
            in_library(ep::CUDA::is_available(), "CUDA", library)?;
            cuda_devices().map(|_| ())
        }
        ExecutionProvider::TensorRt => {
            in_library(ep::TensorRT::is_available(), "TensorRT", library)?;
            cuda_devices()?;
            tensorrt_library()
        }
    }
}

fn in_library(available: ort::Result<bool>, name: &str, library: &Path) -> Result<(), String> {
    match available {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the ONNX Runtime library {} has no {name} execution provider (it is the CPU build); install `onnxruntime-gpu=={}` and point ORT_DYLIB_PATH at its libonnxruntime.so",
            library.display(),
            super::RECOMMENDED_ORT_VERSION
        )),
        Err(e) => Err(format!("cannot list ONNX Runtime's execution providers: {e}")),
    }
}

/// Number of CUDA devices, or why there are none. `cudarc` panics when the driver
/// library is absent, so its presence is checked first.
fn cuda_devices() -> Result<usize, String> {
    // SAFETY: only tries to dlopen libcuda under its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver: libcuda.so cannot be loaded (install the NVIDIA driver, or run on a machine with a GPU)".into());
    }
    let count = catch_unwind(AssertUnwindSafe(|| {
        cudarc::driver::result::init()
            .map_err(|e| format!("the CUDA driver failed to initialise ({e:?})"))?;
        cudarc::driver::result::device::get_count()
            .map_err(|e| format!("the CUDA driver cannot count devices ({e:?})"))
    }))
    .map_err(|_| {
        "the CUDA driver library is incomplete (cudarc panicked loading it)".to_string()
    })??;
    if count < 1 {
        return Err("the CUDA driver reports no GPU device".into());
    }
    Ok(count as usize)
}

/// TensorRT 10's runtime library, which ONNX Runtime's TensorRT provider loads.
fn tensorrt_library() -> Result<(), String> {
    const NAMES: [&str; 2] = ["libnvinfer.so.10", "libnvinfer.so"];
    for name in NAMES {
        // SAFETY: loading TensorRT runs no initialisers with preconditions.
        if unsafe { libloading::Library::new(name) }.is_ok() {
            return Ok(());
        }
    }
    Err("TensorRT 10 is not installed: libnvinfer.so.10 cannot be loaded (`pip install tensorrt-cu13` or the TensorRT packages, and put its lib directory on LD_LIBRARY_PATH)".into())
}
