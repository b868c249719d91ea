//! `LocalTransport`: channels to in-process agents.

/// Channels to in-process agents (to be written).
#[derive(Debug, Default)]
pub struct LocalTransport;
