//! What the Python classes call: one trait, two implementations — [`crate::rest::Rest`], a
//! client of a running `bigmgr serve`, and [`crate::embedded::Embedded`], the engine
//! in-process. The Python objects hold an `Arc<dyn Backend>` and never know which.

use crate::data::*;
use crate::error::Result;
use async_trait::async_trait;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::JobRequest;

/// An operator's action on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// Cancel it.
    Cancel,
    /// Pause dispatching.
    Pause,
    /// Resume after a pause.
    Resume,
    /// Run its failed and cancelled tasks again.
    Retry,
}

impl JobAction {
    /// The REST route's last segment.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Cancel => "cancel",
            JobAction::Pause => "pause",
            JobAction::Resume => "resume",
            JobAction::Retry => "retry",
        }
    }
}

/// Everything the Python module can do, over REST or in-process.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Every cluster.
    async fn clusters(&self) -> Result<Vec<ClusterInfo>>;
    /// Creates a cluster.
    async fn create_cluster(&self, name: &str) -> Result<ClusterInfo>;
    /// One cluster.
    async fn cluster(&self, name: &str) -> Result<ClusterInfo>;
    /// Deletes a cluster.
    async fn delete_cluster(&self, name: &str) -> Result<()>;
    /// A join token for agents of the cluster (`bmj_…`).
    async fn create_join_token(&self, cluster: &str) -> Result<String>;
    /// The hosts of a cluster.
    async fn hosts(&self, cluster: &str) -> Result<Vec<HostInfo>>;
    /// Adds a host.
    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostInfo>;
    /// Removes a host (refused while units are placed on it).
    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()>;
    /// The stacks offered.
    async fn stacks(&self) -> Result<Vec<StackInfo>>;
    /// The service instances of a cluster, with units.
    async fn services(&self, cluster: &str) -> Result<Vec<ServiceInfo>>;
    /// One service instance.
    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceInfo>;
    /// Adds a service instance; `author` is the embedded engine's author of version 1.
    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceInfo>;
    /// Removes a service instance.
    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()>;
    /// A config change (merge patch) → the new version.
    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionInfo>;
    /// Every config version of a service.
    async fn config_versions(&self, cluster: &str, service: &str)
    -> Result<Vec<ConfigVersionInfo>>;
    /// A rollback to version `to` → the new version.
    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionInfo>;
    /// One config version of a service.
    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionInfo>;
    /// What differs from version `from` to version `to`, property by property.
    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffInfo>>;
    /// Names every service's current config version as snapshot `name`.
    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotInfo>;
    /// A cluster's snapshots, oldest first.
    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotInfo>>;
    /// Restores snapshot `name` → the new versions (one per service that changed since).
    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionInfo>>;
    /// Every unit of a cluster, with its staleness.
    async fn units(&self, cluster: &str) -> Result<Vec<UnitInfo>>;
    /// Places more units of a service's component on hosts → the new units.
    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitInfo>>;
    /// Removes a unit (stop it first).
    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()>;
    /// Applies pending config changes → the jobs started.
    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobInfo>>;
    /// Relates two service instances.
    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationInfo>;
    /// A cluster's relations.
    async fn relations(&self, cluster: &str) -> Result<Vec<RelationInfo>>;
    /// Removes a relation.
    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()>;
    /// A relation's events, oldest first (a removed relation keeps them).
    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventInfo>>;
    /// Submits a job.
    async fn submit(&self, req: JobRequest) -> Result<JobInfo>;
    /// One job with its stages and tasks.
    async fn job(&self, id: i64) -> Result<JobInfo>;
    /// A cluster's jobs, newest first.
    async fn jobs(&self, cluster: &str) -> Result<Vec<JobInfo>>;
    /// Cancels, pauses, resumes or retries a job.
    async fn control(&self, id: i64, action: JobAction) -> Result<JobInfo>;
    /// A task's log lines (every attempt), in order.
    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineInfo>>;
}
