//! The client backend: [`Backend`] over [`bigmgr_client::Client`], the typed REST client the
//! CLI uses too (paging, problem+json, following a job's events). Problems map to the
//! module's error kinds by status.

use crate::backend::{Backend, JobAction, OnFollowed};
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_client::Client;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::{JobId, JobRequest, TaskId};
use bigmgr_core::view::{
    AuditEventView, ClusterView, ConfigDiffView, ConfigVersionView, HostView, JobDetailView,
    JobView, LogLineView, RelationEventView, RelationView, ServiceView, SnapshotView, StackView,
    UnitStatusView, follow,
};

impl From<bigmgr_client::Error> for Error {
    fn from(e: bigmgr_client::Error) -> Error {
        match e {
            bigmgr_client::Error::Problem { status, detail, .. } => match status {
                404 => Error::NotFound(detail),
                409 => Error::Conflict(detail),
                401 | 403 => Error::PermissionDenied(detail),
                400 | 413 | 415 | 422 => Error::InvalidInput(detail),
                _ => Error::Other(detail),
            },
            bigmgr_client::Error::Invalid(m) => Error::InvalidInput(m),
            other => Error::Other(other.to_string()),
        }
    }
}

#[async_trait]
impl Backend for Client {
    async fn clusters(&self) -> Result<Vec<ClusterView>> {
        Ok(Client::clusters(self).await?)
    }
    async fn create_cluster(&self, name: &str) -> Result<ClusterView> {
        Ok(Client::create_cluster(self, name).await?)
    }
    async fn cluster(&self, name: &str) -> Result<ClusterView> {
        Ok(Client::cluster(self, name).await?)
    }
    async fn delete_cluster(&self, name: &str) -> Result<()> {
        Ok(Client::delete_cluster(self, name).await?)
    }
    async fn create_join_token(&self, cluster: &str) -> Result<String> {
        Ok(Client::create_join_token(self, cluster).await?)
    }
    async fn hosts(&self, cluster: &str) -> Result<Vec<HostView>> {
        Ok(Client::hosts(self, cluster).await?)
    }
    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostView> {
        Ok(Client::add_host(self, cluster, name, address).await?)
    }
    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(Client::remove_host(self, cluster, name).await?)
    }
    async fn stacks(&self) -> Result<Vec<StackView>> {
        Ok(Client::stacks(self).await?)
    }
    async fn services(&self, cluster: &str) -> Result<Vec<ServiceView>> {
        Ok(Client::services(self, cluster).await?)
    }
    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView> {
        Ok(Client::service(self, cluster, name).await?)
    }
    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceView> {
        Ok(Client::add_service(self, cluster, &req).await?)
    }
    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(Client::remove_service(self, cluster, name).await?)
    }
    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionView> {
        Ok(Client::update_configs(self, cluster, service, &change).await?)
    }
    async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersionView>> {
        Ok(Client::config_versions(self, cluster, service).await?)
    }
    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionView> {
        Ok(Client::rollback_configs(self, cluster, service, to, message).await?)
    }
    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionView> {
        Ok(Client::config_version(self, cluster, service, version).await?)
    }
    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffView>> {
        Ok(Client::diff_configs(self, cluster, service, from, to).await?)
    }
    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotView> {
        Ok(Client::create_snapshot(self, cluster, name, message).await?)
    }
    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotView>> {
        Ok(Client::snapshots(self, cluster).await?)
    }
    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionView>> {
        Ok(Client::restore_snapshot(self, cluster, name).await?)
    }
    async fn units(&self, cluster: &str) -> Result<Vec<UnitStatusView>> {
        Ok(Client::units(self, cluster).await?)
    }
    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitStatusView>> {
        Ok(Client::add_units(self, cluster, service, component, hosts).await?)
    }
    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        Ok(Client::remove_unit(self, cluster, unit).await?)
    }
    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobView>> {
        Ok(Client::restart_stale(self, cluster, service, None).await?)
    }
    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationView> {
        Ok(Client::relate(self, cluster, &req).await?)
    }
    async fn relations(&self, cluster: &str) -> Result<Vec<RelationView>> {
        Ok(Client::relations(self, cluster).await?)
    }
    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        Ok(Client::unrelate(self, cluster, id).await?)
    }
    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventView>> {
        Ok(Client::relation_events(self, cluster, id).await?)
    }
    async fn submit(&self, req: JobRequest) -> Result<JobView> {
        Ok(Client::submit(self, &req.cluster, &req.command, req.target, req.options).await?)
    }
    async fn job(&self, id: i64) -> Result<JobDetailView> {
        Ok(Client::job(self, JobId(id)).await?)
    }
    async fn jobs(&self, cluster: &str) -> Result<Vec<JobView>> {
        Ok(Client::jobs(self, cluster, None).await?)
    }
    async fn control(&self, id: i64, action: JobAction) -> Result<JobView> {
        Ok(Client::control(self, JobId(id), action).await?)
    }
    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineView>> {
        Ok(Client::task_log(self, JobId(job), TaskId(task), None).await?)
    }
    async fn audit(&self, actor: Option<&str>) -> Result<Vec<AuditEventView>> {
        Ok(Client::audit(self, None, None, actor).await?)
    }
    async fn follow(&self, id: JobId, on: OnFollowed<'_>) -> Result<JobDetailView> {
        Ok(follow(self, id, on).await?)
    }
}

/// The REST backend: the typed client itself.
pub type Rest = Client;
