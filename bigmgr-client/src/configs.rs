//! Units, snapshots and relations of a cluster, and [`ServiceScope`]: the config versions and
//! units of one service instance.

use crate::http::in_cluster;
use crate::{Client, Result, seg};
use bigmgr_core::advisor::Finding;
use bigmgr_core::manager::{ConfigChange, Relate};
use bigmgr_core::request::{AddUnitsBody, RestartStaleBody, RollbackBody, SnapshotBody};
use bigmgr_core::view::{
    AlertView, ConfigDiffView, ConfigVersionView, JobView, RelationEventView, RelationView,
    SnapshotView, UnitStatusView,
};

/// The routes under one service instance, `/clusters/{cluster}/services/{service}`: its
/// config versions and its units (from [`Client::scope`]).
#[derive(Debug, Clone)]
pub struct ServiceScope<'a> {
    client: &'a Client,
    /// The service instance's path, each name percent-encoded.
    pub(crate) path: String,
}

impl Client {
    /// The routes under service instance `service` of `cluster`.
    pub fn scope(&self, cluster: &str, service: &str) -> ServiceScope<'_> {
        let path = in_cluster(cluster, &format!("services/{}", seg(service)));
        ServiceScope { client: self, path }
    }

    /// Every unit of a cluster, with its staleness.
    pub async fn units(&self, cluster: &str) -> Result<Vec<UnitStatusView>> {
        self.get(&in_cluster(cluster, "units")).await
    }

    /// Removes a unit (stop it first).
    pub async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        self.delete(&in_cluster(cluster, &format!("units/{unit}")))
            .await
    }

    /// Applies pending config changes → the jobs started (none if nothing is stale).
    pub async fn restart_stale(
        &self,
        cluster: &str,
        body: &RestartStaleBody,
    ) -> Result<Vec<JobView>> {
        self.post(&in_cluster(cluster, "restart-stale"), body).await
    }

    /// A cluster's snapshots, oldest first.
    pub async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotView>> {
        self.get(&in_cluster(cluster, "snapshots")).await
    }

    /// One snapshot.
    pub async fn snapshot(&self, cluster: &str, name: &str) -> Result<SnapshotView> {
        self.get(&in_cluster(cluster, &format!("snapshots/{}", seg(name))))
            .await
    }

    /// Names every service's current config version as snapshot `body.name`.
    pub async fn create_snapshot(
        &self,
        cluster: &str,
        body: &SnapshotBody,
    ) -> Result<SnapshotView> {
        self.post(&in_cluster(cluster, "snapshots"), body).await
    }

    /// Restores snapshot `name` → the new versions (one per service that changed since).
    pub async fn restore_snapshot(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Vec<ConfigVersionView>> {
        let path = in_cluster(cluster, &format!("snapshots/{}/restore", seg(name)));
        self.post(&path, &serde_json::json!({})).await
    }

    /// A cluster's alerts as they stand (only those not OK if `firing`).
    pub async fn alerts(&self, cluster: &str, firing: bool) -> Result<Vec<AlertView>> {
        let path = in_cluster(
            cluster,
            if firing {
                "alerts?firing=true"
            } else {
                "alerts"
            },
        );
        self.get(&path).await
    }

    /// The advisor's findings about a cluster, most severe first: all of them, or those about
    /// one host, one service instance or one job.
    pub async fn advice(
        &self,
        cluster: &str,
        host: Option<&str>,
        service: Option<&str>,
        job: Option<i64>,
    ) -> Result<Vec<Finding>> {
        let mut query = Vec::new();
        for (k, v) in [("host", host), ("service", service)] {
            if let Some(v) = v {
                query.push(format!("{k}={}", seg(v)));
            }
        }
        if let Some(j) = job {
            query.push(format!("job={j}"));
        }
        let mut path = in_cluster(cluster, "advice");
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        self.get(&path).await
    }

    /// Cluster `cluster` written as a cluster spec, secrets as references.
    pub async fn export_spec(&self, cluster: &str) -> Result<bigmgr_core::spec::Exported> {
        self.get(&in_cluster(cluster, "spec")).await
    }

    /// What applying a cluster spec to `cluster` would change (nothing is changed).
    pub async fn plan_spec(
        &self,
        cluster: &str,
        body: &bigmgr_core::request::SpecBody,
    ) -> Result<bigmgr_core::spec::Plan> {
        self.post(&in_cluster(cluster, "plan"), body).await
    }

    /// Applies a cluster spec to `cluster`: what it changed and the jobs it submitted.
    pub async fn apply_spec(
        &self,
        cluster: &str,
        body: &bigmgr_core::request::SpecBody,
    ) -> Result<bigmgr_core::view::SpecAppliedView> {
        self.post(&in_cluster(cluster, "apply"), body).await
    }

    /// Starts a maintenance window on a host or a service of a cluster.
    pub async fn start_maintenance(
        &self,
        cluster: &str,
        req: &bigmgr_core::request::StartMaintenance,
    ) -> Result<bigmgr_core::view::MaintenanceView> {
        self.post(&in_cluster(cluster, "maintenance"), req).await
    }

    /// A cluster's maintenance windows in progress.
    pub async fn maintenance(
        &self,
        cluster: &str,
    ) -> Result<Vec<bigmgr_core::view::MaintenanceView>> {
        self.get(&in_cluster(cluster, "maintenance")).await
    }

    /// Ends a maintenance window now.
    pub async fn end_maintenance(&self, cluster: &str, id: i64) -> Result<()> {
        self.delete(&in_cluster(cluster, &format!("maintenance/{id}")))
            .await
    }

    /// A service's self-healing policy.
    pub async fn healing(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<bigmgr_core::view::HealingView> {
        let path = in_cluster(cluster, &format!("services/{}/healing", seg(service)));
        self.get(&path).await
    }

    /// Sets a service's self-healing policy.
    pub async fn set_healing(
        &self,
        cluster: &str,
        service: &str,
        req: &bigmgr_core::request::SetHealing,
    ) -> Result<bigmgr_core::view::HealingView> {
        let path = in_cluster(cluster, &format!("services/{}/healing", seg(service)));
        self.put(&path, req).await
    }

    /// A cluster's relations.
    pub async fn relations(&self, cluster: &str) -> Result<Vec<RelationView>> {
        self.get(&in_cluster(cluster, "relations")).await
    }

    /// Relates two service instances.
    pub async fn relate(&self, cluster: &str, req: &Relate) -> Result<RelationView> {
        self.post(&in_cluster(cluster, "relations"), req).await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        self.delete(&in_cluster(cluster, &format!("relations/{id}")))
            .await
    }

    /// A relation's events, oldest first.
    pub async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventView>> {
        self.get(&in_cluster(cluster, &format!("relations/{id}/events")))
            .await
    }
}

impl ServiceScope<'_> {
    /// The path of the service's configs route `rest` (`""`, `/diff` …).
    fn configs(&self, rest: &str) -> String {
        format!("{}/configs{rest}", self.path)
    }

    /// Every config version of the service, oldest first.
    pub async fn config_versions(&self) -> Result<Vec<ConfigVersionView>> {
        self.client.get(&self.configs("")).await
    }

    /// One config version of the service.
    pub async fn config_version(&self, version: u32) -> Result<ConfigVersionView> {
        self.client.get(&self.configs(&format!("/{version}"))).await
    }

    /// A config change (a merge patch) → the new version.
    pub async fn update_configs(&self, change: &ConfigChange) -> Result<ConfigVersionView> {
        let path = self.configs("");
        self.client.patch(&path, change).await
    }

    /// What differs from version `from` to version `to`, property by property.
    pub async fn diff_configs(&self, from: u32, to: u32) -> Result<Vec<ConfigDiffView>> {
        let path = self.configs(&format!("/diff?from={from}&to={to}"));
        self.client.get(&path).await
    }

    /// A rollback to version `body.to` → the new version.
    pub async fn rollback_configs(&self, body: &RollbackBody) -> Result<ConfigVersionView> {
        self.client.post(&self.configs("/rollback"), body).await
    }

    /// Places more units of one of the service's components on hosts → the new units.
    pub async fn add_units(&self, body: &AddUnitsBody) -> Result<Vec<UnitStatusView>> {
        let path = format!("{}/units", self.path);
        self.client.post(&path, body).await
    }
}
