//! The [`AgentStore`] of [`SqlStore`]: join tokens, claiming hosts, agent credentials and
//! certificates, and host reports.

use super::rows::{corrupt, to_json};
use super::{SqlStore, found, insert_err, query, select_one};
use crate::model::*;
use crate::store::{AgentStore, METRICS_KEPT_MS};
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::AnyConnection;

#[async_trait]
impl AgentStore for SqlStore {
    async fn add_join_token(&self, cluster: ClusterId, token_hash: &str) -> Result<()> {
        self.write(
            "INSERT INTO join_tokens (hash, cluster, created_at) VALUES (?, ?, ?)",
            (token_hash, cluster.0, now_ms()),
        )
        .await
        .map_err(|e| {
            insert_err(e, "join token", "(hidden)", || {
                Error::not_found("cluster", cluster)
            })
        })?;
        Ok(())
    }

    async fn join_token_cluster(&self, token_hash: &str) -> Result<Option<ClusterId>> {
        let sql = "SELECT cluster FROM join_tokens WHERE hash = ?";
        let id = query(sql, (token_hash,)).value(&self.pool).await?;
        Ok(id.map(ClusterId))
    }

    async fn claim_host(&self, host: HostId, credential_hash: &str) -> Result<bool> {
        let _lock = self.lock.lock().await;
        let res = query(
            "UPDATE hosts SET credential = ? \
             WHERE id = ? AND credential IS NULL AND removed_at IS NULL",
            (credential_hash, host.0),
        )
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(true);
        }
        let sql = "SELECT id FROM hosts WHERE id = ? AND removed_at IS NULL";
        match query(sql, (host.0,)).value::<i64>(&self.pool).await? {
            Some(_) => Ok(false),
            None => Err(Error::not_found("host", host)),
        }
    }

    async fn host_credential(&self, host: HostId) -> Result<Option<String>> {
        let sql = "SELECT credential FROM hosts WHERE id = ?";
        query(sql, (host.0,))
            .found_value(&self.pool, "host", host)
            .await
    }

    async fn set_host_certificate(&self, host: HostId, fingerprint: &str) -> Result<()> {
        self.write_found(
            "UPDATE hosts SET cert_fingerprint = ? WHERE id = ? AND removed_at IS NULL",
            (fingerprint, host.0),
            "host",
            host,
        )
        .await
    }

    async fn set_host_ssh_key(&self, host: HostId, fingerprint: &str) -> Result<()> {
        self.write_found(
            "UPDATE hosts SET ssh_host_key = ? WHERE id = ? AND removed_at IS NULL",
            (fingerprint, host.0),
            "host",
            host,
        )
        .await
    }

    async fn host_ssh_key(&self, host: HostId) -> Result<Option<String>> {
        let sql = "SELECT ssh_host_key FROM hosts WHERE id = ?";
        query(sql, (host.0,))
            .found_value(&self.pool, "host", host)
            .await
    }

    async fn host_by_certificate(&self, fingerprint: &str) -> Result<Option<Host>> {
        select_one(
            &self.pool,
            "FROM hosts WHERE cert_fingerprint = ? AND removed_at IS NULL",
            (fingerprint,),
        )
        .await
    }

    async fn record_host_report(&self, host: HostId, report: &HostReport) -> Result<()> {
        let mut tx = self.begin_write().await?;
        write_report(&mut tx, host, report).await?;
        tx.commit().await
    }

    async fn record_host_reports(&self, reports: &[(HostId, HostReport)]) -> Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (host, report) in reports {
            match write_report(&mut tx, *host, report).await {
                // Removed since it reported: skipped, as the batch's other reports are not.
                Err(Error::NotFound { .. }) => {}
                other => other?,
            }
        }
        tx.commit().await
    }

    async fn host_metrics(
        &self,
        cluster: ClusterId,
        host: Option<HostId>,
        since: i64,
    ) -> Result<Vec<(HostId, HostMetrics)>> {
        let rows: Vec<(i64, String)> = query(
            "SELECT m.host, m.metrics FROM host_metrics m JOIN hosts h ON h.id = m.host \
             WHERE h.cluster = ?1 AND h.removed_at IS NULL AND (?2 IS NULL OR m.host = ?2) \
               AND m.at >= ?3 \
             ORDER BY m.host, m.at",
            (cluster.0, host.map(|h| h.0), since),
        )
        .rows(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(h, text)| {
                let m =
                    serde_json::from_str(&text).map_err(|e| corrupt("host_metrics.metrics", e))?;
                Ok((HostId(h), m))
            })
            .collect()
    }
}

