//! The integration tests of bigmgr-core, in one binary.

mod agent;
mod engine;
mod stack;
mod store;
