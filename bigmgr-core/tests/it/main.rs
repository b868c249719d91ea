//! The integration tests of bigmgr-core, in one binary.

mod agent;
mod auth;
mod engine;
mod flaky;
mod grpc;
mod harness;
mod layers;
mod pipeline;
mod relations;
mod shell;
mod spec;
mod spec_files;
mod stack;
mod stacklib;
mod store;
