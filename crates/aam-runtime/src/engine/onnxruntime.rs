//! The ONNX Runtime engine (`ort` with `load-dynamic`). The library is loaded once per
//! process, eagerly at the first model load, from `--ort-lib` / `ORT_DYLIB_PATH`; its
//! version is checked before `ort` touches it, so a missing or old library is a typed
//! error, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use aam_config::ModelConfig;
use ort::ep;
use ort::session::Session;

use super::probe;
use super::{Input, NamedOutputs, Placement};
use crate::error::{Result, RuntimeError};
use crate::options::{Backend, ExecutionProvider, LoadOptions};

/// Oldest ONNX Runtime this build runs on (C API 31, ort feature `api-31`).
pub const REQUIRED_ORT_VERSION: &str = "1.31.0";
/// The ONNX Runtime version aam is tested with (PyPI `onnxruntime==1.31.1`).
pub const RECOMMENDED_ORT_VERSION: &str = "1.31.1";
const REQUIRED_MINOR: u32 = 31;

/// The loaded library and the one `ort` environment of the process.
struct OrtLibrary {
    path: PathBuf,
    version: String,
    environment: ort::environment::Environment,
}

static LIBRARY: Mutex<Option<Arc<OrtLibrary>>> = Mutex::new(None);

fn library_err(path: &Path, message: impl Into<String>) -> RuntimeError {
    RuntimeError::OrtLibrary {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads the version string of the ONNX Runtime library at `path` without initialising
/// it (`OrtGetApiBase()->GetVersionString()`).
///
/// Errors: [`RuntimeError::OrtLibrary`] when the file cannot be loaded or is not ONNX
/// Runtime.
pub fn library_version(path: &Path) -> Result<String> {
    // SAFETY: loading ONNX Runtime runs no initialisers with preconditions; the symbol has
    // the C signature `const OrtApiBase* OrtGetApiBase(void)` of onnxruntime_c_api.h.
    unsafe {
        let lib = libloading::Library::new(path)
            .map_err(|e| library_err(path, format!("cannot be loaded ({e})")))?;
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").map_err(|_| {
                library_err(path, "is not ONNX Runtime (no `OrtGetApiBase` symbol)")
            })?;
        let base = get_base();
        if base.is_null() {
            return Err(library_err(path, "OrtGetApiBase() returned NULL"));
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err(library_err(path, "reports no version"));
        }
        Ok(std::ffi::CStr::from_ptr(version)
            .to_string_lossy()
            .into_owned())
    }
}

/// The library to load: the option, else `ORT_DYLIB_PATH`.
fn library_path(requested: Option<&Path>) -> Result<PathBuf> {
    let path = match requested {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                return Err(library_err(
                    Path::new("<none>"),
                    format!("no library given; pass --ort-lib PATH or set ORT_DYLIB_PATH (`pip install onnxruntime=={RECOMMENDED_ORT_VERSION}` provides onnxruntime/capi/libonnxruntime.so.{RECOMMENDED_ORT_VERSION})"),
                ))
            }
        },
    };
    if !path.is_file() {
        return Err(library_err(
            &path,
            "no such file; pass --ort-lib or ORT_DYLIB_PATH pointing at libonnxruntime.so",
        ));
    }
    path.canonicalize()
        .map_err(|e| library_err(&path, format!("cannot resolve the path ({e})")))
}

fn check_version(path: &Path, version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().flatten(), parts.next().flatten());
    match (major, minor) {
        (Some(1), Some(m)) if m >= REQUIRED_MINOR => Ok(()),
        _ => Err(RuntimeError::OrtVersion {
            path: path.display().to_string(),
            found: version.to_string(),
            required: REQUIRED_ORT_VERSION.to_string(),
            recommended: RECOMMENDED_ORT_VERSION.to_string(),
        }),
    }
}

fn lock_library() -> MutexGuard<'static, Option<Arc<OrtLibrary>>> {
    LIBRARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Loads (once per process) and returns the ONNX Runtime library.
fn library(requested: Option<&Path>) -> Result<Arc<OrtLibrary>> {
    let mut loaded = lock_library();
    if let Some(lib) = loaded.as_ref() {
        // One library per process (ONNX Runtime allows one environment).
        if let Some(req) = requested {
            let same = req.canonicalize().map(|p| p == lib.path).unwrap_or(false);
            if !same {
                return Err(library_err(
                    req,
                    format!(
                        "ONNX Runtime {} is already loaded from {} in this process, and one process can use only one library; load every model with the same library",
                        lib.version,
                        lib.path.display()
                    ),
                ));
            }
        }
        return Ok(lib.clone());
    }
    let path = library_path(requested)?;
    let version = library_version(&path)?;
    check_version(&path, &version)?;
    let environment = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(&path)
            .map_err(|e| e.to_string())?
            .with_name("aam")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    }))
    .map_err(|_| library_err(&path, "initialising ONNX Runtime panicked"))?
    .map_err(|e| library_err(&path, format!("cannot initialise ONNX Runtime: {e}")))?;
    let lib = Arc::new(OrtLibrary {
        path,
        version,
        environment,
    });
    *loaded = Some(lib.clone());
    Ok(lib)
}

/// A session of the ONNX Runtime engine. `ort` runs a session through `&mut`, so
/// concurrent callers take turns; ONNX Runtime parallelises inside each run.
pub(crate) struct OrtEngine {
    session: Mutex<Session>,
    _library: Arc<OrtLibrary>,
}

fn session_err(path: &Path, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Load {
        path: path.display().to_string(),
        message: format!("ONNX Runtime cannot prepare the graph: {e}"),
    }
}

