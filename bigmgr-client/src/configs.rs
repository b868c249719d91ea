//! Config versions, snapshots, units and relations of a cluster.

use crate::{Client, Result, seg};
use bigmgr_core::manager::{ConfigChange, Relate};
use bigmgr_core::model::JobOptions;
use bigmgr_core::request::{AddUnitsBody, RestartStaleBody, RollbackBody, SnapshotBody};
use bigmgr_core::view::{
    ConfigDiffView, ConfigVersionView, JobView, RelationEventView, RelationView, SnapshotView,
    UnitStatusView,
};

impl Client {
    fn configs_path(cluster: &str, service: &str) -> String {
        format!(
            "/clusters/{}/services/{}/configs",
            seg(cluster),
            seg(service)
        )
    }

    /// Every config version of a service, oldest first.
    pub async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersionView>> {
        self.get(&Self::configs_path(cluster, service)).await
    }

    /// One config version of a service.
    pub async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionView> {
        self.get(&format!(
            "{}/{version}",
            Self::configs_path(cluster, service)
        ))
        .await
    }

    /// A config change (a merge patch) → the new version.
    pub async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: &ConfigChange,
    ) -> Result<ConfigVersionView> {
        self.patch(&Self::configs_path(cluster, service), change)
            .await
    }

    /// What differs from version `from` to version `to`, property by property.
    pub async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffView>> {
        self.get(&format!(
            "{}/diff?from={from}&to={to}",
            Self::configs_path(cluster, service)
        ))
        .await
    }

    /// A rollback to version `to` → the new version.
    pub async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionView> {
        self.post(
            &format!("{}/rollback", Self::configs_path(cluster, service)),
            &RollbackBody { to, message },
        )
        .await
    }

    /// Every unit of a cluster, with its staleness.
    pub async fn units(&self, cluster: &str) -> Result<Vec<UnitStatusView>> {
        self.get(&format!("/clusters/{}/units", seg(cluster))).await
    }

    /// Places more units of a service's component on hosts → the new units.
    pub async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitStatusView>> {
        self.post(
            &format!("/clusters/{}/services/{}/units", seg(cluster), seg(service)),
            &AddUnitsBody {
                component: component.to_string(),
                hosts: hosts.to_vec(),
            },
        )
        .await
    }

    /// Removes a unit (stop it first).
    pub async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        self.delete(&format!("/clusters/{}/units/{unit}", seg(cluster)))
            .await
    }

    /// Applies pending config changes → the jobs started (none if nothing is stale).
    pub async fn restart_stale(
        &self,
        cluster: &str,
        service: Option<&str>,
        options: Option<JobOptions>,
    ) -> Result<Vec<JobView>> {
        self.post(
            &format!("/clusters/{}/restart-stale", seg(cluster)),
            &RestartStaleBody {
                service: service.map(str::to_owned),
                options,
            },
        )
        .await
    }

    /// A cluster's snapshots, oldest first.
    pub async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotView>> {
        self.get(&format!("/clusters/{}/snapshots", seg(cluster)))
            .await
    }

    /// One snapshot.
    pub async fn snapshot(&self, cluster: &str, name: &str) -> Result<SnapshotView> {
        self.get(&format!(
            "/clusters/{}/snapshots/{}",
            seg(cluster),
            seg(name)
        ))
        .await
    }

    /// Names every service's current config version as snapshot `name`.
    pub async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotView> {
        self.post(
            &format!("/clusters/{}/snapshots", seg(cluster)),
            &SnapshotBody {
                name: name.to_string(),
                message: message.to_string(),
            },
        )
        .await
    }

    /// Restores snapshot `name` → the new versions (one per service that changed since).
    pub async fn restore_snapshot(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Vec<ConfigVersionView>> {
        self.post(
            &format!("/clusters/{}/snapshots/{}/restore", seg(cluster), seg(name)),
            &serde_json::json!({}),
        )
        .await
    }

    /// A cluster's relations.
    pub async fn relations(&self, cluster: &str) -> Result<Vec<RelationView>> {
        self.get(&format!("/clusters/{}/relations", seg(cluster)))
            .await
    }

    /// Relates two service instances.
    pub async fn relate(&self, cluster: &str, req: &Relate) -> Result<RelationView> {
        self.post(&format!("/clusters/{}/relations", seg(cluster)), req)
            .await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        self.delete(&format!("/clusters/{}/relations/{id}", seg(cluster)))
            .await
    }

    /// A relation's events, oldest first.
    pub async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventView>> {
        self.get(&format!("/clusters/{}/relations/{id}/events", seg(cluster)))
            .await
    }
}
