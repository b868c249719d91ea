//! bigmgr-server: the `bigmgr` binary's pieces — its settings ([`config`]), the admin token
//! ([`admin_token`]) and the REST API ([`api`]).
//!
//! Every rule lives in `bigmgr-core`; this crate only parses, composes and translates.

pub mod admin_token;
pub mod api;
pub mod config;
pub mod duration;
pub mod error;
pub mod logging;
pub mod signal;

pub use error::{Error, Result};
