//! The agent runtime: what runs on each host. [`Agent`] takes [`ToAgent`] messages, records
//! each run in its [`Ledger`] before running it (exactly-once per run id, docs/design.md §7), runs it
//! with an [`Executor`] and reports [`AgentEvent`]s.
//!
//! Runs survive the agent: the [`ProcessExecutor`] starts each script detached (its own process
//! group, output appended to `stdout.log`/`stderr.log` in the run's task directory, its exit
//! code written to the `exit` file there), and the ledger records the process when it starts
//! ([`StartedRun`]). An agent opened on the same root later adopts the runs still in flight:
//! it resumes watching those still running ([`Executor::resume`]), reports those that ended
//! meanwhile from their `exit` files, and only the rest end FAILED with an unknown outcome.
//!
//! [`ToAgent`]: crate::transport::ToAgent
//! [`AgentEvent`]: crate::transport::AgentEvent

pub mod checks;
pub mod data;
mod health;
mod ledger;
mod local;
mod metrics;
mod process;
mod runtime;
mod spool;
mod stacklib;
#[allow(unsafe_code)]
mod supervisor;

pub use health::{check_records, check_units, unit_records};
pub use ledger::{Ledger, LedgerEntry};
pub use local::LocalTransport;
pub use metrics::Sampler;
pub use process::ProcessExecutor;
pub use runtime::{Agent, AgentConfig, AgentHandle};
pub use spool::Spool;
pub use stacklib::{STACKLIB, STACKLIB_ENV, stacklib_path, write_stacklib};

use crate::model::{LogStream, RunId, TaskState};
use crate::transport::TaskSpec;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Where one run executes, prepared by the [`Agent`].
#[derive(Debug, Clone)]
pub struct ExecEnv {
    /// The agent's root directory.
    pub root: PathBuf,
    /// The unit's directory: `<root>/units/<cluster>/<service>/<component>`; config files are
    /// already written under it.
    pub unit_dir: PathBuf,
    /// This run's directory: `<root>/tasks/<task>.<attempt>`, holding `context.json`.
    pub task_dir: PathBuf,
    /// The script, written under `<root>/scripts/` with mode 0755.
    pub script: PathBuf,
    /// The context file handed to the script as `BIGMGR_CONTEXT`.
    pub context_file: PathBuf,
    /// The environment variables the script gets on top of the agent's own.
    pub env: Vec<(String, String)>,
    /// Between SIGTERM and SIGKILL, on timeout or cancel.
    pub grace: Duration,
}

/// What the agent remembers of a unit it ran a task for, so it can check the unit's health
/// with the stack's `status` command between tasks. Kept as JSON in
/// `<root>/units/<cluster>/<service>/<component>.unit.json` (beside the unit directory, so a
/// script's `remove` that empties the directory leaves it); written before every run of a task
/// of the unit, deleted when a `remove` succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// The cluster name.
    pub cluster: String,
    /// The service instance name.
    pub service: String,
    /// The service definition name.
    pub service_def: String,
    /// The component name.
    pub component: String,
    /// The script of the unit's latest task (absolute).
    pub script: PathBuf,
    /// The unit directory (absolute), the script's working directory.
    pub unit_dir: PathBuf,
    /// The environment the latest task's script got from the agent (`BIGMGR_*`).
    pub env: Vec<(String, String)>,
    /// The component defines a `status` command.
    pub status: bool,
    /// The checks of the unit's alert definitions, as the server rendered them for its latest
    /// task (see [`checks`]).
    #[serde(default)]
    pub checks: Vec<crate::model::CheckSpec>,
}

/// The message of a run whose outcome was lost with an earlier agent: it was received, but
/// neither is its process still running nor did it leave an exit code.
pub(crate) const UNKNOWN_OUTCOME: &str =
    "the agent restarted while this run was in flight; its outcome is unknown";

