//! The agent's event spool: every event bound for the server is appended to a file under the
//! agent's root before it is sent, and dropped only once the server acknowledges it, so events
//! produced while the server is away (or across an agent restart) are replayed in order.

use crate::Result;
use crate::transport::AgentEvent;
use std::path::PathBuf;

/// An append-only, on-disk queue of events with increasing sequence numbers.
#[derive(Debug)]
pub struct Spool {
    _path: PathBuf,
}

impl Spool {
    /// Opens (creating if missing) the spool file at `path` and loads the events not yet
    /// acknowledged.
    pub fn open(path: impl Into<PathBuf>) -> Result<Spool> {
        Ok(Spool { _path: path.into() })
    }

    /// Appends an event; returns its sequence number (one more than the previous event's, also
    /// across restarts).
    pub fn push(&mut self, _event: &AgentEvent) -> Result<u64> {
        Ok(0)
    }

    /// The events not yet acknowledged, in order.
    pub fn pending(&self) -> Vec<(u64, AgentEvent)> {
        Vec::new()
    }

    /// Drops every event with a sequence number up to `upto`.
    pub fn ack(&mut self, _upto: u64) -> Result<()> {
        Ok(())
    }

    /// How many events are not yet acknowledged.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether every event was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
