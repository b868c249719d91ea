//! Where the binaries under test and the repository's stacks are.

use std::path::{Path, PathBuf};

/// The target directory holding `bigmgr` and `bigmgr-agent`: `BIGMGR_TARGET_DIR` if set, else
/// the one the running test or benchmark was built in (it runs from `<target>/<profile>/deps/`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BIGMGR_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// The download cache every test agent's scripts share (`BIGMGR_CACHE_DIR`): `software-cache`
/// beside the profile directory (`target/software-cache`), so software a stack fetches is
/// downloaded once per machine, not once per test or run.
pub fn software_cache() -> PathBuf {
    let t = target_dir();
    t.parent().unwrap_or(&t).join("software-cache")
}

/// A binary of the target directory; panics with how to build it if it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent` \
         (or `cargo test --workspace`) first, or set BIGMGR_TARGET_DIR",
        path.display()
    );
    path
}

/// The `bigmgr` binary.
pub fn bigmgr_bin() -> PathBuf {
    bin("bigmgr")
}

/// The `bigmgr-agent` binary.
pub fn agent_bin() -> PathBuf {
    bin("bigmgr-agent")
}

/// The repository's `stacks/` directory (the shipped stacks).
pub fn stacks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks")
}
