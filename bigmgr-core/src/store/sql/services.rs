//! The [`ServiceStore`] of [`SqlStore`]: service instances and their units.

use super::{
    SqlStore, configs, fk_or, json_col, map_json, opt_u32_col, text_state, u32_col, unique_or,
};
use crate::model::*;
use crate::store::ServiceStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

const SERVICE_COLS: &str = "id, cluster, name, stack, stack_version, service, created_at, configs, \
                            host_overrides, config_version";
/// Unit columns, qualified by the alias `u`.
const UNIT_COLS: &str =
    "u.id, u.service, u.component, u.host, u.state, u.health, u.applied_version, u.applied_hash";

fn service_row(row: &SqliteRow) -> Result<ServiceInstance> {
    Ok(ServiceInstance {
        id: ServiceId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        name: row.try_get("name")?,
        stack: row.try_get("stack")?,
        stack_version: row.try_get("stack_version")?,
        service: row.try_get("service")?,
        created_at: row.try_get("created_at")?,
        configs: json_col(row, "services.configs")?.unwrap_or_default(),
        host_overrides: json_col(row, "services.host_overrides")?.unwrap_or_default(),
        config_version: u32_col(row, "config_version")?,
    })
}

fn unit_row(row: &SqliteRow) -> Result<Unit> {
    Ok(Unit {
        id: UnitId(row.try_get("id")?),
        service: ServiceId(row.try_get("service")?),
        component: row.try_get("component")?,
        host: HostId(row.try_get("host")?),
        state: text_state(row, "state")?,
        health: json_col(row, "units.health")?,
        applied_version: opt_u32_col(row, "applied_version")?,
        applied_hash: row.try_get("applied_hash")?,
    })
}

/// Inserts a unit (state NEW) of a service; an unknown host is [`Error::NotFound`].
async fn insert_unit(
    conn: &mut SqliteConnection,
    service: ServiceId,
    unit: NewUnit,
) -> Result<Unit> {
    let state = UnitState::New;
    let res =
        sqlx::query("INSERT INTO units (service, component, host, state) VALUES (?, ?, ?, ?)")
            .bind(service.0)
            .bind(&unit.component)
            .bind(unit.host.0)
            .bind(state.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| fk_or(e, || Error::not_found("host", unit.host)))?;
    Ok(Unit {
        id: UnitId(res.last_insert_rowid()),
        service,
        component: unit.component,
        host: unit.host,
        state,
        health: None,
        applied_version: None,
        applied_hash: None,
    })
}

/// The job ids, ascending, of unfinished jobs matching `from_where` (a `FROM … WHERE …` over
/// `jobs j` with one `?` for `id`, the final states following).
async fn unfinished_jobs(
    conn: &mut SqliteConnection,
    from_where: &str,
    id: i64,
) -> Result<Vec<i64>> {
    let final_states = [JobState::Succeeded, JobState::Failed, JobState::Canceled];
    Ok(sqlx::query_scalar(&format!(
        "SELECT DISTINCT j.id {from_where} AND j.state NOT IN (?, ?, ?) ORDER BY j.id"
    ))
    .bind(id)
    .bind(final_states[0].as_str())
    .bind(final_states[1].as_str())
    .bind(final_states[2].as_str())
    .fetch_all(&mut *conn)
    .await?)
}

