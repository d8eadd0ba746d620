//! The files of an export written by `aam export`, as a user names them: the directory,
//! or one of its files standing for the whole export.

use std::path::{Path, PathBuf};

use crate::error::{Result, RuntimeError};

/// File name of the weights inside an export directory (read by the Burn runner).
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// The file `name` (e.g. [`crate::ONNX_FILE`], [`SAFETENSORS_FILE`]) of the export that
/// `model` names: the file in it when `model` is a directory, `model` itself when it has
/// `name`'s extension, and its sibling `name` otherwise (a `model.onnx` given where the
/// weights are read).
///
/// An ensemble ([`crate::is_ensemble`]) stands for its `ensemble.json` when the ONNX
/// graph is asked for (the runtime loads every member from it).
///
/// Errors ([`RuntimeError::Load`]): `model` does not exist (named as given, not as the
/// file looked for in it); `model` is an ensemble and `name` is not the ONNX graph (the
/// Burn runner reads one export's weights).
pub fn export_file(model: &Path, name: &str) -> Result<PathBuf> {
    if !model.exists() {
        return Err(RuntimeError::Load {
            path: model.display().to_string(),
            message: "no such file or directory; pass a directory written by `aam export` (or its model.onnx / model.safetensors)".into(),
        });
    }
    if let Some(manifest) = crate::ensemble_manifest(model) {
        if name != crate::ONNX_FILE {
            return Err(RuntimeError::Load {
                path: model.display().to_string(),
                message: format!("an ensemble of exports has no {name} of its own: name one member's directory (e.g. member-1 inside it), or run the ensemble where the ONNX graphs run (`aam predict`/`aam evaluate` on tract or ONNX Runtime)"),
            });
        }
        return Ok(manifest);
    }
    let wanted_ext = Path::new(name).extension();
    Ok(if model.is_dir() {
        model.join(name)
    } else if model.extension() == wanted_ext {
        model.to_path_buf()
    } else {
        model.with_file_name(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_resolves_to_the_file_asked_for() {
        let dir = std::env::temp_dir().join(format!("aam-export-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let onnx = dir.join("model.onnx");
        std::fs::write(&onnx, b"").unwrap();
        assert_eq!(
            export_file(&dir, SAFETENSORS_FILE).unwrap(),
            dir.join(SAFETENSORS_FILE)
        );
        assert_eq!(export_file(&onnx, crate::ONNX_FILE).unwrap(), onnx);
        assert_eq!(
            export_file(&onnx, SAFETENSORS_FILE).unwrap(),
            dir.join(SAFETENSORS_FILE)
        );
        let missing = dir.join("nowhere");
        let err = export_file(&missing, crate::ONNX_FILE)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: no such file or directory;",
                missing.display()
            )),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
