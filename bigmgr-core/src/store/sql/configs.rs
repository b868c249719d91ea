//! The [`ConfigStore`] of [`SqlStore`]: config versions, snapshots and relations (tables of
//! migration 0006).

use super::{SqlStore, corrupt, fk_or, found, json_col, to_json, u32_col, unique_or};
use crate::model::*;
use crate::store::ConfigStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

const VERSION_COLS: &str = "service, version, author, created_at, message, configs, host_overrides";
const SNAPSHOT_COLS: &str = "id, cluster, name, author, created_at, message, entries";
const RELATION_COLS: &str = "id, cluster, requirer, requirer_endpoint, provider, \
                             provider_endpoint, interface, auto_reconfigure, created_at";
const EVENT_COLS: &str = "id, relation, at, kind, service, detail, job";

fn version_row(row: &SqliteRow) -> Result<ConfigVersion> {
    Ok(ConfigVersion {
        service: ServiceId(row.try_get("service")?),
        version: u32_col(row, "version")?,
        author: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
        message: row.try_get("message")?,
        configs: json_col(row, "config_versions.configs")?.unwrap_or_default(),
        host_overrides: json_col(row, "config_versions.host_overrides")?.unwrap_or_default(),
    })
}

fn snapshot_row(row: &SqliteRow) -> Result<Snapshot> {
    Ok(Snapshot {
        id: SnapshotId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        name: row.try_get("name")?,
        author: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
        message: row.try_get("message")?,
        entries: json_col(row, "snapshots.entries")?.unwrap_or_default(),
    })
}

fn relation_row(row: &SqliteRow) -> Result<Relation> {
    Ok(Relation {
        id: RelationId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        requirer: ServiceId(row.try_get("requirer")?),
        requirer_endpoint: row.try_get("requirer_endpoint")?,
        provider: ServiceId(row.try_get("provider")?),
        provider_endpoint: row.try_get("provider_endpoint")?,
        interface: row.try_get("interface")?,
        auto_reconfigure: row.try_get("auto_reconfigure")?,
        created_at: row.try_get("created_at")?,
    })
}

fn event_row(row: &SqliteRow) -> Result<RelationEvent> {
    let kind: String = row.try_get("kind")?;
    let job: Option<i64> = row.try_get("job")?;
    Ok(RelationEvent {
        id: RelationEventId(row.try_get("id")?),
        relation: RelationId(row.try_get("relation")?),
        at: row.try_get("at")?,
        kind: kind
            .parse()
            .map_err(|e| corrupt("relation_events.kind", e))?,
        service: ServiceId(row.try_get("service")?),
        detail: row.try_get("detail")?,
        job: job.map(JobId),
    })
}

/// Writes a config version row (the caller keeps the service's row in step).
pub(super) async fn insert_version(conn: &mut SqliteConnection, v: &ConfigVersion) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO config_versions ({VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(v.service.0)
    .bind(i64::from(v.version))
    .bind(&v.author)
    .bind(v.created_at)
    .bind(&v.message)
    .bind(to_json(&v.configs)?)
    .bind(to_json(&v.host_overrides)?)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            unique_or(e, "config version", &v.version.to_string())
        }
        _ => fk_or(e, || Error::not_found("service", v.service)),
    })?;
    Ok(())
}

/// The name of a live service instance of `cluster`, else [`Error::NotFound`].
async fn live_service(
    conn: &mut SqliteConnection,
    cluster: ClusterId,
    id: ServiceId,
) -> Result<String> {
    sqlx::query_scalar(
        "SELECT name FROM services WHERE id = ? AND cluster = ? AND removed_at IS NULL",
    )
    .bind(id.0)
    .bind(cluster.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found("service", id))
}

