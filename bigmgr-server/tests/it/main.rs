//! Integration tests of the `bigmgr` binary: each test starts the real binary on a free
//! loopback port with its own data directory and talks to it over HTTP (and gRPC).
//!
//! [`harness`] holds what these and later tests reuse: [`harness::ServerProc`] and
//! [`harness::AgentProc`] (real processes, killed on drop), the REST client [`harness::Api`]
//! and [`harness::wait_until`]. Tests that need `bigmgr-agent` find it next to `bigmgr` in the
//! target directory: `cargo test --workspace` builds it.

mod agents;
mod api;
mod cli;
mod config;
mod configs_api;
mod harness;
mod quickstart;
mod roles;
mod scenarios;
mod server;
mod stacks;
