//! The job engine: the loop that applies agent events, asks the scheduler and dispatches.
