//! Newtype ids of the model: one type per kind of row, so a `TaskId` can't be passed for a `JobId`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}

id_type! {
    /// The id of a cluster.
    ClusterId,
    /// The id of a host.
    HostId,
    /// The id of a service instance.
    ServiceId,
    /// The id of a unit (a component placed on a host).
    UnitId,
    /// The id of a job.
    JobId,
    /// The id of a stage.
    StageId,
    /// The id of a task.
    TaskId,
    /// The id of a user.
    UserId,
    /// The id of an API token.
    ApiTokenId,
    /// The id of an audit event (ascending in the order events were appended).
    AuditId,
    /// The id of a relation between two service instances.
    RelationId,
    /// The id of a relation event.
    RelationEventId,
    /// The id of a named config snapshot.
    SnapshotId,
    /// The id of a pipeline.
    PipelineId,
    /// The id of an alert: one definition about one subject.
    AlertId,
    /// The id of a change of an alert's state.
    AlertChangeId,
    /// The id of a notification target (a webhook).
    AlertTargetId,
    /// The id of a notification to deliver.
    NotificationId,
    /// The id of a maintenance window.
    MaintenanceId,
    /// The id of an assistant chat thread.
    ThreadId,
    /// The id of a message of a chat thread.
    MessageId,
    /// The id of a proposal: a change the assistant suggested, waiting for its user.
    ProposalId,
}

/// What is delivered to an agent: one attempt of one task. A transport redelivery reuses the
/// attempt (so the agent's ledger answers it without running again); an operator's retry makes a
/// new attempt (so it runs). Rendered as `"<task>.<attempt>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId {
    /// The task.
    pub task: TaskId,
    /// The attempt, from 1.
    pub attempt: u32,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.task, self.attempt)
    }
}

impl std::str::FromStr for RunId {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = || {
            crate::Error::Invalid(format!(
                "'{s}' is not a run id of the form <task>.<attempt>"
            ))
        };
        let (t, a) = s.split_once('.').ok_or_else(bad)?;
        Ok(RunId {
            task: TaskId(t.parse().map_err(|_| bad())?),
            attempt: a.parse().map_err(|_| bad())?,
        })
    }
}