fn build_session(
    library: &OrtLibrary,
    bytes: &[u8],
    model: &ModelConfig,
    options: &LoadOptions,
    provider: ExecutionProvider,
) -> std::result::Result<Session, String> {
    let mut builder = Session::builder(&library.environment).map_err(|e| e.to_string())?;
    if let Some(threads) = options.threads {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| e.to_string())?;
    }
    let providers = match provider {
        ExecutionProvider::Cpu => vec![],
        ExecutionProvider::Cuda => vec![ep::CUDA::default().build().error_on_failure()],
        ExecutionProvider::TensorRt => vec![
            tensorrt(options, model)?.build().error_on_failure(),
            // Nodes TensorRT does not take run on CUDA, not on the CPU.
            ep::CUDA::default().build().error_on_failure(),
        ],
    };
    if !providers.is_empty() {
        builder = builder
            .with_execution_providers(providers)
            .map_err(|e| e.to_string())?;
    }
    builder.commit_from_memory(bytes).map_err(|e| e.to_string())
}

/// TensorRT with an optimization profile for the model's dynamic `batch` and `n_asv`.
fn tensorrt(
    options: &LoadOptions,
    model: &ModelConfig,
) -> std::result::Result<ep::TensorRT, String> {
    let t = &options.tensorrt;
    let (limit, width) = (model.token_limit, model.max_bp + 1);
    let shape = |b: usize, s: usize| format!("tokens:{b}x{s}x{width}");
    let mut trt = ep::TensorRT::default()
        .with_fp16(t.fp16)
        .with_profile_min_shapes(shape(1, 1))
        .with_profile_opt_shapes(shape(t.opt_batch.clamp(1, t.max_batch), limit))
        .with_profile_max_shapes(shape(t.max_batch, limit));
    if let Some(dir) = &t.engine_cache {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the engine cache {}: {e}", dir.display()))?;
        trt = trt
            .with_engine_cache(true)
            .with_engine_cache_path(dir.display())
            .with_timing_cache(true)
            .with_timing_cache_path(dir.display());
    }
    Ok(trt)
}

impl OrtEngine {
    /// Loads the library (once), probes the provider, and creates the session.
    pub(crate) fn prepare(
        bytes: &[u8],
        path: &Path,
        model: &ModelConfig,
        options: &LoadOptions,
    ) -> Result<(OrtEngine, Placement)> {
        let library = library(options.ort_library.as_deref())?;
        let requested = options.provider;
        let unavailable = |missing: String| RuntimeError::ProviderUnavailable {
            provider: requested.to_string(),
            missing,
        };
        let mut fallback_reason = None;
        let mut provider = requested;
        if let Err(missing) = probe::probe(requested, &library.path) {
            if !options.allow_fallback {
                return Err(unavailable(missing));
            }
            fallback_reason = Some(missing);
            provider = ExecutionProvider::Cpu;
        }
        let session = match build_session(&library, bytes, model, options, provider) {
            Ok(s) => s,
            // Registration can still fail past the probe (e.g. cuDNN missing): fall back
            // if allowed, naming ONNX Runtime's reason.
            Err(e) if provider != ExecutionProvider::Cpu => {
                if !options.allow_fallback {
                    return Err(unavailable(e));
                }
                fallback_reason = Some(e);
                provider = ExecutionProvider::Cpu;
                build_session(&library, bytes, model, options, provider)
                    .map_err(|e| session_err(path, e))?
            }
            Err(e) => return Err(session_err(path, e)),
        };
        let engine = OrtEngine {
            session: Mutex::new(session),
            _library: library,
        };
        let placement = Placement {
            backend: Backend::Ort,
            provider,
            fallback_reason,
        };
        Ok((engine, placement))
    }

    pub(crate) fn run(&self, inputs: Vec<Input>, names: &[String]) -> Result<NamedOutputs> {
        let run_err = |e: ort::Error| RuntimeError::Run(format!("ONNX Runtime: {e}"));
        let mut values: Vec<(
            std::borrow::Cow<'static, str>,
            ort::session::SessionInputValue,
        )> = Vec::new();
        for input in inputs {
            let (name, value) = match input {
                Input::I64(n, a) => (
                    n,
                    ort::value::Tensor::from_array(a)
                        .map_err(run_err)?
                        .into_dyn(),
                ),
                Input::F32(n, a) => (
                    n,
                    ort::value::Tensor::from_array(a)
                        .map_err(run_err)?
                        .into_dyn(),
                ),
            };
            values.push((name.into(), value.into()));
        }
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(values).map_err(run_err)?;
        names
            .iter()
            .map(|name| {
                let value = outputs
                    .get(name.as_str())
                    .ok_or_else(|| RuntimeError::Run(format!("no output `{name}`")))?;
                let array = value
                    .try_extract_array::<f32>()
                    .map_err(|e| RuntimeError::Run(format!("output {name}: {e}")))?
                    .to_owned();
                Ok((name.clone(), array))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_or_malformed_versions_are_typed_errors_naming_both_versions() {
        let path = Path::new("/opt/ort/libonnxruntime.so.1.20.1");
        for found in ["1.20.1", "1.30.9", "0.99.0", "2.0.0", "garbage"] {
            match check_version(path, found).unwrap_err() {
                RuntimeError::OrtVersion {
                    path: p,
                    found: f,
                    required,
                    recommended,
                } => {
                    assert_eq!(p, "/opt/ort/libonnxruntime.so.1.20.1");
                    assert_eq!(f, found);
                    assert_eq!(required, "1.31.0");
                    assert_eq!(recommended, "1.31.1");
                }
                other => panic!("{found}: {other:?}"),
            }
        }
        for ok in ["1.31.0", "1.31.1", "1.32.0"] {
            check_version(path, ok).unwrap();
        }
    }
}
