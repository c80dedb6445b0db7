//! A scratch folder that goes when its guard is dropped: a mutant's
//! patched files, users' mapped configuration files, a compose file.

use std::path::{Path, PathBuf};

/// A folder under the system's temporary folder, named for this process
/// (so parallel runs never share one), removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, not yet created, folder `stackproof-<what>-<pid>-<random>`.
    pub fn new(what: &str) -> TempDir {
        TempDir(std::env::temp_dir().join(format!(
            "stackproof-{what}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )))
    }

    /// Takes charge of an existing folder: it goes on drop.
    pub fn adopt(path: PathBuf) -> TempDir {
        TempDir(path)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
