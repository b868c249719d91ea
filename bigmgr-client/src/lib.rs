//! bigmgr-client: the typed client of bigmgr's REST API (`/api/v1`), answering with the core
//! read models of [`bigmgr_core::view`] and sending the bodies of [`bigmgr_core::request`].
//! The `bigmgr` CLI and the Python module's client mode are built on it, so paging,
//! problem+json decoding, error mapping and following a job exist once.
//!
//! - [`Client`]: the connection (server URL, bearer token, timeouts), the low-level calls and
//!   one method per route, grouped by resource in `clusters`, `hosts`, `services`, `jobs`,
//!   `configs`, `pipelines`, `users` and `assistant`; a route with a body takes core's request
//!   type for it.
//! - [`ServiceScope`] (`client.scope(cluster, service)`): the routes under one service
//!   instance — its config versions and its units.
//! - [`Client::job_stream`]: a job's live events from `GET /jobs/{id}/events` (Server-Sent
//!   Events), as [`bigmgr_core::view::JobStreamEvent`]s — so [`bigmgr_core::view::follow()`]
//!   follows a job through a server exactly as it follows one in-process.
//! - [`Client::ask`]: the assistant's answer to a question, as core's
//!   [`bigmgr_core::assistant::ChatEvent`]s while they stream (the same parser reads them).

mod assistant;
mod clusters;
mod configs;
mod error;
mod events;
mod hosts;
mod http;
mod jobs;
mod pipelines;
mod services;
mod users;

pub use assistant::{ChatStream, SetProvider, ThreadView, ToolView, parse_event};
pub use configs::ServiceScope;
pub use error::{Error, Result};
pub use http::{Client, PREFIX, seg};
pub use jobs::JobAction;