#[async_trait]
impl ConfigStore for SqlStore {
    async fn add_config_version(
        &self,
        service: ServiceId,
        expected: u32,
        new: &NewConfigVersion,
    ) -> Result<ConfigVersion> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT name, config_version FROM services WHERE id = ? AND removed_at IS NULL",
        )
        .bind(service.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("service", service))?;
        let name: String = row.try_get("name")?;
        let current = u32_col(&row, "config_version")?;
        if current != expected {
            return Err(Error::Conflict(format!(
                "service '{name}' is at config version {current}, not {expected}: someone \
                 changed its configs meanwhile; look at version {current} and try again"
            )));
        }
        let version = expected
            .checked_add(1)
            .ok_or_else(|| Error::Invalid(format!("service '{name}' has too many versions")))?;
        let v = ConfigVersion {
            service,
            version,
            author: new.author.clone(),
            created_at: now_ms(),
            message: new.message.clone(),
            configs: new.configs.clone(),
            host_overrides: new.host_overrides.clone(),
        };
        insert_version(&mut tx, &v).await?;
        sqlx::query(
            "UPDATE services SET configs = ?, host_overrides = ?, config_version = ? WHERE id = ?",
        )
        .bind(super::map_json(&v.configs)?)
        .bind(super::map_json(&v.host_overrides)?)
        .bind(i64::from(version))
        .bind(service.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(v)
    }

    async fn list_config_versions(&self, service: ServiceId) -> Result<Vec<ConfigVersion>> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLS} FROM config_versions WHERE service = ? ORDER BY version"
        ))
        .bind(service.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_row)
        .collect()
    }

    async fn config_version(
        &self,
        service: ServiceId,
        version: u32,
    ) -> Result<Option<ConfigVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLS} FROM config_versions WHERE service = ? AND version = ?"
        ))
        .bind(service.0)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(version_row).transpose()
    }

    async fn add_snapshot(&self, new: &NewSnapshot) -> Result<Snapshot> {
        let mut entries = new.entries.clone();
        entries.sort_by_key(|e| e.service);
        let _w = self.write.lock().await;
        let created_at = now_ms();
        let res = sqlx::query(&format!(
            "INSERT INTO snapshots ({SNAPSHOT_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(new.cluster.0)
        .bind(&new.name)
        .bind(&new.author)
        .bind(created_at)
        .bind(&new.message)
        .bind(to_json(&entries)?)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                unique_or(e, "snapshot", &new.name)
            }
            _ => fk_or(e, || Error::not_found("cluster", new.cluster)),
        })?;
        Ok(Snapshot {
            id: SnapshotId(res.last_insert_rowid()),
            cluster: new.cluster,
            name: new.name.clone(),
            author: new.author.clone(),
            created_at,
            message: new.message.clone(),
            entries,
        })
    }

    async fn list_snapshots(&self, cluster: ClusterId) -> Result<Vec<Snapshot>> {
        sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE cluster = ? ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(snapshot_row)
        .collect()
    }

    async fn snapshot(&self, cluster: ClusterId, name: &str) -> Result<Option<Snapshot>> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE cluster = ? AND name = ?"
        ))
        .bind(cluster.0)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(snapshot_row).transpose()
    }

    async fn add_relation(&self, new: &NewRelation) -> Result<Relation> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let requirer = live_service(&mut tx, new.cluster, new.requirer).await?;
        let provider = live_service(&mut tx, new.cluster, new.provider).await?;
        let created_at = now_ms();
        let res = sqlx::query(&format!(
            "INSERT INTO relations ({RELATION_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(new.cluster.0)
        .bind(new.requirer.0)
        .bind(&new.requirer_endpoint)
        .bind(new.provider.0)
        .bind(&new.provider_endpoint)
        .bind(&new.interface)
        .bind(new.auto_reconfigure)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let name = format!(
                "{requirer}:{} -> {provider}:{}",
                new.requirer_endpoint, new.provider_endpoint
            );
            unique_or(e, "relation", &name)
        })?;
        tx.commit().await?;
        Ok(Relation {
            id: RelationId(res.last_insert_rowid()),
            cluster: new.cluster,
            requirer: new.requirer,
            requirer_endpoint: new.requirer_endpoint.clone(),
            provider: new.provider,
            provider_endpoint: new.provider_endpoint.clone(),
            interface: new.interface.clone(),
            auto_reconfigure: new.auto_reconfigure,
            created_at,
        })
    }

    async fn list_relations(&self, cluster: ClusterId) -> Result<Vec<Relation>> {
        sqlx::query(&format!(
            "SELECT {RELATION_COLS} FROM relations \
             WHERE cluster = ? AND removed_at IS NULL ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(relation_row)
        .collect()
    }

    async fn remove_relation(&self, id: RelationId) -> Result<()> {
        let _w = self.write.lock().await;
        let res =
            sqlx::query("UPDATE relations SET removed_at = ? WHERE id = ? AND removed_at IS NULL")
                .bind(now_ms())
                .bind(id.0)
                .execute(&self.pool)
                .await?;
        found(&res, "relation", id)
    }

    async fn add_relation_event(&self, new: &NewRelationEvent) -> Result<RelationEvent> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Removed relations and services still get events (a relation's last is `broken`).
        for (table, id, kind) in [
            ("relations", Some(new.relation.0), "relation"),
            ("services", Some(new.service.0), "service"),
            ("jobs", new.job.map(|j| j.0), "job"),
        ] {
            let Some(id) = id else { continue };
            let known: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE id = ?"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if known == 0 {
                return Err(Error::not_found(kind, id));
            }
        }
        let at = now_ms();
        let res = sqlx::query(&format!(
            "INSERT INTO relation_events ({EVENT_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(new.relation.0)
        .bind(at)
        .bind(new.kind.as_str())
        .bind(new.service.0)
        .bind(&new.detail)
        .bind(new.job.map(|j| j.0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RelationEvent {
            id: RelationEventId(res.last_insert_rowid()),
            relation: new.relation,
            at,
            kind: new.kind,
            service: new.service,
            detail: new.detail.clone(),
            job: new.job,
        })
    }

    async fn list_relation_events(&self, relation: RelationId) -> Result<Vec<RelationEvent>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM relation_events WHERE relation = ? ORDER BY id"
        ))
        .bind(relation.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_row)
        .collect()
    }
}
