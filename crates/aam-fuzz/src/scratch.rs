//! Scratch files: the loaders under test read paths, so each input is written to a file
//! of this process and thread first (a temporary folder, reused across inputs and removed
//! when the thread ends: test threads leave nothing behind in the temporary directory).

use std::path::PathBuf;

/// A thread's scratch folder, removed when the thread's locals are destroyed.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static DIR: ScratchDir = {
        let dir = std::env::temp_dir().join(format!(
            "aam-fuzz-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        ScratchDir(dir)
    };
}

/// Writes `bytes` to the scratch file `name` of the calling thread and returns its path.
///
/// Panics if the temporary folder cannot be written (the fuzzer cannot run at all then).
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = DIR.with(|d| d.0.join(name));
    std::fs::write(&path, bytes).expect("write a scratch file");
    path
}
