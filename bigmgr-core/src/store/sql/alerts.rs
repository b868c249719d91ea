//! The [`AlertStore`] of [`SqlStore`]: alerts and their changes.

use super::batch::with_values;
use super::{SqlStore, built, fk_or, found, insert_err, query, read_all, select, select_all, text};
use crate::model::*;
use crate::store::{AlertStore, NotifyBody};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};

/// Alerts per multi-row `UPDATE` of their text and check time (3 binds a row).
const CHECKED_CHUNK: usize = 1000;

/// Queues a notification (body, created, due) for every target of a cluster.
const QUEUE_NOTIFICATIONS: &str = "INSERT INTO notifications (target, body, created_at, attempts, next_at) \
     SELECT id, ?, ?, 0, ? FROM alert_targets WHERE cluster = ? ORDER BY id";

#[async_trait]
impl AlertStore for SqlStore {
    async fn report_alerts(
        &self,
        reports: &[AlertReport],
        notify: Option<&NotifyBody<'_>>,
    ) -> Result<Vec<AlertChange>> {
        let mut tx = self.begin_write().await?;
        // Every alert of the reported clusters, read at once: a round reports every host and
        // unit, and a statement or two for each would hold the write lock (and every job's
        // progress with it) for a second or more on a large cluster.
        let mut known: HashMap<(String, String), (i64, AlertState)> = HashMap::new();
        let clusters: BTreeSet<ClusterId> = reports.iter().map(|r| r.subject.cluster).collect();
        for cluster in clusters {
            let rows: Vec<(i64, String, String, String)> = query(
                "SELECT id, definition, subject, state FROM alerts WHERE cluster = ?",
                (cluster.0,),
            )
            .rows(&mut *tx)
            .await?;
            for (id, definition, subject, state) in rows {
                known.insert((definition, subject), (id, state.parse()?));
            }
        }
        // Reports that change nothing but the text and when it was checked, by alert (the last
        // one wins); written together at the end.
        let mut checked: HashMap<i64, (String, i64)> = HashMap::new();
        let mut changes = Vec::new();
        for r in reports {
            let key = (r.definition.clone(), r.subject.key());
            let said = text(&r.text).into_owned();
            let s = &r.subject;
            let (id, from) = match known.get(&key) {
                Some(&known) => known,
                None => {
                    let id = query(
                        "INSERT INTO alerts (definition, subject, cluster, host, service, unit, \
                         state, text, since, checked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id",
                        (
                            &r.definition,
                            &key.1,
                            s.cluster.0,
                            s.host.map(|h| h.0),
                            s.service.map(|v| v.0),
                            s.unit.map(|u| u.0),
                            AlertState::Ok.as_str(),
                            &said,
                            r.at,
                        ),
                    )
                    .inserted_id(&mut *tx)
                    .await
                    .map_err(|e| {
                        fk_or(e, || {
                            Error::not_found("cluster, host, service or unit of an alert", &key.1)
                        })
                    })?;
                    (id, AlertState::Ok)
                }
            };
            known.insert(key, (id, r.state));
            if from == r.state {
                checked.insert(id, (said, r.at));
                continue;
            }
            // Written now, so an earlier report's text must not overwrite this one's.
            checked.remove(&id);
            query(
                "UPDATE alerts SET state = ?, text = ?, since = ?, checked_at = ? WHERE id = ?",
                (r.state.as_str(), &said, r.at, r.at, id),
            )
            .execute(&mut *tx)
            .await?;
            let change = query(
                "INSERT INTO alert_changes (alert, cluster, from_state, to_state, text, at) \
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    id,
                    s.cluster.0,
                    from.as_str(),
                    r.state.as_str(),
                    &said,
                    r.at,
                ),
            )
            .inserted_id(&mut *tx)
            .await?;
            changes.push(AlertChange {
                id: AlertChangeId(change),
                alert: AlertId(id),
                definition: r.definition.clone(),
                subject: *s,
                from,
                to: r.state,
                text: said,
                at: r.at,
            });
        }
        let checked: Vec<(i64, (String, i64))> = checked.into_iter().collect();
        for chunk in checked.chunks(CHECKED_CHUNK) {
            let mut qb = with_values(
                "c(id, said, checked)",
                chunk,
                |mut row, (id, (said, at))| {
                    row.push_bind(*id).push_bind(said.as_str()).push_bind(*at);
                },
            );
            qb.push(
                "UPDATE alerts SET text = c.said, checked_at = c.checked FROM c WHERE alerts.id = c.id",
            );
            built(&mut qb).execute(&mut *tx).await?;
        }
        if let Some(body) = notify {
            let mut by_cluster: std::collections::BTreeMap<ClusterId, Vec<AlertChange>> =
                std::collections::BTreeMap::new();
            for ch in &changes {
                by_cluster
                    .entry(ch.subject.cluster)
                    .or_default()
                    .push(ch.clone());
            }
            for (cluster, group) in by_cluster {
                let Some(made) = body(cluster, &group)? else {
                    continue;
                };
                let at = group.last().map_or_else(now_ms, |c| c.at);
                query(QUEUE_NOTIFICATIONS, (made.as_str(), at, at, cluster.0))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut qb = select::<Alert>("FROM alerts WHERE 1 = 1");
        if let Some(c) = filter.cluster {
            qb.push(" AND cluster = ").push_bind(c.0);
        }
        if let Some(h) = filter.host {
            qb.push(" AND host = ").push_bind(h.0);
        }
        if let Some(s) = filter.service {
            qb.push(" AND service = ").push_bind(s.0);
        }
        if let Some(u) = filter.unit {
            qb.push(" AND unit = ").push_bind(u.0);
        }
        if filter.firing {
            qb.push(" AND state <> ").push_bind(AlertState::Ok.as_str());
        }
        qb.push(" ORDER BY id");
        read_all(&self.pool, &mut qb).await
    }

    async fn alert_history(
        &self,
        cluster: ClusterId,
        alert: Option<AlertId>,
        after: Option<AlertChangeId>,
        limit: Option<u32>,
    ) -> Result<Vec<AlertChange>> {
        let mut qb = select::<AlertChange>(
            "FROM alert_changes c JOIN alerts a ON a.id = c.alert WHERE c.cluster = ",
        );
        qb.push_bind(cluster.0);
        if let Some(a) = alert {
            qb.push(" AND c.alert = ").push_bind(a.0);
        }
        if let Some(after) = after {
            qb.push(" AND c.id > ").push_bind(after.0);
        }
        qb.push(" ORDER BY c.id");
        if let Some(limit) = limit {
            qb.push(" LIMIT ").push_bind(i64::from(limit));
        }
        built(&mut qb).records(&self.pool).await
    }

    async fn add_alert_target(
        &self,
        cluster: ClusterId,
        name: &str,
        kind: TargetKind,
        url: &str,
    ) -> Result<AlertTarget> {
        self.write_insert(
            "INSERT INTO alert_targets (cluster, name, kind, url, created_at) \
             VALUES (?, ?, ?, ?, ?)",
            (cluster.0, name, kind.as_str(), url, now_ms()),
            |e| {
                insert_err(e, "alert target", name, || {
                    Error::not_found("cluster", cluster)
                })
            },
        )
        .await
    }

    async fn alert_targets(&self, cluster: ClusterId) -> Result<Vec<AlertTarget>> {
        let from = "FROM alert_targets WHERE cluster = ? ORDER BY id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn remove_alert_target(&self, id: AlertTargetId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM delivery_attempts WHERE notification IN \
               (SELECT id FROM notifications WHERE target = ?1)",
            "DELETE FROM notifications WHERE target = ?1",
        ] {
            query(sql, (id.0,)).execute(&mut *tx).await?;
        }
        let res = query("DELETE FROM alert_targets WHERE id = ?", (id.0,))
            .execute(&mut *tx)
            .await?;
        found(&res, "alert target", id)?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_notifications(&self, cluster: ClusterId, body: &str, at: i64) -> Result<u32> {
        let mut tx = self.begin_write().await?;
        let res = query(QUEUE_NOTIFICATIONS, (body, at, at, cluster.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(u32::try_from(res.rows_affected()).unwrap_or(u32::MAX))
    }

    async fn due_notifications(&self, now: i64, limit: u32) -> Result<Vec<Notification>> {
        select_all(
            &self.pool,
            "FROM notifications n JOIN alert_targets t ON t.id = n.target \
             WHERE n.delivered_at IS NULL AND n.next_at <= ? \
               AND NOT EXISTS (SELECT 1 FROM notifications o WHERE o.target = n.target \
                               AND o.delivered_at IS NULL AND o.id < n.id) \
             ORDER BY n.id LIMIT ?",
            (now, i64::from(limit)),
        )
        .await
    }

    async fn record_delivery(
        &self,
        id: NotificationId,
        at: i64,
        status: Option<u16>,
        answer: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let res = match retry_at {
            None => query(
                "UPDATE notifications SET attempts = attempts + 1, delivered_at = ? \
                 WHERE id = ? AND delivered_at IS NULL",
                (at, id.0),
            ),
            Some(next) => query(
                "UPDATE notifications SET attempts = attempts + 1, next_at = ? \
                 WHERE id = ? AND delivered_at IS NULL",
                (next, id.0),
            ),
        }
        .execute(&mut *tx)
        .await?;
        found(&res, "undelivered notification", id)?;
        query(
            "INSERT INTO delivery_attempts (notification, at, status, answer) VALUES (?, ?, ?, ?)",
            (id.0, at, status.map(i64::from), text(answer).into_owned()),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delivery_log(&self, cluster: ClusterId, limit: u32) -> Result<Vec<DeliveryAttempt>> {
        let rows: Vec<(i64, String, i64, Option<i64>, String)> = query(
            "SELECT d.notification, t.name, d.at, d.status, d.answer \
             FROM delivery_attempts d JOIN notifications n ON n.id = d.notification \
             JOIN alert_targets t ON t.id = n.target \
             WHERE t.cluster = ? ORDER BY d.id DESC LIMIT ?",
            (cluster.0, i64::from(limit)),
        )
        .rows(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(n, target, at, status, answer)| DeliveryAttempt {
                notification: NotificationId(n),
                target,
                at,
                status: status.and_then(|s| u16::try_from(s).ok()),
                answer,
            })
            .collect())
    }

    async fn add_maintenance(&self, w: &Maintenance) -> Result<Maintenance> {
        let mut tx = self.begin_write().await?;
        let belongs: Option<i64> =
            match (w.host, w.service) {
                (Some(h), None) => {
                    query(
                        "SELECT id FROM hosts WHERE id = ? AND cluster = ? AND removed_at IS NULL",
                        (h.0, w.cluster.0),
                    )
                    .value(&mut *tx)
                    .await?
                }
                (None, Some(s)) => query(
                    "SELECT id FROM services WHERE id = ? AND cluster = ? AND removed_at IS NULL",
                    (s.0, w.cluster.0),
                )
                .value(&mut *tx)
                .await?,
                _ => {
                    return Err(Error::Invalid(
                        "a maintenance window is about one host or one service".into(),
                    ));
                }
            };
        if belongs.is_none() {
            return Err(Error::not_found(
                "host or service of the cluster",
                w.host
                    .map_or_else(|| w.service.map(|s| s.0).unwrap_or_default(), |h| h.0),
            ));
        }
        let created_at = now_ms();
        let reason = text(&w.reason).into_owned();
        let id = query(
            "INSERT INTO maintenance (cluster, host, service, until, reason, by_actor, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                w.cluster.0,
                w.host.map(|h| h.0),
                w.service.map(|s| s.0),
                w.until,
                &reason,
                &w.by,
                created_at,
            ),
        )
        .inserted_id(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Maintenance {
            id: MaintenanceId(id),
            reason,
            created_at,
            ..w.clone()
        })
    }

    async fn maintenance(&self, cluster: Option<ClusterId>, now: i64) -> Result<Vec<Maintenance>> {
        let mut qb = select::<Maintenance>("FROM maintenance WHERE until > ");
        qb.push_bind(now);
        if let Some(c) = cluster {
            qb.push(" AND cluster = ").push_bind(c.0);
        }
        qb.push(" ORDER BY id");
        read_all(&self.pool, &mut qb).await
    }

    async fn end_maintenance(&self, id: MaintenanceId, now: i64) -> Result<Maintenance> {
        let mut tx = self.begin_write().await?;
        let res = query(
            "UPDATE maintenance SET until = ? WHERE id = ? AND until > ?",
            (now, id.0, now),
        )
        .execute(&mut *tx)
        .await?;
        found(&res, "maintenance window in progress", id)?;
        let mut qb = select::<Maintenance>("FROM maintenance WHERE id = ");
        qb.push_bind(id.0);
        let ended = read_all(&mut *tx, &mut qb)
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("maintenance window", id))?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn add_alert_override(
        &self,
        cluster: ClusterId,
        definition: &str,
        settings: &str,
        author: &str,
    ) -> Result<u32> {
        let mut tx = self.begin_write().await?;
        let top: Option<i64> = query(
            "SELECT COALESCE(MAX(version), 0) FROM alert_overrides \
             WHERE cluster = ? AND definition = ?",
            (cluster.0, definition),
        )
        .value(&mut *tx)
        .await?;
        let version = top.unwrap_or(0) + 1;
        query(
            "INSERT INTO alert_overrides (cluster, definition, version, settings, author, \
             created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (cluster.0, definition, version, settings, author, now_ms()),
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| fk_or(e, || Error::not_found("cluster", cluster)))?;
        tx.commit().await?;
        Ok(u32::try_from(version).unwrap_or(u32::MAX))
    }

    async fn alert_overrides(
        &self,
        cluster: ClusterId,
    ) -> Result<Vec<(String, u32, String, String, i64)>> {
        let rows: Vec<(String, i64, String, String, i64)> = query(
            "SELECT o.definition, o.version, o.settings, o.author, o.created_at \
             FROM alert_overrides o WHERE o.cluster = ? AND o.version = \
               (SELECT MAX(x.version) FROM alert_overrides x \
                WHERE x.cluster = o.cluster AND x.definition = o.definition) \
             ORDER BY o.definition",
            (cluster.0,),
        )
        .rows(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(d, v, s, a, t)| (d, u32::try_from(v).unwrap_or(0), s, a, t))
            .collect())
    }

    async fn check_results(&self, cluster: ClusterId) -> Result<Vec<(UnitId, CheckResult)>> {
        let rows: Vec<(i64, String)> = query(
            "SELECT k.unit, k.result FROM unit_checks k JOIN units u ON u.id = k.unit \
               JOIN services s ON s.id = u.service \
             WHERE s.cluster = ? AND u.removed_at IS NULL ORDER BY k.unit, k.name",
            (cluster.0,),
        )
        .rows(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(unit, json)| {
                serde_json::from_str(&json)
                    .map(|r| (UnitId(unit), r))
                    .map_err(|e| Error::Store(format!("a check result that is not one: {e}")))
            })
            .collect()
    }

    async fn healing_policy(&self, service: ServiceId) -> Result<HealingPolicy> {
        let row: Option<(i64, i64, i64)> = query(
            "SELECT heal_restart, heal_grace_ms, heal_max_per_hour FROM service_policies \
             WHERE service = ?",
            (service.0,),
        )
        .row(&self.pool)
        .await?;
        Ok(row.map_or_else(HealingPolicy::default, policy_of))
    }

    async fn set_healing_policy(&self, service: ServiceId, p: &HealingPolicy) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let live: Option<i64> = query(
            "SELECT id FROM services WHERE id = ? AND removed_at IS NULL",
            (service.0,),
        )
        .value(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(Error::not_found("service", service));
        }
        query(
            "INSERT INTO service_policies \
               (service, heal_restart, heal_grace_ms, heal_max_per_hour, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (service) DO UPDATE SET heal_restart = EXCLUDED.heal_restart, \
               heal_grace_ms = EXCLUDED.heal_grace_ms, \
               heal_max_per_hour = EXCLUDED.heal_max_per_hour, updated_at = EXCLUDED.updated_at",
            (
                service.0,
                i64::from(p.restart),
                p.grace_ms,
                i64::from(p.max_per_hour),
                now_ms(),
            ),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn healing_services(
        &self,
        cluster: ClusterId,
    ) -> Result<Vec<(ServiceId, HealingPolicy)>> {
        let rows: Vec<(i64, i64, i64, i64)> = query(
            "SELECT p.service, p.heal_restart, p.heal_grace_ms, p.heal_max_per_hour \
             FROM service_policies p JOIN services s ON s.id = p.service \
             WHERE s.cluster = ? AND s.removed_at IS NULL AND p.heal_restart <> 0 \
             ORDER BY p.service",
            (cluster.0,),
        )
        .rows(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(s, r, g, m)| (ServiceId(s), policy_of((r, g, m))))
            .collect())
    }
}

/// A policy from its columns (restart flag, grace, attempts per hour).
fn policy_of((restart, grace_ms, max): (i64, i64, i64)) -> HealingPolicy {
    HealingPolicy {
        restart: restart != 0,
        grace_ms,
        max_per_hour: u32::try_from(max).unwrap_or(0),
    }
}
