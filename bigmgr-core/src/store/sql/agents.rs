//! The [`AgentStore`] of [`SqlStore`]: join tokens, claiming hosts, agent credentials and host
//! reports.

use super::{SqlStore, fk_or, found, to_json, unique_or};
use crate::model::*;
use crate::store::AgentStore;
use crate::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AgentStore for SqlStore {
    async fn add_join_token(&self, cluster: ClusterId, token_hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO join_tokens (hash, cluster, created_at) VALUES (?, ?, ?)")
            .bind(token_hash)
            .bind(cluster.0)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    unique_or(e, "join token", "(hidden)")
                }
                _ => fk_or(e, || Error::not_found("cluster", cluster)),
            })?;
        Ok(())
    }

    async fn join_token_cluster(&self, token_hash: &str) -> Result<Option<ClusterId>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT cluster FROM join_tokens WHERE hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(ClusterId))
    }

    async fn claim_host(&self, host: HostId, credential_hash: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET credential = ? \
             WHERE id = ? AND credential IS NULL AND removed_at IS NULL",
        )
        .bind(credential_hash)
        .bind(host.0)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(true);
        }
        let live: Option<i64> =
            sqlx::query_scalar("SELECT id FROM hosts WHERE id = ? AND removed_at IS NULL")
                .bind(host.0)
                .fetch_optional(&self.pool)
                .await?;
        match live {
            Some(_) => Ok(false),
            None => Err(Error::not_found("host", host)),
        }
    }

    async fn host_credential(&self, host: HostId) -> Result<Option<String>> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT credential FROM hosts WHERE id = ?")
                .bind(host.0)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("host", host))
    }

    async fn record_host_report(&self, host: HostId, report: &HostReport) -> Result<()> {
        let facts = report.facts.as_ref().map(to_json).transpose()?;
        let metrics = report.metrics.as_ref().map(to_json).transpose()?;
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let res = sqlx::query(
            "UPDATE hosts SET state = ?1, last_heartbeat = ?2, \
               reported_address = CASE WHEN ?3 IS NULL THEN reported_address \
                 WHEN ?3 = address THEN NULL ELSE ?3 END, \
               facts = COALESCE(?4, facts), metrics = COALESCE(?5, metrics) \
             WHERE id = ?6",
        )
        .bind(HostState::Online.as_str())
        .bind(report.at)
        .bind(report.address.as_deref())
        .bind(facts)
        .bind(metrics)
        .bind(host.0)
        .execute(&mut *tx)
        .await?;
        found(&res, "host", host)?;
        for u in &report.units {
            let health = to_json(&Health {
                healthy: u.healthy,
                message: u.message.clone(),
                checked_at: u.checked_at,
            })?;
            // A unit the store does not know (removed since) is skipped.
            sqlx::query(
                "UPDATE units SET health = ?1 WHERE host = ?2 AND component = ?3 \
                   AND removed_at IS NULL AND service = \
                   (SELECT s.id FROM services s JOIN hosts h ON h.cluster = s.cluster \
                    JOIN clusters c ON c.id = s.cluster \
                    WHERE h.id = ?2 AND c.name = ?4 AND s.name = ?5 AND s.removed_at IS NULL)",
            )
            .bind(health)
            .bind(host.0)
            .bind(&u.component)
            .bind(&u.cluster)
            .bind(&u.service)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
