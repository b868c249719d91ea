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
