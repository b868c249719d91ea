//! A Store decorator that fails chosen `apply` calls, to test the engine's recovery.

use async_trait::async_trait;
use bigmgr_core::auth::Role;
use bigmgr_core::model::*;
use bigmgr_core::store::{
    AgentStore, Applied, AuditStore, AuthStore, Batch, ClusterStore, ConfigStore, JobStore,
    ServiceStore, SqlStore,
};
use bigmgr_core::{Error, Result};
use std::sync::atomic::{AtomicU32, Ordering};

/// Delegates to a SqlStore; the `fail_at`-th call of `apply` (1-based) fails without writing.
pub struct FlakyStore {
    pub inner: SqlStore,
    pub applies: AtomicU32,
    pub fail_at: u32,
}

#[async_trait]
impl ClusterStore for FlakyStore {
    async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        self.inner.create_cluster(name).await
    }
    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        self.inner.cluster_by_name(name).await
    }
    async fn list_clusters(&self) -> Result<Vec<Cluster>> {
        self.inner.list_clusters().await
    }
    async fn delete_cluster(&self, id: ClusterId) -> Result<()> {
        self.inner.delete_cluster(id).await
    }
    async fn add_host(&self, host: NewHost) -> Result<Host> {
        self.inner.add_host(host).await
    }
    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        self.inner.host_by_name(name).await
    }
    async fn list_hosts(&self, cluster: ClusterId) -> Result<Vec<Host>> {
        self.inner.list_hosts(cluster).await
    }
    async fn remove_host(&self, id: HostId) -> Result<()> {
        self.inner.remove_host(id).await
    }
    async fn set_host_state(
        &self,
        id: HostId,
        state: HostState,
        heartbeat: Option<i64>,
    ) -> Result<()> {
        self.inner.set_host_state(id, state, heartbeat).await
    }
    async fn set_host_address(&self, host: HostId, address: &str) -> Result<()> {
        self.inner.set_host_address(host, address).await
    }
}

#[async_trait]
impl AgentStore for FlakyStore {
    async fn add_join_token(&self, cluster: ClusterId, token_hash: &str) -> Result<()> {
        self.inner.add_join_token(cluster, token_hash).await
    }
    async fn join_token_cluster(&self, token_hash: &str) -> Result<Option<ClusterId>> {
        self.inner.join_token_cluster(token_hash).await
    }
    async fn claim_host(&self, host: HostId, credential_hash: &str) -> Result<bool> {
        self.inner.claim_host(host, credential_hash).await
    }
    async fn host_credential(&self, host: HostId) -> Result<Option<String>> {
        self.inner.host_credential(host).await
    }
    async fn record_host_report(&self, host: HostId, report: &HostReport) -> Result<()> {
        self.inner.record_host_report(host, report).await
    }
}

#[async_trait]
impl ServiceStore for FlakyStore {
    async fn add_service(
        &self,
        service: NewService,
        units: Vec<NewUnit>,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        self.inner.add_service(service, units).await
    }
    async fn service_by_name(
        &self,
        cluster: ClusterId,
        name: &str,
    ) -> Result<Option<ServiceInstance>> {
        self.inner.service_by_name(cluster, name).await
    }
    async fn list_services(&self, cluster: ClusterId) -> Result<Vec<ServiceInstance>> {
        self.inner.list_services(cluster).await
    }
    async fn list_units(&self, cluster: ClusterId) -> Result<Vec<Unit>> {
        self.inner.list_units(cluster).await
    }
    async fn remove_service(&self, id: ServiceId) -> Result<()> {
        self.inner.remove_service(id).await
    }
    async fn add_units(&self, service: ServiceId, units: Vec<NewUnit>) -> Result<Vec<Unit>> {
        self.inner.add_units(service, units).await
    }
    async fn remove_unit(&self, id: UnitId) -> Result<()> {
        self.inner.remove_unit(id).await
    }
}

