//! The stack library: shell functions every stack script needs (pid files that survive a
//! recycled pid, waiting for a port, installing packages under one lock per machine, the
//! context file, logging, SIGTERM then SIGKILL), so that scripts say only what is particular
//! to their service. Its source is `stacklib.sh` beside this file; its API is documented in
//! `docs/stacks.md` ("The stack library").
//!
//! The agent writes it once per content, as `<root>/scripts/<hash>-bigmgr.sh` (the FNV-1a hash
//! of the content, as for scripts), and gives every script its path as `BIGMGR_LIB`. A file
//! named by its content is never rewritten: a newer agent with another library writes another
//! file, and the units' records (whose environment names the file their last task sourced)
//! keep working.

use super::runtime::fnv1a;
use crate::fsutil::write_atomic;
use std::path::{Path, PathBuf};

/// The library's source (POSIX sh), as the agent writes it.
pub const STACKLIB: &str = include_str!("stacklib.sh");

/// The content hash that names the library's file.
const STACKLIB_HASH: u64 = fnv1a(STACKLIB.as_bytes());

/// The environment variable that tells a script where the library is.
pub const STACKLIB_ENV: &str = "BIGMGR_LIB";

/// Where the agent rooted at `root` keeps the library: `<root>/scripts/<hash>-bigmgr.sh`
/// (service names have no `-`, so no service's script directory can be named so).
pub fn stacklib_path(root: &Path) -> PathBuf {
    root.join("scripts")
        .join(format!("{STACKLIB_HASH:016x}-bigmgr.sh"))
}

/// Writes the library to `path` (mode 0644: it is sourced, not run) unless it is there
/// already: the name says the content, so an existing file is the same library.
pub fn write_stacklib(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(path, STACKLIB.as_bytes(), 0o644, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_by_its_content_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = stacklib_path(dir.path());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!("{:016x}-bigmgr.sh", fnv1a(STACKLIB.as_bytes()))
        );
        write_stacklib(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), STACKLIB);
        // An existing file is left alone (not rewritten per task).
        std::fs::write(&path, "kept").unwrap();
        write_stacklib(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
    }

    #[test]
    fn only_prefixed_names_are_defined() {
        for line in STACKLIB.lines() {
            // Top-level assignments: BM_* and _bm_* only.
            if let Some((name, _)) = line.split_once('=')
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                assert!(
                    name.starts_with("BM_") || name.starts_with("_bm_"),
                    "{line}"
                );
            }
            let line = line.trim_start();
            if let Some((name, _)) = line.split_once("() ")
                && !name.contains(' ')
                && !line.starts_with('#')
            {
                assert!(
                    name.starts_with("bm_") || name.starts_with("_bm_"),
                    "{line}"
                );
            }
        }
    }
}
