//! The machine's processes as `/proc` shows them (Linux), and killing what a test started.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};

/// The pids of every process.
pub fn pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, …
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` runs: it exists and is neither a zombie nor dead. (A container's init may not
/// reap orphans, so a killed orphan can stay a zombie; it runs no more.)
pub fn running(pid: i32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.into_iter().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// The process group of `pid`, if it exists.
pub fn process_group(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// Whether `/proc/<pid>/<file>` (`cmdline`, `environ`) contains `needle`.
pub fn mentions(pid: i32, file: &str, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/{file}"))
        .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
}

/// The pids of the processes other than this one whose `/proc/<pid>/<file>` contains `needle`.
pub fn pids_mentioning(file: &str, needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    pids()
        .into_iter()
        .filter(|&pid| pid != me && mentions(pid, file, needle))
        .collect()
}

/// SIGKILLs `pid` and its process group (unless that is this process's own group): a daemon
/// or script with whatever it started.
pub fn kill_with_group(pid: i32) {
    if pid <= 1 {
        return;
    }
    let pid = Pid::from_raw(pid);
    if let Ok(group) = getpgid(Some(pid))
        && group.as_raw() > 1
        && getpgid(None).ok() != Some(group)
    {
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = kill(pid, Signal::SIGKILL);
}
