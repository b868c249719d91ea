//! bigmgr-core: every rule of bigmgr — the cluster model, stacks, planning, the job engine, the
//! store, the transport and the agent runtime — behind the [`Manager`] facade that the server,
//! the agent binary and the Python module compose.
//!
//! The four pluggable traits are [`store::Store`] (the union of one trait per concern:
//! clusters, agents, services, configs, jobs, auth, audit), [`transport::Transport`],
//! [`stack::StackProvider`] and [`sched::Scheduler`]; on the agent side, [`agent::Executor`].

pub mod address;
pub mod agent;
pub mod auth;
mod engine;
pub use engine::{Control, EngineConfig, Update};
pub mod duration;
pub mod error;
mod fsutil;
pub mod grpc;
pub mod join;
pub mod manager;
pub mod model;
pub mod plan;
pub mod render;
pub mod request;
pub mod sched;
pub mod shell;
pub mod stack;
pub mod store;
pub mod transport;
pub mod view;

pub use error::{Error, Result};
pub use manager::{Manager, ManagerBuilder};

/// The version of this library, reported by every frontend.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
