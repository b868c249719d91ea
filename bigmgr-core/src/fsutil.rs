//! File helpers shared by the agent's on-disk state (ledger, spool, scripts, credential): a file
//! is replaced whole, never seen half-written.

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to a unique temporary file beside `path` with `mode`, then renames it over
/// `path`, so readers never see a half-written file. With `durable`, the data reaches the disk
/// before the rename (for files that are the only copy of what they hold).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces the append-only log at `path` by `bytes`, durably, and opens it for appending.
pub(crate) fn rewrite_log(path: &Path, bytes: &[u8]) -> Result<File> {
    write_atomic(path, bytes, 0o644, true).map_err(|e| Error::io(path, e))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
