//! The [`ConfigStore`] of [`SqlStore`]: config versions, snapshots and relations (tables of
//! migration 0006).

use super::rows::{corrupt, map_json, to_json};
use super::{SqlStore, insert, insert_err, query, select_all, select_one, text, unique_or};
use crate::model::*;
use crate::store::ConfigStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::AnyConnection;

/// Writes a config version row (the caller keeps the service's row in step).
pub(super) async fn insert_version(conn: &mut AnyConnection, v: &ConfigVersion) -> Result<()> {
    let sql = "INSERT INTO config_versions \
                 (service, version, author, created_at, message, configs, host_overrides) \
               VALUES (?, ?, ?, ?, ?, ?, ?)";
    let values = (
        v.service.0,
        i64::from(v.version),
        &v.author,
        v.created_at,
        text(&v.message).into_owned(),
        to_json(&v.configs)?,
        to_json(&v.host_overrides)?,
    );
    query(sql, values).execute(conn).await.map_err(|e| {
        insert_err(e, "config version", &v.version.to_string(), || {
            Error::not_found("service", v.service)
        })
    })?;
    Ok(())
}

/// The name of a live service instance of `cluster`, else [`Error::NotFound`].
async fn live_service(
    conn: &mut AnyConnection,
    cluster: ClusterId,
    id: ServiceId,
) -> Result<String> {
    let sql = "SELECT name FROM services WHERE id = ? AND cluster = ? AND removed_at IS NULL";
    query(sql, (id.0, cluster.0))
        .found_value(conn, "service", id)
        .await
}

#[async_trait]
impl ConfigStore for SqlStore {
    async fn add_config_version(
        &self,
        service: ServiceId,
        expected: u32,
        new: &NewConfigVersion,
    ) -> Result<ConfigVersion> {
        let mut tx = self.begin_write().await?;
        let (name, current): (String, i64) = query(
            "SELECT name, config_version FROM services WHERE id = ? AND removed_at IS NULL",
            (service.0,),
        )
        .found_row(&mut *tx, "service", service)
        .await?;
        let current = u32::try_from(current).map_err(|e| corrupt("config_version", e))?;
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
            message: text(&new.message).into_owned(),
            configs: new.configs.clone(),
            host_overrides: new.host_overrides.clone(),
        };
        insert_version(&mut tx, &v).await?;
        query(
            "UPDATE services SET configs = ?, host_overrides = ?, config_version = ? WHERE id = ?",
            (
                map_json(&v.configs)?,
                map_json(&v.host_overrides)?,
                i64::from(version),
                service.0,
            ),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(v)
    }

    async fn list_config_versions(&self, service: ServiceId) -> Result<Vec<ConfigVersion>> {
        let from = "FROM config_versions WHERE service = ? ORDER BY version";
        select_all(&self.pool, from, (service.0,)).await
    }

    async fn config_version(
        &self,
        service: ServiceId,
        version: u32,
    ) -> Result<Option<ConfigVersion>> {
        let from = "FROM config_versions WHERE service = ? AND version = ?";
        select_one(&self.pool, from, (service.0, i64::from(version))).await
    }

    async fn add_snapshot(&self, new: &NewSnapshot) -> Result<Snapshot> {
        let mut entries = new.entries.clone();
        entries.sort_by_key(|e| e.service);
        self.write_insert(
            "INSERT INTO snapshots (cluster, name, author, created_at, message, entries) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                new.cluster.0,
                &new.name,
                &new.author,
                now_ms(),
                text(&new.message).into_owned(),
                to_json(&entries)?,
            ),
            |e| {
                insert_err(e, "snapshot", &new.name, || {
                    Error::not_found("cluster", new.cluster)
                })
            },
        )
        .await
    }

    async fn list_snapshots(&self, cluster: ClusterId) -> Result<Vec<Snapshot>> {
        let from = "FROM snapshots WHERE cluster = ? ORDER BY id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn snapshot(&self, cluster: ClusterId, name: &str) -> Result<Option<Snapshot>> {
        let from = "FROM snapshots WHERE cluster = ? AND name = ?";
        select_one(&self.pool, from, (cluster.0, name)).await
    }

    async fn add_relation(&self, new: &NewRelation) -> Result<Relation> {
        let mut tx = self.begin_write().await?;
        let requirer = live_service(&mut tx, new.cluster, new.requirer).await?;
        let provider = live_service(&mut tx, new.cluster, new.provider).await?;
        let relation = insert(
            &mut *tx,
            "INSERT INTO relations (cluster, requirer, requirer_endpoint, provider, \
               provider_endpoint, interface, auto_reconfigure, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.cluster.0,
                new.requirer.0,
                &new.requirer_endpoint,
                new.provider.0,
                &new.provider_endpoint,
                &new.interface,
                i64::from(new.auto_reconfigure),
                now_ms(),
            ),
            |e| {
                let name = format!(
                    "{requirer}:{} -> {provider}:{}",
                    new.requirer_endpoint, new.provider_endpoint
                );
                unique_or(e, "relation", &name)
            },
        )
        .await?;
        tx.commit().await?;
        Ok(relation)
    }

    async fn list_relations(&self, cluster: ClusterId) -> Result<Vec<Relation>> {
        let from = "FROM relations WHERE cluster = ? AND removed_at IS NULL ORDER BY id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn remove_relation(&self, id: RelationId) -> Result<()> {
        let sql = "UPDATE relations SET removed_at = ? WHERE id = ? AND removed_at IS NULL";
        self.write_found(sql, (now_ms(), id.0), "relation", id)
            .await
    }

    async fn add_relation_event(&self, new: &NewRelationEvent) -> Result<RelationEvent> {
        let mut tx = self.begin_write().await?;
        // Removed relations and services still get events (a relation's last is `broken`).
        for (table, id, kind) in [
            ("relations", Some(new.relation.0), "relation"),
            ("services", Some(new.service.0), "service"),
            ("jobs", new.job.map(|j| j.0), "job"),
        ] {
            let Some(id) = id else { continue };
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE id = ?");
            let known: i64 = query(&sql, (id,))
                .value(&mut *tx)
                .await?
                .unwrap_or_default();
            if known == 0 {
                return Err(Error::not_found(kind, id));
            }
        }
        let event = insert(
            &mut *tx,
            "INSERT INTO relation_events (relation, at, kind, service, detail, job) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                new.relation.0,
                now_ms(),
                new.kind.as_str(),
                new.service.0,
                text(&new.detail).into_owned(),
                new.job.map(|j| j.0),
            ),
            Error::from,
        )
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn list_relation_events(&self, relation: RelationId) -> Result<Vec<RelationEvent>> {
        let from = "FROM relation_events WHERE relation = ? ORDER BY id";
        select_all(&self.pool, from, (relation.0,)).await
    }
}