/// A run's process, as the [`Ledger`] records it when the process starts: enough for a later
/// agent to find the process again (and not mistake another process that got its pid for it)
/// and to enforce what is left of its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRun {
    /// The pid of the run's process (for the [`ProcessExecutor`], its supervisor, which leads
    /// the run's process group).
    pub pid: u32,
    /// The process's start time, field 22 of `/proc/<pid>/stat` (clock ticks since boot);
    /// 0 if it could not be read.
    pub start_time: u64,
    /// When the process started (ms since epoch).
    pub started_at: i64,
    /// The run's timeout in ms, counted from `started_at`.
    pub timeout_ms: u64,
}

impl StartedRun {
    /// The run's timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// When the run times out (ms since epoch).
    pub fn deadline(&self) -> i64 {
        self.started_at
            .saturating_add(i64::try_from(self.timeout_ms).unwrap_or(i64::MAX))
    }
}

/// Receives what an execution reports while it runs.
pub trait ExecSink: Send + Sync {
    /// The script's process started; the [`Agent`] records `started` in its ledger before
    /// reporting it.
    fn started(&self, started: &StartedRun);
    /// The script wrote a line.
    fn line(&self, stream: LogStream, line: String);
}

/// How an execution ended; the [`Agent`] adds the times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// SUCCEEDED, FAILED, TIMED_OUT or CANCELED.
    pub state: TaskState,
    /// The exit code, if the script exited on its own.
    pub exit_code: Option<i32>,
    /// The pid, if a process was started.
    pub pid: Option<u32>,
    /// What happened, where the state alone does not say.
    pub message: Option<String>,
    /// FAILED because the run was lost with an earlier agent: neither its process nor its
    /// exit status survived (the host restarted, say), so whether it did its work is unknown.
    pub outcome_unknown: bool,
}

/// Runs one task's script. Object-safe; the default is [`ProcessExecutor`].
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs `spec` in `env` until it ends, times out (`spec.timeout`) or `cancel` turns true.
    async fn run(
        &self,
        spec: &TaskSpec,
        env: &ExecEnv,
        sink: &dyn ExecSink,
        cancel: watch::Receiver<bool>,
    ) -> ExecOutcome;

    /// Whether the agent must write the script, config files and context file before
    /// [`Executor::run`]. Executors that run nothing (benchmarks) say no.
    fn needs_files(&self) -> bool {
        true
    }

    /// Whether [`Executor::resume`] can finish `run`, which an earlier agent process received
    /// but did not finish: its process still runs, or it left its result in `task_dir`.
    /// `started` is what the ledger recorded when its process started, if it did. The default
    /// says no: the [`Agent`] then records the run as FAILED with an unknown outcome.
    fn resumable(&self, run: RunId, task_dir: &Path, started: Option<&StartedRun>) -> bool {
        let _ = (run, task_dir, started);
        false
    }

    /// Follows `run`, started by an earlier agent process (see [`Executor::resumable`]), until it
    /// ends, as [`Executor::run`] would have: reports its output to `sink` (from the start: the
    /// server ignores lines it already has), enforces the rest of its timeout (counted from
    /// `started.started_at`) and `cancel`, SIGTERM then SIGKILL after `grace`. Does not call
    /// [`ExecSink::started`]. The default reports the outcome as unknown.
    async fn resume(
        &self,
        run: RunId,
        task_dir: &Path,
        started: Option<&StartedRun>,
        grace: Duration,
        sink: &dyn ExecSink,
        cancel: watch::Receiver<bool>,
    ) -> ExecOutcome {
        let _ = (run, task_dir, grace, sink, cancel);
        ExecOutcome {
            state: TaskState::Failed,
            exit_code: None,
            pid: started.map(|s| s.pid),
            message: Some(UNKNOWN_OUTCOME.to_owned()),
            outcome_unknown: true,
        }
    }
}

/// An executor that runs nothing and succeeds at once: for measuring the engine's own overhead.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopExecutor;

#[async_trait]
impl Executor for NoopExecutor {
    async fn run(
        &self,
        _spec: &TaskSpec,
        _env: &ExecEnv,
        _sink: &dyn ExecSink,
        _cancel: watch::Receiver<bool>,
    ) -> ExecOutcome {
        ExecOutcome {
            state: TaskState::Succeeded,
            exit_code: Some(0),
            pid: None,
            message: None,
            outcome_unknown: false,
        }
    }

    fn needs_files(&self) -> bool {
        false
    }
}
