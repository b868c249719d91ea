//! Waiting for the signals that stop `bigmgr`: SIGINT (Ctrl-C) and SIGTERM.

use crate::{Error, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listens for SIGINT and SIGTERM from the moment it is created, so a signal that arrives while
/// the server is still starting is not lost.
#[derive(Debug)]
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Starts listening. Call inside a tokio runtime.
    pub fn new() -> Result<Signals> {
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::Config(format!("cannot listen for {name}: {e}")))
        };
        Ok(Signals {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
