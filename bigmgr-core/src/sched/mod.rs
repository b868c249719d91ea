//! Scheduling: the [`Scheduler`] trait, the in-memory view of a running job it decides on
//! ([`JobRun`]), and the default [`FifoScheduler`].
//!
//! A scheduler only decides; the engine applies the decisions, persists them and dispatches.
//! It is a plain (not async) trait because it is a pure function called on the hot path.

mod fifo;
mod run;

pub use fifo::FifoScheduler;
pub use run::{Counts, JobRun, StageRun, TaskRun};

use crate::model::{ClusterId, Job, JobId};
use std::collections::HashSet;

/// Decides which queued jobs start and which tasks of a running job go now. Object-safe.
pub trait Scheduler: Send + Sync + 'static {
    /// Picks the queued jobs (given in submission order) that may start now. `busy` holds the
    /// clusters that already have a job running, paused or cancelling.
    fn admit(&self, queued: &[&Job], busy: &HashSet<ClusterId>) -> Vec<JobId>;

    /// Picks the PENDING tasks of a RUNNING job to dispatch now, as indexes into
    /// [`JobRun::tasks`]. Called whenever something in the job changed.
    fn ready(&self, job: &JobRun) -> Vec<usize>;
}
