//! What the Python classes call: one trait, two implementations — [`bigmgr_client::Client`],
//! a client of a running `bigmgr serve` (`crate::rest`), and [`crate::embedded::Embedded`],
//! the engine in-process. Both answer with core's read models ([`bigmgr_core::view`]), so the
//! Python classes wrap the same types whichever backend they hold, and both follow jobs with
//! core's one [`bigmgr_core::view::follow`].

use crate::error::Result;
use async_trait::async_trait;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::{JobId, JobRequest};
use bigmgr_core::view::{
    AuditEventView, ClusterView, ConfigDiffView, ConfigVersionView, Followed, HostView,
    JobDetailView, JobView, LogLineView, RelationEventView, RelationView, ServiceView,
    SnapshotView, StackView, UnitStatusView,
};

pub use bigmgr_client::JobAction;

/// What a follower is handed as a followed job goes (see [`Backend::follow`]).
pub type OnFollowed<'a> = &'a mut (dyn FnMut(Followed<'_>) + Send);

/// Everything the Python module can do, over REST or in-process.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Every cluster.
    async fn clusters(&self) -> Result<Vec<ClusterView>>;
    /// Creates a cluster.
    async fn create_cluster(&self, name: &str) -> Result<ClusterView>;
    /// One cluster.
    async fn cluster(&self, name: &str) -> Result<ClusterView>;
    /// Deletes a cluster.
    async fn delete_cluster(&self, name: &str) -> Result<()>;
    /// A join token for agents of the cluster (`bmj_…`).
    async fn create_join_token(&self, cluster: &str) -> Result<String>;
    /// The hosts of a cluster.
    async fn hosts(&self, cluster: &str) -> Result<Vec<HostView>>;
    /// Adds a host.
    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostView>;
    /// Removes a host (refused while units are placed on it).
    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()>;
    /// The stacks offered.
    async fn stacks(&self) -> Result<Vec<StackView>>;
    /// The service instances of a cluster, with units.
    async fn services(&self, cluster: &str) -> Result<Vec<ServiceView>>;
    /// One service instance.
    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView>;
    /// Adds a service instance.
    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceView>;
    /// Removes a service instance.
    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()>;
    /// A config change (merge patch) → the new version.
    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionView>;
    /// Every config version of a service.
    async fn config_versions(&self, cluster: &str, service: &str)
    -> Result<Vec<ConfigVersionView>>;
    /// A rollback to version `to` → the new version.
    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionView>;
    /// One config version of a service.
    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionView>;
    /// What differs from version `from` to version `to`, property by property.
    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffView>>;
    /// Names every service's current config version as snapshot `name`.
    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotView>;
    /// A cluster's snapshots, oldest first.
    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotView>>;
    /// Restores snapshot `name` → the new versions (one per service that changed since).
    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionView>>;
    /// Every unit of a cluster, with its staleness.
    async fn units(&self, cluster: &str) -> Result<Vec<UnitStatusView>>;
    /// Places more units of a service's component on hosts → the new units.
    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitStatusView>>;
    /// Removes a unit (stop it first).
    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()>;
    /// Applies pending config changes → the jobs started.
    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobView>>;
    /// Relates two service instances.
    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationView>;
    /// A cluster's relations.
    async fn relations(&self, cluster: &str) -> Result<Vec<RelationView>>;
    /// Removes a relation.
    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()>;
    /// A relation's events, oldest first (a removed relation keeps them).
    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventView>>;
    /// Submits a job.
    async fn submit(&self, req: JobRequest) -> Result<JobView>;
    /// One job with its stages and tasks.
    async fn job(&self, id: i64) -> Result<JobDetailView>;
    /// A cluster's jobs, ascending by id.
    async fn jobs(&self, cluster: &str) -> Result<Vec<JobView>>;
    /// Cancels, pauses, resumes or retries a job.
    async fn control(&self, id: i64, action: JobAction) -> Result<JobView>;
    /// A task's log lines (every attempt), in order.
    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineView>>;
    /// The audit log, oldest first (only `actor`'s if given); admins only.
    async fn audit(&self, actor: Option<&str>) -> Result<Vec<AuditEventView>>;
    /// Follows job `id` to its end with [`bigmgr_core::view::follow`], handing `on` its
    /// progress and every log line once; the job as it ended.
    async fn follow(&self, id: JobId, on: OnFollowed<'_>) -> Result<JobDetailView>;
}
