//! bigmgr-server: the `bigmgr` binary's pieces — its command line ([`cli`]), settings
//! ([`config`]), the admin token ([`admin_token`]), the REST API ([`api`]), the server that
//! serves REST and gRPC on one port ([`server`]) and the all-in-one [`quickstart`].
//!
//! Every rule lives in `bigmgr-core`; this crate only parses, composes and translates (HTTP to
//! [`bigmgr_core::Manager`] calls and core errors to problem+json).

pub mod admin_token;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod logging;
pub mod quickstart;
pub mod server;
pub mod signal;
pub mod tls_listener;
pub mod ui;
pub mod ui_sources;

pub use error::{Error, Result};
