//! The [`ServiceStore`] of [`SqlStore`]: service instances and their units.

use super::rows::{corrupt, map_json};
use super::{SqlStore, configs, fk_or, insert, insert_err, query, select_all, select_one};
use crate::model::*;
use crate::store::ServiceStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::AnyConnection;

/// Inserts a unit (state NEW) of a service; an unknown host is [`Error::NotFound`].
async fn insert_unit(conn: &mut AnyConnection, service: ServiceId, unit: NewUnit) -> Result<Unit> {
    let state = UnitState::New;
    let id = query(
        "INSERT INTO units (service, component, host, state) VALUES (?, ?, ?, ?) RETURNING id",
        (service.0, &unit.component, unit.host.0, state.as_str()),
    )
    .inserted_id(conn)
    .await
    .map_err(|e| fk_or(e, || Error::not_found("host", unit.host)))?;
    Ok(Unit {
        id: UnitId(id),
        service,
        component: unit.component,
        host: unit.host,
        state,
        health: None,
        applied_version: None,
        applied_hash: None,
    })
}

/// [`Error::Conflict`] if unfinished jobs match `from_where` (a `FROM … WHERE …` over `jobs j`
/// with one `?` for `id`), naming them and `what` they use.
async fn refuse_in_unfinished_jobs(
    conn: &mut AnyConnection,
    what: &str,
    from_where: &str,
    id: i64,
) -> Result<()> {
    let [a, b, c] = [JobState::Succeeded, JobState::Failed, JobState::Canceled].map(|s| s.as_str());
    let sql =
        format!("SELECT DISTINCT j.id {from_where} AND j.state NOT IN (?, ?, ?) ORDER BY j.id");
    let jobs: Vec<i64> = query(&sql, (id, a, b, c)).values(conn).await?;
    match jobs.first() {
        None => Ok(()),
        Some(first) => {
            let list: Vec<String> = jobs.iter().map(i64::to_string).collect();
            Err(Error::Conflict(format!(
                "{what} is in unfinished job(s) {}; wait for them to finish or cancel them \
                 (bigmgr job cancel {first}) first",
                list.join(", ")
            )))
        }
    }
}

#[async_trait]
impl ServiceStore for SqlStore {
    async fn add_service(
        &self,
        service: NewService,
        units: Vec<NewUnit>,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        let mut tx = self.begin_write().await?;
        let instance: ServiceInstance = insert(
            &mut *tx,
            "INSERT INTO services (cluster, name, stack, stack_version, service, created_at, \
               configs, host_overrides, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                service.cluster.0,
                &service.name,
                &service.stack,
                &service.stack_version,
                &service.service,
                now_ms(),
                map_json(&service.configs)?,
                map_json(&service.host_overrides)?,
            ),
            |e| {
                insert_err(e, "service", &service.name, || {
                    Error::not_found("cluster", service.cluster)
                })
            },
        )
        .await?;
        configs::insert_version(
            &mut tx,
            &ConfigVersion {
                service: instance.id,
                version: 1,
                author: service.author,
                created_at: instance.created_at,
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
        let from = "FROM services WHERE cluster = ? AND name = ? AND removed_at IS NULL";
        select_one(&self.pool, from, (cluster.0, name)).await
    }

    async fn list_services(&self, cluster: ClusterId) -> Result<Vec<ServiceInstance>> {
        let from = "FROM services WHERE cluster = ? AND removed_at IS NULL ORDER BY id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn list_units(&self, cluster: ClusterId) -> Result<Vec<Unit>> {
        let from = "FROM units u JOIN services s ON s.id = u.service \
                    WHERE s.cluster = ? AND s.removed_at IS NULL AND u.removed_at IS NULL \
                    ORDER BY u.id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn remove_service(&self, id: ServiceId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (name, cluster): (String, String) = query(
            "SELECT s.name, c.name FROM services s \
             JOIN clusters c ON c.id = s.cluster WHERE s.id = ? AND s.removed_at IS NULL",
            (id.0,),
        )
        .found_row(&mut *tx, "service", id)
        .await?;
        let started: i64 = query(
            "SELECT COUNT(*) FROM units WHERE service = ? AND state = ? AND removed_at IS NULL",
            (id.0, UnitState::Started.as_str()),
        )
        .value(&mut *tx)
        .await?
        .unwrap_or_default();
        if started > 0 {
            return Err(Error::Conflict(format!(
                "service '{name}' has {started} started unit(s); stop it first: \
                 bigmgr job run {cluster} stop --service {name}"
            )));
        }
        refuse_in_unfinished_jobs(
            &mut tx,
            &format!("service '{name}'"),
            "FROM jobs j JOIN stages st ON st.job = j.id WHERE st.service = ?",
            id.0,
        )
        .await?;
        // Its units and relations go with it (softly: tasks and events keep referring to them).
        let at = now_ms();
        for sql in [
            "UPDATE services SET removed_at = ?1, name = name || '#' || id WHERE id = ?2",
            "UPDATE units SET removed_at = ?1 WHERE service = ?2 AND removed_at IS NULL",
            "UPDATE relations SET removed_at = ?1 \
             WHERE (requirer = ?2 OR provider = ?2) AND removed_at IS NULL",
        ] {
            query(sql, (at, id.0)).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    async fn add_units(&self, service: ServiceId, units: Vec<NewUnit>) -> Result<Vec<Unit>> {
        let mut tx = self.begin_write().await?;
        let cluster: i64 = query(
            "SELECT cluster FROM services WHERE id = ? AND removed_at IS NULL",
            (service.0,),
        )
        .found_value(&mut *tx, "service", service)
        .await?;
        let mut placed = Vec::with_capacity(units.len());
        for unit in units {
            let (host, host_cluster): (String, i64) = query(
                "SELECT name, cluster FROM hosts WHERE id = ? AND removed_at IS NULL",
                (unit.host.0,),
            )
            .found_row(&mut *tx, "host", unit.host)
            .await?;
            if host_cluster != cluster {
                return Err(Error::Invalid(format!(
                    "host '{host}' is not in the service instance's cluster"
                )));
            }
            // Units added before in this call count too.
            let taken: i64 = query(
                "SELECT COUNT(*) FROM units \
                 WHERE service = ? AND component = ? AND host = ? AND removed_at IS NULL",
                (service.0, &unit.component, unit.host.0),
            )
            .value(&mut *tx)
            .await?
            .unwrap_or_default();
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
        let mut tx = self.begin_write().await?;
        let (component, state, host, service, cluster): (String, String, String, String, String) =
            query(
                "SELECT u.component, u.state, h.name, s.name, c.name \
                 FROM units u JOIN services s ON s.id = u.service JOIN hosts h ON h.id = u.host \
                 JOIN clusters c ON c.id = s.cluster \
                 WHERE u.id = ? AND u.removed_at IS NULL AND s.removed_at IS NULL",
                (id.0,),
            )
            .found_row(&mut *tx, "unit", id)
            .await?;
        let what = format!("unit {id} ({service}/{component} on {host})");
        let state: UnitState = state.parse().map_err(|e| corrupt("state", e))?;
        if state == UnitState::Started {
            return Err(Error::Conflict(format!(
                "{what} is started; stop it first: bigmgr job run {cluster} stop --units {id}"
            )));
        }
        refuse_in_unfinished_jobs(
            &mut tx,
            &what,
            "FROM jobs j JOIN tasks t ON t.job = j.id WHERE t.unit = ?",
            id.0,
        )
        .await?;
        query(
            "UPDATE units SET removed_at = ? WHERE id = ?",
            (now_ms(), id.0),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
