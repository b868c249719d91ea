//! Integration tests of the `bigmgr` binary: each test starts the real binary on a free
//! loopback port with its own data directory and talks to it over HTTP (and gRPC).
//!
//! The harness is the `bigmgr-test-support` crate: [`bigmgr_test_support::ServerProc`] and
//! [`bigmgr_test_support::AgentProc`] (real processes, killed on drop), the REST client
//! [`bigmgr_test_support::Api`] and [`bigmgr_test_support::wait_until`]. Tests that need
//! `bigmgr-agent` find it next to `bigmgr` in the target directory: `cargo test --workspace`
//! builds it.

mod advice;
mod agents;
mod alerts;
mod api;
mod assistant;
mod bootstrap;
mod cli;
mod config;
mod configs_api;
mod flink;
mod mcp;
mod mtls;
mod openapi;
mod pipeline_runs;
mod pipelines;
mod placement;
mod quickstart;
mod replicas;
mod roles;
mod scenarios;
mod server;
mod spark;
mod spec_roundtrip;
mod stacks;
mod store_copy;
mod tls;
mod ui;
