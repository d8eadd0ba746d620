//! The manifest of an ensemble export: `ensemble.json` in a directory beside one
//! export directory per member (each written by `aam export` from one checkpoint).
//! Written by `aam export --checkpoint A --checkpoint B …`, read by the runtime, which
//! runs every member and averages their outputs.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the manifest inside an ensemble directory.
pub const ENSEMBLE_FILE: &str = "ensemble.json";

/// Format of [`EnsembleManifest`] this aam writes and reads.
pub const ENSEMBLE_FORMAT: u32 = 1;

/// Most members an ensemble may list: each is a whole model held in memory and run on
/// every batch.
pub const MAX_MEMBERS: usize = 64;

/// Largest manifest read, bytes (a list of [`MAX_MEMBERS`] short names fits many times).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// `ensemble.json`: the members, each a directory name inside the ensemble directory.
///
/// How the outputs combine (the runtime): class probabilities are the members' mean
/// (`target_prediction` is the log of that mean); a regressor's outputs (values and
/// quantiles) are averaged before the target transform is inverted, so with `zscore`,
/// `minmax` or none the prediction is the members' mean value, and with a log transform
/// the mean of `ln(y + 1)`; the count predictions and sample embeddings are the
/// members' means. Members are predictors (`aam train`).
/// Every member must share the configuration (architecture, input preparation and
/// target with its statistics), as members fine-tuned from one split with different
/// seeds do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleManifest {
    /// [`ENSEMBLE_FORMAT`].
    pub format: u32,
    /// Member directory names (one path component each: letters, digits, `-`, `_`, `.`,
    /// not `.` or `..`), in order.
    pub members: Vec<String>,
}

impl EnsembleManifest {
    /// A manifest of `members` in this format.
    pub fn new(members: Vec<String>) -> Self {
        Self {
            format: ENSEMBLE_FORMAT,
            members,
        }
    }

    /// Reads and checks `<dir>/ensemble.json`, returning each member's directory.
    ///
    /// Errors (with the fix; the caller names the file): unreadable or larger than
    /// [`MAX_MANIFEST_BYTES`]; not this JSON shape; another format; no member or more
    /// than [`MAX_MEMBERS`]; a member named twice, or a name that is not one plain path
    /// component (no `..`, no separator: the manifest names nothing outside its
    /// directory, though a member may be a link the user made).
    pub fn read_members(dir: &Path) -> Result<Vec<PathBuf>, String> {
        use std::io::Read;
        let path = dir.join(ENSEMBLE_FILE);
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot read it ({e})"))?;
        // Read at most one byte past the limit: a FIFO or a device reports no size.
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read it ({e})"))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!(
                "more than an ensemble manifest's {MAX_MANIFEST_BYTES} bytes; write it with `aam export --checkpoint A --checkpoint B …`"
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            "not UTF-8 text; write it with `aam export --checkpoint A --checkpoint B …`".to_string()
        })?;
        let manifest: EnsembleManifest = serde_json::from_str(&text).map_err(|e| {
            format!("not an ensemble manifest ({e}); write it with `aam export --checkpoint A --checkpoint B …`")
        })?;
        manifest.check()?;
        Ok(manifest.members.iter().map(|m| dir.join(m)).collect())
    }

    /// Checks the format, the number of members and each name.
    ///
    /// Errors: as [`EnsembleManifest::read_members`], without the file name.
    pub fn check(&self) -> Result<(), String> {
        if self.format != ENSEMBLE_FORMAT {
            return Err(format!(
                "ensemble format {} is not supported (this aam reads format {ENSEMBLE_FORMAT})",
                self.format
            ));
        }
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(format!(
                "an ensemble lists 1 to {MAX_MEMBERS} members; this one lists {}",
                self.members.len()
            ));
        }
        for (i, name) in self.members.iter().enumerate() {
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !plain {
                return Err(format!(
                    "member {:?} is not a directory name inside the ensemble (letters, digits, '-', '_', '.'; no path)",
                    name
                ));
            }
            if self.members[..i].contains(name) {
                return Err(format!("member {name:?} is listed twice"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_plain_directories_only() {
        let ok = EnsembleManifest::new(vec!["member-1".into(), "member_2.b".into()]);
        assert_eq!(ok.check(), Ok(()));
        for (members, expected) in [
            (
                vec!["../x".to_string()],
                "member \"../x\" is not a directory",
            ),
            (vec!["/abs".into()], "member \"/abs\" is not a directory"),
            (vec!["..".into()], "member \"..\" is not a directory"),
            (vec!["a".into(), "a".into()], "member \"a\" is listed twice"),
            (
                vec![],
                "an ensemble lists 1 to 64 members; this one lists 0",
            ),
        ] {
            let err = EnsembleManifest::new(members).check().unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
        let mut other = ok.clone();
        other.format = 2;
        assert!(other.check().unwrap_err().contains("format 2"));
        let many = EnsembleManifest::new((0..65).map(|i| format!("m{i}")).collect());
        assert!(many.check().unwrap_err().contains("this one lists 65"));
    }

    #[test]
    fn members_are_read_inside_the_directory() {
        let dir = std::env::temp_dir().join(format!("aam-ensemble-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text =
            serde_json::to_string(&EnsembleManifest::new(vec!["b".into(), "a".into()])).unwrap();
        std::fs::write(dir.join(ENSEMBLE_FILE), text).unwrap();
        assert_eq!(
            EnsembleManifest::read_members(&dir).unwrap(),
            vec![dir.join("b"), dir.join("a")]
        );
        std::fs::write(
            dir.join(ENSEMBLE_FILE),
            r#"{"format":1,"members":["a"],"x":1}"#,
        )
        .unwrap();
        let err = EnsembleManifest::read_members(&dir).unwrap_err();
        assert!(err.contains("not an ensemble manifest"), "{err}");
        std::fs::write(dir.join(ENSEMBLE_FILE), vec![b' '; 70_000]).unwrap();
        let err = EnsembleManifest::read_members(&dir).unwrap_err();
        assert!(
            err.starts_with("more than an ensemble manifest's 65536 bytes"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
