//! The process executor: runs a task's script as a child process.

/// Runs scripts as child processes (to be written).
#[derive(Debug, Default)]
pub struct ProcessExecutor;
