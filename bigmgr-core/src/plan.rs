//! The planner: a job request becomes a stage DAG.
