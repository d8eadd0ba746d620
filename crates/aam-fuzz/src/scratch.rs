//! Scratch files: the loaders under test read paths, so each input is written to a file
//! of this process and thread first (a temporary folder, reused across inputs).

use std::path::PathBuf;

/// Writes `bytes` to the scratch file `name` of the calling thread and returns its path.
///
/// Panics if the temporary folder cannot be written (the fuzzer cannot run at all then).
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "aam-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a scratch file");
    path
}
