//! What the web console is built from: the files of `bigmgr-ui/` a build reads, and one hash
//! of them. The build script (`build.rs`) stamps the assets it embeds with this hash, and the
//! tests hash the sources again to prove that what `bigmgr serve` serves was built from them.
//!
//! This file is compiled twice: into the library, and into the build script (`#[path]`), so
//! both compute the hash with the same code. It uses only `std` and `sha2`.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The directories under `bigmgr-ui/` whose every file is a build input.
pub const INPUT_DIRS: &[&str] = &["src", "public"];

/// Every build input of the console under `ui` (its `bigmgr-ui/` directory), relative to it
/// with `/` separators, sorted: the files of [`INPUT_DIRS`] and the top-level files but hidden
/// ones (`package.json`, the lock file, `index.html`, the Vite and TypeScript configs …).
pub fn inputs(ui: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(ui)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !name.starts_with('.') {
            out.push(name);
        }
    }
    for dir in INPUT_DIRS {
        walk(&ui.join(dir), dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &name, out)?;
        } else if kind.is_file() {
            out.push(name);
        }
    }
    Ok(())
}

/// The hex SHA-256 of the console's sources: for each input in order, its relative path, a
/// NUL, its bytes and a NUL.
pub fn hash(ui: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for rel in inputs(ui)? {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(std::fs::read(ui.join(&rel))?);
        h.update([0]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The console's source directory in this source tree (`<workspace>/bigmgr-ui`).
pub fn source_dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .parent()
        .map(|p| p.join("bigmgr-ui"))
        .unwrap_or_else(|| PathBuf::from("bigmgr-ui"))
}