#[async_trait]
impl ServiceStore for SqlStore {
    async fn add_service(
        &self,
        service: NewService,
        units: Vec<NewUnit>,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created_at = now_ms();
        let res = sqlx::query(
            "INSERT INTO services (cluster, name, stack, stack_version, service, created_at, \
               configs, host_overrides, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(service.cluster.0)
        .bind(&service.name)
        .bind(&service.stack)
        .bind(&service.stack_version)
        .bind(&service.service)
        .bind(created_at)
        .bind(map_json(&service.configs)?)
        .bind(map_json(&service.host_overrides)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                unique_or(e, "service", &service.name)
            }
            _ => fk_or(e, || Error::not_found("cluster", service.cluster)),
        })?;
        let instance = ServiceInstance {
            id: ServiceId(res.last_insert_rowid()),
            cluster: service.cluster,
            name: service.name,
            stack: service.stack,
            stack_version: service.stack_version,
            service: service.service,
            created_at,
            configs: service.configs,
            host_overrides: service.host_overrides,
            config_version: 1,
        };
        configs::insert_version(
            &mut tx,
            &ConfigVersion {
                service: instance.id,
                version: 1,
                author: service.author,
                created_at,
                message: "initial configs".into(),
                configs: instance.configs.clone(),
                host_overrides: instance.host_overrides.clone(),
            },
        )
        .await?;
        let mut placed = Vec::with_capacity(units.len());
        for unit in units {
            placed.push(insert_unit(&mut tx, instance.id, unit).await?);
        }
        tx.commit().await?;
        Ok((instance, placed))
    }

    async fn service_by_name(
        &self,
        cluster: ClusterId,
        name: &str,
    ) -> Result<Option<ServiceInstance>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM services \
             WHERE cluster = ? AND name = ? AND removed_at IS NULL"
        ))
        .bind(cluster.0)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(service_row).transpose()
    }

    async fn list_services(&self, cluster: ClusterId) -> Result<Vec<ServiceInstance>> {
        sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM services WHERE cluster = ? AND removed_at IS NULL ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(service_row)
        .collect()
    }

    async fn list_units(&self, cluster: ClusterId) -> Result<Vec<Unit>> {
        sqlx::query(&format!(
            "SELECT {UNIT_COLS} FROM units u JOIN services s ON s.id = u.service \
             WHERE s.cluster = ? AND s.removed_at IS NULL AND u.removed_at IS NULL ORDER BY u.id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(unit_row)
        .collect()
    }

    async fn remove_service(&self, id: ServiceId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT s.name, c.name AS cluster FROM services s \
             JOIN clusters c ON c.id = s.cluster WHERE s.id = ? AND s.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("service", id))?;
        let name: String = row.try_get("name")?;
        let cluster: String = row.try_get("cluster")?;
        let started: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM units WHERE service = ? AND state = ? AND removed_at IS NULL",
        )
        .bind(id.0)
        .bind(UnitState::Started.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if started > 0 {
            return Err(Error::Conflict(format!(
                "service '{name}' has {started} started unit(s); stop it first: \
                 bigmgr job run {cluster} stop --service {name}"
            )));
        }
        let jobs = unfinished_jobs(
            &mut tx,
            "FROM jobs j JOIN stages st ON st.job = j.id WHERE st.service = ?",
            id.0,
        )
        .await?;
        if let Some(first) = jobs.first() {
            let list: Vec<String> = jobs.iter().map(i64::to_string).collect();
            return Err(Error::Conflict(format!(
                "service '{name}' is in unfinished job(s) {}; wait for them to finish or cancel \
                 them (bigmgr job cancel {first}) first",
                list.join(", ")
            )));
        }
        // Its units and relations go with it (softly: tasks and events keep referring to them).
        let at = now_ms();
        for sql in [
            "UPDATE services SET removed_at = ?1, name = name || '#' || id WHERE id = ?2",
            "UPDATE units SET removed_at = ?1 WHERE service = ?2 AND removed_at IS NULL",
            "UPDATE relations SET removed_at = ?1 \
             WHERE (requirer = ?2 OR provider = ?2) AND removed_at IS NULL",
        ] {
            sqlx::query(sql)
                .bind(at)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_units(&self, service: ServiceId, units: Vec<NewUnit>) -> Result<Vec<Unit>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let cluster: i64 =
            sqlx::query_scalar("SELECT cluster FROM services WHERE id = ? AND removed_at IS NULL")
                .bind(service.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("service", service))?;
        let mut placed = Vec::with_capacity(units.len());
        for unit in units {
            let row =
                sqlx::query("SELECT name, cluster FROM hosts WHERE id = ? AND removed_at IS NULL")
                    .bind(unit.host.0)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::not_found("host", unit.host))?;
            let host: String = row.try_get("name")?;
            let host_cluster: i64 = row.try_get("cluster")?;
            if host_cluster != cluster {
                return Err(Error::Invalid(format!(
                    "host '{host}' is not in the service instance's cluster"
                )));
            }
            // Units added before in this call count too.
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM units \
                 WHERE service = ? AND component = ? AND host = ? AND removed_at IS NULL",
            )
            .bind(service.0)
            .bind(&unit.component)
            .bind(unit.host.0)
            .fetch_one(&mut *tx)
            .await?;
            if taken > 0 {
                return Err(Error::AlreadyExists {
                    kind: "unit",
                    name: format!("{} on {host}", unit.component),
                });
            }
            placed.push(insert_unit(&mut tx, service, unit).await?);
        }
        tx.commit().await?;
        Ok(placed)
    }

    async fn remove_unit(&self, id: UnitId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT u.component, u.state, h.name AS host, s.name AS service, c.name AS cluster \
             FROM units u JOIN services s ON s.id = u.service JOIN hosts h ON h.id = u.host \
             JOIN clusters c ON c.id = s.cluster \
             WHERE u.id = ? AND u.removed_at IS NULL AND s.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("unit", id))?;
        let component: String = row.try_get("component")?;
        let host: String = row.try_get("host")?;
        let service: String = row.try_get("service")?;
        let cluster: String = row.try_get("cluster")?;
        let what = format!("unit {id} ({service}/{component} on {host})");
        if text_state::<UnitState>(&row, "state")? == UnitState::Started {
            return Err(Error::Conflict(format!(
                "{what} is started; stop it first: bigmgr job run {cluster} stop --units {id}"
            )));
        }
        let jobs = unfinished_jobs(
            &mut tx,
            "FROM jobs j JOIN tasks t ON t.job = j.id WHERE t.unit = ?",
            id.0,
        )
        .await?;
        if let Some(first) = jobs.first() {
            let list: Vec<String> = jobs.iter().map(i64::to_string).collect();
            return Err(Error::Conflict(format!(
                "{what} is in unfinished job(s) {}; wait for them to finish or cancel them \
                 (bigmgr job cancel {first}) first",
                list.join(", ")
            )));
        }
        sqlx::query("UPDATE units SET removed_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
