//! The gRPC transport (docs/design.md §7): [`GrpcTransport`] is the server's side — a tonic service
//! agents connect to, and the [`Transport`](crate::transport::Transport) the engine sends
//! through; [`run_agent`] is the agent's side — it dials the server, registers, replays its
//! spooled events, heartbeats and serves tasks, reconnecting with jittered backoff.
//!
//! The protocol is `proto/bigmgr/agent/v1/agent.proto`; its generated code is [`pb`].

mod client;
mod codec;
mod convert;
mod server;

pub use client::{AgentClientConfig, run_agent};
pub use server::{GrpcSettings, GrpcTransport, PeerAddr, PeerCertificate};

/// The largest message either side sends or accepts, set on both ends. What one message
/// carries is bounded far below it (see `proto/README.md`, "Limits").
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The code generated from `proto/bigmgr/agent/v1/agent.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bigmgr.agent.v1");
}
