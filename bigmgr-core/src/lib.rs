//! bigmgr-core: every rule of bigmgr — the cluster model, stacks, planning, the job engine, the
//! store, the transport and the agent runtime — behind the [`Manager`] facade that the server,
//! the agent binary and the Python module compose.
//!
//! The four pluggable traits are [`store::Store`] (the union of one trait per concern:
//! clusters, agents, services, configs, jobs, auth, audit), [`transport::Transport`],
//! [`stack::StackProvider`] and [`sched::Scheduler`]; on the agent side, [`agent::Executor`].
//!
//! # The life of a job
//!
//! 1. **request** — a frontend calls [`Manager::acting`]`(actor).submit(..)`; the actor is
//!    authorised and the call audited ([`auth`], `manager/acting.rs`).
//! 2. **plan** — the target becomes a DAG of stages, one command on one component each, ordered
//!    by the stack's rules ([`plan`], [`stack`]).
//! 3. **store** — the job, its stages and tasks are written PENDING in one transaction
//!    ([`store::JobStore`]).
//! 4. **scheduler** — the engine asks which ready tasks may run now ([`sched`]; the engine is
//!    `engine/`).
//! 5. **transport** — each task, its files rendered ([`render`]), goes to its host's agent over
//!    [`grpc`] or in-process channels ([`agent::LocalTransport`]); both speak [`transport`].
//! 6. **agent** — the agent records the run in its ledger, then starts it; events are spooled
//!    until acknowledged ([`agent`]).
//! 7. **executor** — the script runs with the stack library beside it
//!    ([`agent::ProcessExecutor`], [`agent::STACKLIB`]).
//! 8. **result** — the engine stores the outcome, units follow, dependants run or are
//!    cancelled; frontends follow it through [`Manager::job_events`] and [`view::follow`].
//!
//! # Layers
//!
//! Modules depend downwards only (no cycle): the leaves [`model`], [`name`], [`address`],
//! [`secret`], [`shell`], [`duration`], [`metrics`] and [`tls`]; then [`stack`], [`auth`], [`transport`], [`sched`], [`policy`];
//! then [`store`], [`plan`] and [`placement`]; then [`render`], [`agent`], [`join`], [`bootstrap`], [`database`] and [`assistant`]; then the engine,
//! [`grpc`] and [`spec`]; then [`view`], [`request`], [`advisor`], `spec_schema` and [`pipeline`]; and [`manager`] on top (`tests/it/layers.rs` holds
//! the table and fails on a climb).

pub mod address;
pub mod advisor;
pub mod agent;
pub mod assistant;
pub mod auth;
pub mod bootstrap;
pub mod database;
mod engine;
pub use engine::{Control, EngineConfig, Update};
pub mod duration;
pub mod error;
pub mod fsutil;
pub mod grpc;
pub mod join;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod name;
pub mod pipeline;
pub mod placement;
pub mod plan;
pub mod policy;
pub mod render;
pub mod request;
pub mod sched;
pub mod secret;
pub mod shell;
pub mod spec;
#[cfg(feature = "openapi")]
pub mod spec_schema;
pub mod stack;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;
pub mod transport;
pub mod view;

pub use error::{Error, Result};
pub use manager::{AlertSettings, Manager, ManagerBuilder, ReplicaSettings};

/// The version of this library, reported by every frontend.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
