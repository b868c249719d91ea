//! The task ledger: which runs this agent received and how they ended, persisted under its root.

/// The agent's persistent record of runs (to be written).
#[derive(Debug)]
pub struct Ledger;
