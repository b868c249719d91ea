//! The integration tests of bigmgr-core, in one binary.

mod agent;
mod auth;
mod engine;
mod flaky;
mod grpc;
mod harness;
mod stack;
mod store;
