//! Status codes, the thread-local last error, and the guard every entry point runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AamStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument has a wrong value: shape, dtype, index, params, non-UTF-8 path.
    InvalidArgument = 2,
    /// A handle is NULL, already freed, or not of the expected kind.
    InvalidHandle = 3,
    /// A file cannot be read.
    Io = 4,
    /// The model file is not an aam export, or cannot be prepared.
    Model = 5,
    /// The feature table is unreadable or does not suit the model.
    Data = 6,
    /// Running the model failed.
    Inference = 7,
    /// The request needs something this build lacks (e.g. ONNX Runtime).
    Unsupported = 8,
    /// An internal error (a caught panic); please report it.
    Internal = 9,
    /// The backend or execution provider cannot run here: the ONNX Runtime library is
    /// missing or too old, no CUDA driver or device, no TensorRT.
    Unavailable = 10,
}

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: AamStatus,
    pub message: String,
}

impl Failure {
    pub fn new(status: AamStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl From<aam_runtime::RuntimeError> for Failure {
    fn from(e: aam_runtime::RuntimeError) -> Self {
        use aam_runtime::RuntimeError as E;
        let status = match &e {
            E::Load { .. } => AamStatus::Model,
            E::Data(aam_data::DataError::Io { .. }) => AamStatus::Io,
            E::Data(_) => AamStatus::Data,
            E::Input(_) => AamStatus::InvalidArgument,
            E::Run(_) => AamStatus::Inference,
            E::OrtLibrary { .. } | E::OrtVersion { .. } | E::ProviderUnavailable { .. } => {
                AamStatus::Unavailable
            }
            E::Unsupported(_) => AamStatus::Unsupported,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// `s` as a C string; an interior NUL (which C cannot represent) becomes a space.
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Reads a NUL-terminated UTF-8 argument (`name` in messages); the caller checked non-NULL.
pub(crate) fn utf8_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Failure::new(AamStatus::InvalidArgument, format!("{name} is not UTF-8")))
}

/// Sets `*out` to name `index` of `names` (borrowed from the handle that owns them); an
/// index past the end is `AAM_STATUS_INVALID_ARGUMENT` naming the `what` and their count.
pub(crate) fn name_at(
    names: &[CString],
    index: usize,
    what: &str,
    out: *mut *const c_char,
) -> Result<(), Failure> {
    let name = names.get(index).ok_or_else(|| {
        Failure::new(
            AamStatus::InvalidArgument,
            format!(
                "{what} index {index} is out of range (there are {})",
                names.len()
            ),
        )
    })?;
    unsafe { *out = name.as_ptr() };
    Ok(())
}

fn set_last_error(message: &str) {
    let c = c_string(message);
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, turning its error or panic into a status and the thread's last error.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> AamStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => AamStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_last_error(&format!("internal error (please report): {what}"));
            AamStatus::Internal
        }
    }
}

/// Checks that a pointer argument is not NULL.
pub(crate) fn non_null<T>(p: *const T, name: &str) -> Result<(), Failure> {
    if p.is_null() {
        Err(Failure::new(
            AamStatus::NullArgument,
            format!("{name} is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// The message of the last failed call on this thread ("" if none), valid until the next
/// failing call on this thread.
#[no_mangle]
pub extern "C" fn aam_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A static name for a status code (`"AAM_STATUS_OK"`, …; `"unknown"` for other values).
#[no_mangle]
pub extern "C" fn aam_status_name(status: i32) -> *const c_char {
    let name: &'static str = match status {
        0 => "AAM_STATUS_OK\0",
        1 => "AAM_STATUS_NULL_ARGUMENT\0",
        2 => "AAM_STATUS_INVALID_ARGUMENT\0",
        3 => "AAM_STATUS_INVALID_HANDLE\0",
        4 => "AAM_STATUS_IO\0",
        5 => "AAM_STATUS_MODEL\0",
        6 => "AAM_STATUS_DATA\0",
        7 => "AAM_STATUS_INFERENCE\0",
        8 => "AAM_STATUS_UNSUPPORTED\0",
        9 => "AAM_STATUS_INTERNAL\0",
        10 => "AAM_STATUS_UNAVAILABLE\0",
        _ => "unknown\0",
    };
    name.as_ptr().cast()
}
