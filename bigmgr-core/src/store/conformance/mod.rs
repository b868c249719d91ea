//! The conformance suite every [`Store`] implementation must pass, one part per trait: its
//! checks are the contract the trait's docs state, run against a real store.
//!
//! Built for this crate's tests and with the `conformance` cargo feature, which another crate's
//! tests enable to run it against their implementation (it is not in release builds):
//!
//! ```toml
//! [dev-dependencies]
//! bigmgr-core = { version = "…", features = ["conformance"] }
//! ```
//!
//! [`run`] takes a fresh, empty store and runs every part in turn. Each part's `run`
//! ([`clusters::run`], [`agents::run`], [`services::run`], [`configs::run`], [`jobs::run`],
//! [`auth::run`], [`audit::run`], [`alerts::run`], [`assistant::run`], [`pipelines::run`]) runs on its own against any store of the traits it needs —
//! a `&dyn Store`, a `&dyn AuthStore`, a concrete type — and each check is a public function
//! of its own, so a failure is easy to locate (and to rerun alone on a fresh store). Most parts
//! need more than their trait: a job is of units of services in a cluster, so [`jobs::run`]
//! also creates clusters and services; the bounds of each function say what it needs.
//!
//! A broken rule panics with a message that names it, prefixed `store conformance [check]:`.
//! Checks other than [`clusters::clusters`] only look at the clusters they create, so they can
//! run on a store that already holds other data.

/// Runs checks in turn on `store`: `checks!(store: a, b)` is `a(store).await; b(store).await;`.
macro_rules! checks {
    ($store:ident: $($check:path),+ $(,)?) => {
        $($check($store).await;)+
    };
}

pub mod agents;
pub mod alerts;
pub mod assistant;
pub mod audit;
pub mod auth;
pub mod clusters;
pub mod configs;
mod fixture;
pub mod jobs;
pub mod pipelines;
pub mod services;

use super::{ClusterStore, ServiceStore, Store};

/// A store of services in clusters, which most parts need besides their own trait: a job, a
/// config version, an agent's units are all of services in clusters.
pub trait ClusterServices: ClusterStore + ServiceStore {}

impl<T: ClusterStore + ServiceStore + ?Sized> ClusterServices for T {}

/// Runs every part of the suite against an empty store; panics naming the first broken rule.
pub async fn run(store: &dyn Store) {
    checks!(store:
        clusters::run, services::run, configs::run, jobs::run, agents::run, auth::run, audit::run,
        alerts::run, assistant::run, pipelines::run
    );
}
