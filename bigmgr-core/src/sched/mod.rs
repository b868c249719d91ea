//! Scheduling: the [`Scheduler`] trait and the default FIFO scheduler.

/// Decides which jobs run and which tasks go now (to be written).
pub trait Scheduler: Send + Sync + 'static {}
