//! Killing what a test's scripts left running.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::path::Path;

/// Kills (SIGKILL) the process group, and the process, of every pid in a `*.pid` file below
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
                .and_then(|t| t.trim().parse::<i32>().ok())
                .filter(|p| *p > 1);
            if let Some(pid) = pid {
                let pid = Pid::from_raw(pid);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
}
