//! The [`ClusterStore`] of [`SqlStore`]: clusters and hosts.

use super::{SqlStore, fk_or, found, json_col, text_state, unique_or};
use crate::model::*;
use crate::store::ClusterStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const HOST_COLS: &str =
    "id, cluster, name, address, reported_address, state, last_heartbeat, facts, metrics";

fn cluster_row(row: &SqliteRow) -> Result<Cluster> {
    Ok(Cluster {
        id: ClusterId(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn host_row(row: &SqliteRow) -> Result<Host> {
    Ok(Host {
        id: HostId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        reported_address: row.try_get("reported_address")?,
        state: text_state(row, "state")?,
        last_heartbeat: row.try_get("last_heartbeat")?,
        facts: json_col(row, "hosts.facts")?,
        metrics: json_col(row, "hosts.metrics")?,
    })
}

#[async_trait]
impl ClusterStore for SqlStore {
    async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        let _w = self.write.lock().await;
        let created_at = now_ms();
        let res = sqlx::query("INSERT INTO clusters (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_or(e, "cluster", name))?;
        Ok(Cluster {
            id: ClusterId(res.last_insert_rowid()),
            name: name.to_string(),
            created_at,
        })
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        let row = sqlx::query("SELECT id, name, created_at FROM clusters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_row).transpose()
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>> {
        sqlx::query("SELECT id, name, created_at FROM clusters ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cluster_row)
            .collect()
    }

    async fn delete_cluster(&self, id: ClusterId) -> Result<()> {
        let _w = self.write.lock().await;
        let row = sqlx::query(
            "SELECT name, \
               (SELECT COUNT(*) FROM hosts WHERE cluster = c.id AND removed_at IS NULL) AS hosts, \
               (SELECT COUNT(*) FROM services WHERE cluster = c.id AND removed_at IS NULL) \
                 AS services, \
               (SELECT COUNT(*) FROM jobs WHERE cluster = c.id) AS jobs \
             FROM clusters c WHERE c.id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("cluster", id))?;
        let name: String = row.try_get("name")?;
        let mut held = Vec::new();
        for what in ["hosts", "services", "jobs"] {
            let n: i64 = row.try_get(what)?;
            if n > 0 {
                held.push(format!("{n} {what}"));
            }
        }
        let refuse = |held: &[String]| {
            Error::Conflict(format!(
                "cluster '{name}' still has {}; remove them before deleting the cluster",
                held.join(", ")
            ))
        };
        if !held.is_empty() {
            return Err(refuse(&held));
        }
        // Another process may have added something since: the foreign keys refuse it then.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM join_tokens WHERE cluster = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        // Removed hosts and services (and their units, config versions and relations) only stay
        // for the history of jobs; a cluster without jobs has none, so they go with it, and so
        // do its snapshots. Live ones make the foreign keys refuse below.
        for sql in [
            "DELETE FROM snapshots WHERE cluster = ?1",
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
            sqlx::query(sql).bind(id.0).execute(&mut *tx).await?;
        }
        let res = sqlx::query("DELETE FROM clusters WHERE id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| fk_or(e, || refuse(&["hosts, services or jobs".to_string()])))?;
        tx.commit().await?;
        found(&res, "cluster", id)
    }

    async fn add_host(&self, host: NewHost) -> Result<Host> {
        let _w = self.write.lock().await;
        let state = HostState::Waiting;
        let res = sqlx::query(
            "INSERT INTO hosts (cluster, name, address, state, last_heartbeat) \
             VALUES (?, ?, ?, ?, NULL)",
        )
        .bind(host.cluster.0)
        .bind(&host.name)
        .bind(&host.address)
        .bind(state.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                unique_or(e, "host", &host.name)
            }
            _ => fk_or(e, || Error::not_found("cluster", host.cluster)),
        })?;
        Ok(Host {
            id: HostId(res.last_insert_rowid()),
            cluster: host.cluster,
            name: host.name,
            address: host.address,
            reported_address: None,
            state,
            last_heartbeat: None,
            facts: None,
            metrics: None,
        })
    }

    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        let row = sqlx::query(&format!(
            "SELECT {HOST_COLS} FROM hosts WHERE name = ? AND removed_at IS NULL"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(host_row).transpose()
    }

    async fn list_hosts(&self, cluster: ClusterId) -> Result<Vec<Host>> {
        sqlx::query(&format!(
            "SELECT {HOST_COLS} FROM hosts WHERE cluster = ? AND removed_at IS NULL ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(host_row)
        .collect()
    }

    async fn remove_host(&self, id: HostId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT h.name, c.name AS cluster FROM hosts h JOIN clusters c ON c.id = h.cluster \
             WHERE h.id = ? AND h.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("host", id))?;
        let name: String = row.try_get("name")?;
        let cluster: String = row.try_get("cluster")?;
        let services: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT s.name FROM units u JOIN services s ON s.id = u.service \
             WHERE u.host = ? AND s.removed_at IS NULL AND u.removed_at IS NULL \
             ORDER BY s.name",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(first) = services.first() {
            return Err(Error::Conflict(format!(
                "host '{name}' still has units of service(s) {}; remove those services first \
                 (stop them, then e.g. bigmgr service remove {cluster} {first})",
                services.join(", ")
            )));
        }
        sqlx::query(
            "UPDATE hosts SET removed_at = ?, name = name || '#' || id, credential = NULL \
             WHERE id = ?",
        )
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_host_state(
        &self,
        id: HostId,
        state: HostState,
        heartbeat: Option<i64>,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET state = ?, last_heartbeat = COALESCE(?, last_heartbeat) \
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(heartbeat)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        found(&res, "host", id)
    }

    async fn set_host_address(&self, host: HostId, address: &str) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET address = ?, reported_address = NULL \
             WHERE id = ? AND removed_at IS NULL",
        )
        .bind(address)
        .bind(host.0)
        .execute(&self.pool)
        .await?;
        found(&res, "host", host)
    }
}
