//! Jobs with their stages and tasks, task logs and the failed-task summary, as frontends show
//! them (tasks name their hosts).

use crate::model::{
    Job, JobId, JobOptions, JobState, LogLine, LogStream, StageId, StageState, Target, TaskId,
    TaskState,
};
use serde::{Deserialize, Serialize};

/// A job without its stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: JobId,
    /// Its cluster's name.
    pub cluster: String,
    /// The command.
    pub command: String,
    /// The target.
    pub target: Target,
    /// How it runs.
    pub options: JobOptions,
    /// Its state.
    pub state: JobState,
    /// When it was submitted (ms since the epoch).
    pub created_at: i64,
    /// When it first ran.
    pub started_at: Option<i64>,
    /// When it reached a final state.
    pub finished_at: Option<i64>,
}

impl JobView {
    /// The view of `job`, of cluster `cluster`.
    pub fn of(job: Job, cluster: &str) -> JobView {
        JobView {
            id: job.id,
            cluster: cluster.to_string(),
            command: job.command,
            target: job.target,
            options: job.options,
            state: job.state,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// A job with its stages and their tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobDetailView {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Its stages in a topological order.
    pub stages: Vec<StageView>,
}

/// A stage with its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: StageId,
    /// `START hello/hello_server`.
    pub name: String,
    /// The component.
    pub component: String,
    /// The command its tasks run.
    pub command: String,
    /// Its state.
    pub state: StageState,
    /// The stages it waits for.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<i64>))]
    pub after: Vec<StageId>,
    /// Its tasks, one per unit.
    pub tasks: Vec<TaskView>,
}

/// A task of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskView {
    /// Its id (for its log: `/jobs/{job}/tasks/{task}/log`).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: TaskId,
    /// Its host's name.
    pub host: String,
    /// Its state.
    pub state: TaskState,
    /// The current attempt, from 1.
    pub attempt: u32,
    /// The script's exit code, once finished.
    pub exit_code: Option<i32>,
    /// Why it ended as it did, where there is more to say than the state.
    pub message: Option<String>,
    /// When the current attempt started.
    pub started_at: Option<i64>,
    /// When the current attempt finished.
    pub finished_at: Option<i64>,
}

/// A task that did not succeed and says why: one line of a failed job's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTask<'a> {
    /// The task.
    pub task: &'a TaskView,
    /// Its stage.
    pub stage: &'a StageView,
}

impl std::fmt::Display for FailedTask<'_> {
    /// `task 12 (START zk/zookeeper_server on h1) FAILED with exit code 1: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.task;
        write!(
            f,
            "task {} ({} on {}) {}",
            t.id, self.stage.name, t.host, t.state
        )?;
        if let Some(code) = t.exit_code {
            write!(f, " with exit code {code}")?;
        }
        if let Some(m) = &t.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl JobDetailView {
    /// The tasks that did not succeed and say why, stage by stage: FAILED and TIMED_OUT ones,
    /// and, in a CANCELED job, canceled ones with a message.
    pub fn failed_tasks(&self) -> Vec<FailedTask<'_>> {
        let canceled = self.job.state == JobState::Canceled;
        self.stages
            .iter()
            .flat_map(|stage| {
                stage
                    .tasks
                    .iter()
                    .filter(move |t| {
                        matches!(t.state, TaskState::Failed | TaskState::TimedOut)
                            || (canceled && t.state == TaskState::Canceled && t.message.is_some())
                    })
                    .map(move |task| FailedTask { task, stage })
            })
            .collect()
    }

    /// How the job ended, in one line: `job 7 (deploy on prod) ended FAILED: task …; task …`.
    pub fn summary(&self) -> String {
        let j = &self.job;
        let mut msg = format!(
            "job {} ({} on {}) ended {}",
            j.id, j.command, j.cluster, j.state
        );
        let failed: Vec<String> = self
            .failed_tasks()
            .iter()
            .map(ToString::to_string)
            .collect();
        if !failed.is_empty() {
            msg.push_str(": ");
            msg.push_str(&failed.join("; "));
        }
        msg
    }

    /// Tasks that ended, and all tasks.
    pub fn progress(&self) -> (usize, usize) {
        let tasks = self.stages.iter().flat_map(|s| &s.tasks);
        let total = tasks.clone().count();
        (tasks.filter(|t| t.state.is_final()).count(), total)
    }
}

/// The answer of `GET /jobs/{job}/tasks/{task}/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskLog {
    /// The lines, by attempt then line number.
    pub lines: Vec<LogLineView>,
}

/// One line a task's script wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLineView {
    /// The attempt that wrote it.
    pub attempt: u32,
    /// Its number within the attempt's output.
    pub seq: u64,
    /// `stdout` or `stderr`.
    pub stream: LogStream,
    /// When it was read (ms since the epoch).
    pub at: i64,
    /// The text.
    pub line: String,
}

impl From<LogLine> for LogLineView {
    fn from(l: LogLine) -> LogLineView {
        LogLineView {
            attempt: l.attempt,
            seq: l.seq,
            stream: l.stream,
            at: l.at,
            line: l.line,
        }
    }
}
