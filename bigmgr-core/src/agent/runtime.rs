//! The agent loop: receives messages, consults the ledger, runs tasks, reports events.

/// An agent's settings (to be written).
#[derive(Debug)]
pub struct AgentConfig;

/// One host's agent (to be written).
#[derive(Debug)]
pub struct Agent;