#[async_trait]
impl ConfigStore for FlakyStore {
    async fn add_config_version(
        &self,
        service: ServiceId,
        expected: u32,
        new: &NewConfigVersion,
    ) -> Result<ConfigVersion> {
        self.inner.add_config_version(service, expected, new).await
    }
    async fn list_config_versions(&self, service: ServiceId) -> Result<Vec<ConfigVersion>> {
        self.inner.list_config_versions(service).await
    }
    async fn config_version(
        &self,
        service: ServiceId,
        version: u32,
    ) -> Result<Option<ConfigVersion>> {
        self.inner.config_version(service, version).await
    }
    async fn add_snapshot(&self, snapshot: &NewSnapshot) -> Result<Snapshot> {
        self.inner.add_snapshot(snapshot).await
    }
    async fn list_snapshots(&self, cluster: ClusterId) -> Result<Vec<Snapshot>> {
        self.inner.list_snapshots(cluster).await
    }
    async fn snapshot(&self, cluster: ClusterId, name: &str) -> Result<Option<Snapshot>> {
        self.inner.snapshot(cluster, name).await
    }
    async fn add_relation(&self, relation: &NewRelation) -> Result<Relation> {
        self.inner.add_relation(relation).await
    }
    async fn list_relations(&self, cluster: ClusterId) -> Result<Vec<Relation>> {
        self.inner.list_relations(cluster).await
    }
    async fn remove_relation(&self, id: RelationId) -> Result<()> {
        self.inner.remove_relation(id).await
    }
    async fn add_relation_event(&self, event: &NewRelationEvent) -> Result<RelationEvent> {
        self.inner.add_relation_event(event).await
    }
    async fn list_relation_events(&self, relation: RelationId) -> Result<Vec<RelationEvent>> {
        self.inner.list_relation_events(relation).await
    }
}

#[async_trait]
impl JobStore for FlakyStore {
    async fn create_job(&self, job: &NewJob) -> Result<JobDetail> {
        self.inner.create_job(job).await
    }
    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        self.inner.get_job(id).await
    }
    async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>> {
        self.inner.job_detail(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.inner.list_jobs(filter).await
    }
    async fn apply(&self, batch: &Batch) -> Result<Applied> {
        if self.applies.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(Error::Store("injected failure".into()));
        }
        self.inner.apply(batch).await
    }
    async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>> {
        self.inner.task_log(task, attempt).await
    }
}

#[async_trait]
impl AuthStore for FlakyStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        self.inner.create_user(user).await
    }
    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.inner.user_by_name(name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner.list_users().await
    }
    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.inner.delete_user(id).await
    }
    async fn set_user_role(&self, id: UserId, role: Role) -> Result<()> {
        self.inner.set_user_role(id, role).await
    }
    async fn set_user_password(&self, id: UserId, password_hash: Option<&str>) -> Result<()> {
        self.inner.set_user_password(id, password_hash).await
    }
    async fn user_password_hash(&self, id: UserId) -> Result<Option<String>> {
        self.inner.user_password_hash(id).await
    }
    async fn add_api_token(&self, token: &NewApiToken) -> Result<ApiToken> {
        self.inner.add_api_token(token).await
    }
    async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>> {
        self.inner.api_token(id).await
    }
    async fn token_user(&self, token_hash: &str) -> Result<Option<(User, ApiToken)>> {
        self.inner.token_user(token_hash).await
    }
    async fn touch_api_token(&self, id: ApiTokenId, at: i64) -> Result<()> {
        self.inner.touch_api_token(id, at).await
    }
    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        self.inner.list_api_tokens(user).await
    }
    async fn delete_api_token(&self, id: ApiTokenId) -> Result<()> {
        self.inner.delete_api_token(id).await
    }
}

#[async_trait]
impl AuditStore for FlakyStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent> {
        self.inner.append_audit(event).await
    }
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        self.inner.list_audit(filter).await
    }
}
