//! The [`ClusterStore`] of [`SqlStore`]: clusters and hosts.

use super::{SqlStore, fk_or, found, insert_err, query, select_all, select_one, unique_or};
use crate::model::*;
use crate::store::ClusterStore;
use crate::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl ClusterStore for SqlStore {
    async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        let sql = "INSERT INTO clusters (name, created_at) VALUES (?, ?)";
        self.write_insert(sql, (name, now_ms()), |e| unique_or(e, "cluster", name))
            .await
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        select_one(&self.pool, "FROM clusters WHERE name = ?", (name,)).await
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>> {
        select_all(&self.pool, "FROM clusters ORDER BY id", ()).await
    }

    async fn delete_cluster(&self, id: ClusterId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (name, hosts, services, jobs, pipelines): (String, i64, i64, i64, i64) = query(
            "SELECT name, \
               (SELECT COUNT(*) FROM hosts WHERE cluster = c.id AND removed_at IS NULL), \
               (SELECT COUNT(*) FROM services WHERE cluster = c.id AND removed_at IS NULL), \
               (SELECT COUNT(*) FROM jobs WHERE cluster = c.id), \
               (SELECT COUNT(*) FROM pipelines WHERE cluster = c.id AND removed_at IS NULL) \
             FROM clusters c WHERE c.id = ?",
            (id.0,),
        )
        .found_row(&mut *tx, "cluster", id)
        .await?;
        let held: Vec<String> = [
            (hosts, "hosts"),
            (services, "services"),
            (jobs, "jobs"),
            (pipelines, "pipelines"),
        ]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let refuse = |held: &[String]| {
            Error::Conflict(format!(
                "cluster '{name}' still has {}; remove them before deleting the cluster",
                held.join(", ")
            ))
        };
        if !held.is_empty() {
            return Err(refuse(&held));
        }
        query("DELETE FROM join_tokens WHERE cluster = ?", (id.0,))
            .execute(&mut *tx)
            .await?;
        // Removed hosts and services (and their units, config versions and relations) only stay
        // for the history of jobs; a cluster without jobs has none, so they go with it, and so
        // do its snapshots. Live ones make the foreign keys refuse below.
        for sql in [
            "DELETE FROM snapshots WHERE cluster = ?1",
            "DELETE FROM pipeline_batches WHERE pipeline IN \
               (SELECT id FROM pipelines WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM pipelines WHERE cluster = ?1 AND removed_at IS NOT NULL",
            // The assistant's threads about the cluster, with their messages and proposals.
            "DELETE FROM assistant_proposals WHERE thread IN \
               (SELECT id FROM assistant_threads WHERE cluster = ?1)",
            "DELETE FROM assistant_messages WHERE thread IN \
               (SELECT id FROM assistant_threads WHERE cluster = ?1)",
            "DELETE FROM assistant_threads WHERE cluster = ?1",
            "DELETE FROM maintenance WHERE cluster = ?1",
            "DELETE FROM alert_overrides WHERE cluster = ?1",
            "DELETE FROM unit_checks WHERE unit IN (SELECT u.id FROM units u \
               JOIN services s ON s.id = u.service WHERE s.cluster = ?1)",
            "DELETE FROM service_policies WHERE service IN \
               (SELECT id FROM services WHERE cluster = ?1)",
            "DELETE FROM delivery_attempts WHERE notification IN (SELECT n.id FROM \
               notifications n JOIN alert_targets t ON t.id = n.target WHERE t.cluster = ?1)",
            "DELETE FROM notifications WHERE target IN \
               (SELECT id FROM alert_targets WHERE cluster = ?1)",
            "DELETE FROM alert_targets WHERE cluster = ?1",
            "DELETE FROM alert_changes WHERE cluster = ?1",
            "DELETE FROM alerts WHERE cluster = ?1",
            "DELETE FROM relation_events WHERE relation IN \
               (SELECT id FROM relations WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM relations WHERE cluster = ?1 AND removed_at IS NOT NULL",
            "DELETE FROM config_versions WHERE service IN \
               (SELECT id FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM units WHERE service IN \
               (SELECT id FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL",
            "DELETE FROM hosts WHERE cluster = ?1 AND removed_at IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.host = hosts.id)",
        ] {
            query(sql, (id.0,)).execute(&mut *tx).await?;
        }
        let res = query("DELETE FROM clusters WHERE id = ?", (id.0,))
            .execute(&mut *tx)
            .await
            .map_err(|e| fk_or(e, || refuse(&["hosts, services or jobs".to_string()])))?;
        tx.commit().await?;
        found(&res, "cluster", id)
    }

    async fn add_host(&self, host: NewHost) -> Result<Host> {
        self.write_insert(
            "INSERT INTO hosts (cluster, name, address, state, last_heartbeat) \
             VALUES (?, ?, ?, ?, NULL)",
            (
                host.cluster.0,
                &host.name,
                &host.address,
                HostState::Waiting.as_str(),
            ),
            |e| {
                insert_err(e, "host", &host.name, || {
                    Error::not_found("cluster", host.cluster)
                })
            },
        )
        .await
    }

    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        select_one(
            &self.pool,
            "FROM hosts WHERE name = ? AND removed_at IS NULL",
            (name,),
        )
        .await
    }

    async fn list_hosts(&self, cluster: ClusterId) -> Result<Vec<Host>> {
        select_all(
            &self.pool,
            "FROM hosts WHERE cluster = ? AND removed_at IS NULL ORDER BY id",
            (cluster.0,),
        )
        .await
    }

    async fn remove_host(&self, id: HostId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (name, cluster): (String, String) = query(
            "SELECT h.name, c.name FROM hosts h JOIN clusters c ON c.id = h.cluster \
             WHERE h.id = ? AND h.removed_at IS NULL",
            (id.0,),
        )
        .found_row(&mut *tx, "host", id)
        .await?;
        let services: Vec<String> = query(
            "SELECT DISTINCT s.name FROM units u JOIN services s ON s.id = u.service \
             WHERE u.host = ? AND s.removed_at IS NULL AND u.removed_at IS NULL \
             ORDER BY s.name",
            (id.0,),
        )
        .values(&mut *tx)
        .await?;
        if let Some(first) = services.first() {
            return Err(Error::Conflict(format!(
                "host '{name}' still has units of service(s) {}; remove those services first \
                 (stop them, then e.g. bigmgr service remove {cluster} {first})",
                services.join(", ")
            )));
        }
        query(
            "UPDATE hosts SET removed_at = ?, name = name || '#' || id, credential = NULL \
             WHERE id = ?",
            (now_ms(), id.0),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn set_host_state(
        &self,
        id: HostId,
        state: HostState,
        heartbeat: Option<i64>,
    ) -> Result<()> {
        self.write_found(
            "UPDATE hosts SET state = ?, last_heartbeat = COALESCE(?, last_heartbeat) \
             WHERE id = ?",
            (state.as_str(), heartbeat, id.0),
            "host",
            id,
        )
        .await
    }

    async fn set_host_address(&self, host: HostId, address: &str) -> Result<()> {
        self.write_found(
            "UPDATE hosts SET address = ?, reported_address = NULL \
             WHERE id = ? AND removed_at IS NULL",
            (address, host.0),
            "host",
            host,
        )
        .await
    }
}
