//! The data of a job's live events (`GET /jobs/{job}/events`, Server-Sent Events): what the
//! server sends and what the typed client reads back.

use super::LogLineView;
use crate::model::{JobState, TaskState};
use serde::{Deserialize, Serialize};

/// The data of a `job` or `end` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobEvent {
    /// The job's id.
    pub id: i64,
    /// Its state.
    pub state: JobState,
}

/// The data of a `task` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskEvent {
    /// The task's id.
    pub id: i64,
    /// Its state.
    pub state: TaskState,
}

/// The data of a `log` event: one line a task's script wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEvent {
    /// The task's id.
    pub task: i64,
    /// The line.
    #[serde(flatten)]
    pub line: LogLineView,
}

/// One event of a job's live stream ([`crate::Manager::job_events`]; `GET /jobs/{job}/events`
/// sends each as a Server-Sent Event named by [`JobStreamEvent::name`] with the payload as
/// its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStreamEvent {
    /// The job changed state.
    Job(JobEvent),
    /// A task changed state.
    Task(TaskEvent),
    /// A task's script wrote a line.
    Log(LogEvent),
    /// The job is final: the last event.
    End(JobEvent),
}

impl JobStreamEvent {
    /// The event's name: `job`, `task`, `log` or `end`.
    pub fn name(&self) -> &'static str {
        match self {
            JobStreamEvent::Job(_) => "job",
            JobStreamEvent::Task(_) => "task",
            JobStreamEvent::Log(_) => "log",
            JobStreamEvent::End(_) => "end",
        }
    }

    /// The payload as JSON.
    pub fn data(&self) -> serde_json::Value {
        let v = match self {
            JobStreamEvent::Job(e) | JobStreamEvent::End(e) => serde_json::to_value(e),
            JobStreamEvent::Task(e) => serde_json::to_value(e),
            JobStreamEvent::Log(e) => serde_json::to_value(e),
        };
        v.unwrap_or_default()
    }

    /// The event named `name` with JSON payload `data`; `None` for another name (`error` is
    /// the caller's), an error for a payload that does not fit.
    pub fn parse(name: &str, data: &str) -> Option<serde_json::Result<JobStreamEvent>> {
        Some(match name {
            "job" => serde_json::from_str(data).map(JobStreamEvent::Job),
            "task" => serde_json::from_str(data).map(JobStreamEvent::Task),
            "log" => serde_json::from_str(data).map(JobStreamEvent::Log),
            "end" => serde_json::from_str(data).map(JobStreamEvent::End),
            _ => return None,
        })
    }
}

/// A part of a cluster a console shows as one list, and refreshes when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ClusterTopic {
    /// Hosts: added, removed, registered, their state, heartbeat, address or metrics.
    Hosts,
    /// Service instances added or removed.
    Services,
    /// Units: placed, removed, their state, health or applied config version.
    Units,
    /// Config versions of the cluster's services.
    Configs,
    /// Relations added or removed.
    Relations,
    /// Jobs: submitted, or changing state.
    Jobs,
    /// Alerts: one changed state (raised, resolved, escalated) or was silenced.
    Alerts,
}

/// The data of a `changed` event of `GET /clusters/{cluster}/events`: which parts of the
/// cluster changed since the last event (re-read them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterEvent {
    /// What changed, in a fixed order; never empty.
    pub topics: Vec<ClusterTopic>,
}
