//! The server's side of the gRPC transport.

use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the server's side of the agent protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSettings {
    /// How often agents send heartbeats (told to them in `Registered`); default 30 s.
    pub heartbeat_interval: Duration,
    /// A host with no heartbeat for this many intervals is LOST; default 3.
    pub lost_after: u32,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            heartbeat_interval: Duration::from_secs(30),
            lost_after: 3,
        }
    }
}

/// The gRPC transport: serves `AgentService.Session` and sends to connected agents.
pub struct GrpcTransport {
    _store: Arc<dyn Store>,
    _settings: GrpcSettings,
}

impl GrpcTransport {
    /// A transport that admits agents by the join tokens and credentials in `store`. Call from
    /// within a tokio runtime: it starts the heartbeat watchdog.
    pub fn new(store: Arc<dyn Store>, settings: GrpcSettings) -> Arc<GrpcTransport> {
        Arc::new(GrpcTransport {
            _store: store,
            _settings: settings,
        })
    }

    /// The tonic routes to serve (on their own, or merged into an axum router with
    /// `.into_axum_router()`).
    pub fn routes(self: &Arc<Self>) -> tonic::service::Routes {
        tonic::service::Routes::default()
    }
}