/// Writes one host report on a write transaction's connection (see
/// [`AgentStore::record_host_report`]); [`Error::NotFound`] (and nothing written) for a host the
/// store does not have.
async fn write_report(conn: &mut AnyConnection, host: HostId, report: &HostReport) -> Result<()> {
    let facts = report.facts.as_ref().map(to_json).transpose()?;
    let metrics = report.metrics.as_ref().map(to_json).transpose()?;
    let res = query(
        "UPDATE hosts SET state = ?1, last_heartbeat = ?2, \
           reported_address = CASE WHEN ?3 IS NULL THEN reported_address \
             WHEN ?3 = address THEN NULL ELSE ?3 END, \
           facts = COALESCE(?4, facts), metrics = COALESCE(?5, metrics) \
         WHERE id = ?6",
        (
            HostState::Online.as_str(),
            report.at,
            report.address.as_deref(),
            facts,
            metrics,
            host.0,
        ),
    )
    .execute(&mut *conn)
    .await?;
    found(&res, "host", host)?;
    if let Some(m) = &report.metrics {
        let sample = HostMetrics {
            at: report.at,
            ..m.clone()
        };
        query(
            "INSERT INTO host_metrics (host, at, metrics) VALUES (?, ?, ?)",
            (host.0, report.at, to_json(&sample)?),
        )
        .execute(&mut *conn)
        .await?;
        query(
            "DELETE FROM host_metrics WHERE host = ? AND at < ?",
            (host.0, report.at - METRICS_KEPT_MS),
        )
        .execute(&mut *conn)
        .await?;
    }
    for u in &report.units {
        let health = to_json(&Health {
            healthy: u.healthy,
            message: u.message.clone(),
            checked_at: u.checked_at,
        })?;
        // A unit the store does not know (removed since) is skipped.
        query(
            "UPDATE units SET health = ?1 WHERE host = ?2 AND component = ?3 \
               AND removed_at IS NULL AND service = \
               (SELECT s.id FROM services s JOIN hosts h ON h.cluster = s.cluster \
                JOIN clusters c ON c.id = s.cluster \
                WHERE h.id = ?2 AND c.name = ?4 AND s.name = ?5 AND s.removed_at IS NULL)",
            (health, host.0, &u.component, &u.cluster, &u.service),
        )
        .execute(&mut *conn)
        .await?;
    }
    for c in &report.checks {
        let result = to_json(c)?;
        // Only a unit of this host, of the cluster and service it names, and not removed:
        // an agent reports about its own units only.
        query(
            "INSERT INTO unit_checks (unit, name, result, checked_at) \
             SELECT u.id, ?1, ?2, ?3 FROM units u JOIN services s ON s.id = u.service \
               JOIN clusters c ON c.id = s.cluster \
             WHERE u.host = ?4 AND u.component = ?5 AND u.removed_at IS NULL \
               AND s.name = ?6 AND s.removed_at IS NULL AND c.name = ?7 \
             ON CONFLICT (unit, name) DO UPDATE SET result = EXCLUDED.result, \
               checked_at = EXCLUDED.checked_at",
            (
                &c.name,
                result,
                c.checked_at,
                host.0,
                &c.component,
                &c.service,
                &c.cluster,
            ),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
