//! One error type for the whole data layer.
//!
//! Every variant names the file it came from and, where there is one, the sample or
//! ASV at fault, and its message ends with what the user can do about it.

use std::path::PathBuf;

/// Errors returned by every loader and check in `aam-data`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read at all.
    // The operating-system error is part of the message and deliberately not the
    // `source()`: `{:#}` error chains would otherwise print it twice.
    #[error("cannot read {path}: {error}. Check that the path exists and is readable.")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// The file was read but its content is not what the format requires.
    #[error("{path}: {message}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong, naming the sample/ASV/line, and the fix.
        message: String,
    },
    /// Two inputs disagree (table vs. distance matrix vs. metadata).
    #[error("{path}: {message}")]
    Mismatch {
        /// The file that does not match the table.
        path: PathBuf,
        /// What does not match and how to fix it.
        message: String,
    },
    /// A parameter is out of range (e.g. a rarefaction depth of 0).
    #[error("invalid {name}: {message}")]
    Parameter {
        /// The parameter's CLI name, e.g. `--rarefy-depth`.
        name: &'static str,
        /// Why the value is rejected and what is accepted.
        message: String,
    },
}

impl DataError {
    /// A [`DataError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A [`DataError::Mismatch`] for `path`.
    pub fn mismatch(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Mismatch {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// A short, readable form of an ASV ID (a DNA sequence) for error messages:
/// the first 24 characters and the length.
pub fn short_asv(id: &str) -> String {
    if id.chars().count() <= 32 {
        id.to_string()
    } else {
        let head: String = id.chars().take(24).collect();
        format!("{head}… ({} bp)", id.chars().count())
    }
}

/// Formats up to `limit` names as `a, b, c (and N more)`.
pub fn name_list<S: AsRef<str>>(names: &[S], limit: usize) -> String {
    let shown: Vec<&str> = names.iter().take(limit).map(|s| s.as_ref()).collect();
    let mut out = shown.join(", ");
    if names.len() > limit {
        out.push_str(&format!(" (and {} more)", names.len() - limit));
    }
    out
}
