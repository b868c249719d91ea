//! The states of hosts, units, jobs, stages and tasks (docs/design.md §1, §6), with their text forms.

use serde::{Deserialize, Serialize};

macro_rules! state_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The text form stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(crate::Error::Invalid(format!(
                        concat!("'{}' is not a ", stringify!($name), "; expected one of {}"),
                        s, [$($text),*].join(", ")))),
                }
            }
        }
    };
}

state_enum! {
    /// Whether a host's agent is reachable.
    HostState {
        /// Added by an operator; no agent has registered for it yet.
        Waiting = "WAITING",
        /// Connected (or in-process) and heartbeating.
        Online = "ONLINE",
        /// No heartbeat for three intervals.
        Lost = "LOST",
    }
}

state_enum! {
    /// The state of a unit, following the results of its tasks.
    UnitState {
        /// Placed, nothing run yet.
        New = "NEW",
        /// Installed (or configured) and not running.
        Installed = "INSTALLED",
        /// Running.
        Started = "STARTED",
        /// Stopped after running.
        Stopped = "STOPPED",
        /// The last command on it failed.
        Failed = "FAILED",
        /// Removed from its host.
        Removed = "REMOVED",
    }
}

state_enum! {
    /// The state of a job.
    JobState {
        /// Waiting for its cluster's earlier jobs.
        Queued = "QUEUED",
        /// Dispatching tasks.
        Running = "RUNNING",
        /// No new dispatch; running tasks finish.
        Paused = "PAUSED",
        /// Cancel asked; waiting for running tasks to stop.
        Canceling = "CANCELING",
        /// Every stage succeeded.
        Succeeded = "SUCCEEDED",
        /// A stage failed.
        Failed = "FAILED",
        /// Cancelled by an operator.
        Canceled = "CANCELED",
    }
}

state_enum! {
    /// The state of a stage.
    StageState {
        /// Not started.
        Pending = "PENDING",
        /// Some task dispatched.
        Running = "RUNNING",
        /// Every task succeeded (or failures within the tolerance).
        Succeeded = "SUCCEEDED",
        /// More tasks failed than the tolerance allows.
        Failed = "FAILED",
        /// An upstream stage failed, or the job was cancelled.
        Canceled = "CANCELED",
    }
}

state_enum! {
    /// The state of a task (docs/design.md §6).
    TaskState {
        /// Not dispatched yet.
        Pending = "PENDING",
        /// Sent to its agent, not yet started.
        Queued = "QUEUED",
        /// Its script runs.
        Running = "RUNNING",
        /// Exit 0.
        Succeeded = "SUCCEEDED",
        /// Non-zero exit, or the script could not run.
        Failed = "FAILED",
        /// Ran past its timeout and was killed.
        TimedOut = "TIMED_OUT",
        /// Never ran, or was stopped, because of a cancel or an upstream failure.
        Canceled = "CANCELED",
    }
}

impl JobState {
    /// The states of a job not yet final: what recovery adopts and what keeps units busy.
    pub const UNFINISHED: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Paused,
        JobState::Canceling,
    ];

    /// True once the job can change no more (short of a retry).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Canceled
        )
    }
}

impl StageState {
    /// True once the stage can change no more (short of a retry).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StageState::Succeeded | StageState::Failed | StageState::Canceled
        )
    }
}

impl TaskState {
    /// True once the task can change no more (short of a retry).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::TimedOut | TaskState::Canceled
        )
    }

    /// True for the states a retry runs again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            TaskState::Failed | TaskState::TimedOut | TaskState::Canceled
        )
    }
}

impl Default for TaskState {
    /// PENDING, where every task starts.
    fn default() -> Self {
        Self::ALL[0]
    }
}

state_enum! {
    /// What an alert's last check found, from best to worst (UNKNOWN: the check could not
    /// tell, such as a script that exited neither 0, 1 nor 2).
    AlertState {
        /// Nothing wrong.
        Ok = "OK",
        /// Wrong, not yet urgent.
        Warning = "WARNING",
        /// Wrong and urgent.
        Critical = "CRITICAL",
        /// The check could not tell.
        Unknown = "UNKNOWN",
    }
}

impl AlertState {
    /// True for every state but OK: an alert in it is firing.
    pub fn is_firing(self) -> bool {
        self != AlertState::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_is_every_state_not_final() {
        let not_final: Vec<JobState> = JobState::ALL
            .iter()
            .copied()
            .filter(|s| !s.is_final())
            .collect();
        assert_eq!(not_final, JobState::UNFINISHED);
    }
}

state_enum! {
    /// Where a pipeline is in its life (docs/pipelines.md).
    PipelineState {
        /// Defined and checked; nothing runs.
        Created = "CREATED",
        /// Its nodes take and process batches.
        Running = "RUNNING",
        /// No node takes a new batch; batches being processed finish.
        Paused = "PAUSED",
        /// Stopping by draining: its sources take nothing more, the rest is processed.
        Draining = "DRAINING",
        /// Stopped, drained or aborted.
        Stopped = "STOPPED",
        /// Its run stopped on an error (the pipeline's message says which).
        Failed = "FAILED",
        /// Every node is done: all its sources' input was processed.
        Finished = "FINISHED",
    }
}

state_enum! {
    /// A batch at a node of a pipeline (docs/pipelines.md): upstream may delete its copy once
    /// the batch is RECEIVED downstream; a node keeps it until it is PROCESSED.
    BatchState {
        /// Arrived at the node and kept there durably, waiting to be processed.
        Received = "RECEIVED",
        /// Processed: its outputs are recorded downstream.
        Processed = "PROCESSED",
        /// Its data is deleted.
        Clean = "CLEAN",
    }
}
