//! Killing what a test's scripts left running.

use crate::procs::kill_with_group;
use std::path::Path;

/// Kills (SIGKILL) the process, and its process group, of every pid in a `*.pid` file below
/// `dir` (the stacks' daemons run detached, in their own sessions).
pub fn kill_daemons(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            kill_daemons(&path);
        } else if path.extension().is_some_and(|x| x == "pid") {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                kill_with_group(pid);
            }
        }
    }
}

/// Kills the daemons below a directory ([`kill_daemons`]) when dropped: a test that starts
/// what starts daemons (a quickstart, in-process agents) holds one, so they are stopped even
/// when it fails.
pub struct DaemonGuard(pub std::path::PathBuf);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        kill_daemons(&self.0);
    }
}
