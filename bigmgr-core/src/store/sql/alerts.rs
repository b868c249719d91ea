//! The [`AlertStore`] of [`SqlStore`]: alerts and their changes.

use super::batch::with_values;
use super::{SqlStore, built, fk_or, found, insert_err, query, read_all, select, select_all, text};
use crate::model::*;
use crate::store::{ALERT_CHECK_REFRESH_MS, AlertStore, NotifyBody};
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::QueryBuilder;
use std::collections::{BTreeSet, HashMap};

/// Alerts per multi-row `UPDATE` of their state or text and check time (at most 4 binds a
/// row).
const CHECKED_CHUNK: usize = 1000;
/// Rows per multi-row `INSERT` of alerts or their changes (at most 10 binds a row).
const INSERT_CHUNK: usize = 500;

/// An alert as the reports of one round found it so far.
struct Seen<'a> {
    id: i64,
    state: AlertState,
    text: &'a str,
    checked_at: i64,
}

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
        // Every alert of the reported clusters, read at once, and every write below in
        // multi-row statements: a round reports every host and unit, and a statement or two for
        // each would hold the write lock (and every job's progress with it) for seconds on a
        // large cluster (21 000 new alerts took 2.9 s on PostgreSQL one by one).
        let mut known: HashMap<(&str, &str), Seen<'_>> = HashMap::new();
        let clusters: BTreeSet<ClusterId> = reports.iter().map(|r| r.subject.cluster).collect();
        let mut stored: Vec<(i64, String, String, String, String, i64)> = Vec::new();
        for cluster in clusters {
            stored.extend(
                query(
                    "SELECT id, definition, subject, state, text, checked_at FROM alerts \
                     WHERE cluster = ?",
                    (cluster.0,),
                )
                .rows::<(i64, String, String, String, String, i64)>(&mut *tx)
                .await?,
            );
        }
        for (id, definition, subject, state, text, checked_at) in &stored {
            let seen = Seen {
                id: *id,
                state: state.parse()?,
                text,
                checked_at: *checked_at,
            };
            known.insert((definition, subject), seen);
        }
        let keys: Vec<String> = reports.iter().map(|r| r.subject.key()).collect();
        let said: Vec<String> = reports.iter().map(|r| text(&r.text).into_owned()).collect();

        // Alerts reported for the first time are created OK, with their first report's text
        // and time; a report that is not OK is then a change from OK, as any other.
        let mut first: Vec<usize> = Vec::new();
        let mut queued: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, r) in reports.iter().enumerate() {
            let key = (r.definition.as_str(), keys[i].as_str());
            if !known.contains_key(&key) && !queued.contains_key(&key) {
                queued.insert(key, i);
                first.push(i);
            }
        }
        let mut created: Vec<(i64, String, String)> = Vec::with_capacity(first.len());
        for chunk in first.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO alerts (definition, subject, cluster, host, service, unit, state, \
                 text, since, checked_at) ",
            );
            qb.push_values(chunk, |mut row, &i| {
                let (r, s) = (&reports[i], &reports[i].subject);
                row.push_bind(r.definition.as_str())
                    .push_bind(keys[i].as_str())
                    .push_bind(s.cluster.0)
                    .push_bind(s.host.map(|h| h.0))
                    .push_bind(s.service.map(|v| v.0))
                    .push_bind(s.unit.map(|u| u.0))
                    .push_bind(AlertState::Ok.as_str())
                    .push_bind(said[i].as_str())
                    .push_bind(r.at)
                    .push_bind(r.at);
            });
            qb.push(" RETURNING id, definition, subject");
            let rows: Vec<(i64, String, String)> =
                built(&mut qb).returning(&mut *tx).await.map_err(|e| {
                    fk_or(e, || {
                        let named: Vec<&str> =
                            chunk.iter().take(3).map(|&i| keys[i].as_str()).collect();
                        Error::not_found(
                            "cluster, host, service or unit of an alert",
                            format!("(one of {} subjects: {}, …)", chunk.len(), named.join(", ")),
                        )
                    })
                })?;
            created.extend(rows);
        }
        for (id, definition, subject) in &created {
            let Some(&i) = queued.get(&(definition.as_str(), subject.as_str())) else {
                return Err(Error::Store(format!(
                    "alert {definition} {subject} was created unasked"
                )));
            };
            let seen = Seen {
                id: *id,
                state: AlertState::Ok,
                text: &said[i],
                checked_at: reports[i].at,
            };
            known.insert((definition, subject), seen);
        }

        // Each report in order against the alert as the reports before it left it: a change;
        // a refresh of the text and check time when the text is new or the check time is due
        // (the last one of an alert wins, and a change drops the refreshes before it); or
        // nothing.
        let mut checked: HashMap<i64, (&str, i64)> = HashMap::new();
        let mut moved: Vec<(i64, usize, AlertState)> = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            let key = (r.definition.as_str(), keys[i].as_str());
            let Some(seen) = known.get_mut(&key) else {
                return Err(Error::Store(format!(
                    "alert {} {} was not created",
                    key.0, key.1
                )));
            };
            let (id, from) = (seen.id, seen.state);
            if from == r.state {
                if seen.text != said[i]
                    || r.at.saturating_sub(seen.checked_at) >= ALERT_CHECK_REFRESH_MS
                {
                    checked.insert(id, (said[i].as_str(), r.at));
                    (seen.text, seen.checked_at) = (&said[i], r.at);
                }
                continue;
            }
            *seen = Seen {
                id,
                state: r.state,
                text: &said[i],
                checked_at: r.at,
            };
            checked.remove(&id);
            moved.push((id, i, from));
        }
        // The alerts that changed, each as its last change left it; then the refreshes that
        // came after it.
        let last: HashMap<i64, usize> = moved.iter().map(|&(id, i, _)| (id, i)).collect();
        let last: Vec<(i64, usize)> = last.into_iter().collect();
        for chunk in last.chunks(CHECKED_CHUNK) {
            let mut qb = with_values("c(id, state, said, at)", chunk, |mut row, &(id, i)| {
                row.push_bind(id)
                    .push_bind(reports[i].state.as_str())
                    .push_bind(said[i].as_str())
                    .push_bind(reports[i].at);
            });
            qb.push(
                "UPDATE alerts SET state = c.state, text = c.said, since = c.at, \
                 checked_at = c.at FROM c WHERE alerts.id = c.id",
            );
            built(&mut qb).execute(&mut *tx).await?;
        }
        let checked: Vec<(i64, (&str, i64))> = checked.into_iter().collect();
        for chunk in checked.chunks(CHECKED_CHUNK) {
            let mut qb = with_values(
                "c(id, said, checked)",
                chunk,
                |mut row, &(id, (said, at))| {
                    row.push_bind(id).push_bind(said).push_bind(at);
                },
            );
            qb.push(
                "UPDATE alerts SET text = c.said, checked_at = c.checked FROM c WHERE alerts.id = c.id",
            );
            built(&mut qb).execute(&mut *tx).await?;
        }
        // The history, in report order. The rows of one INSERT get their ids in the order of
        // its VALUES, so the returned ids, sorted, are the changes' ids in that order.
        let mut changes = Vec::with_capacity(moved.len());
        for chunk in moved.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO alert_changes (alert, cluster, from_state, to_state, text, at) ",
            );
            qb.push_values(chunk, |mut row, &(id, i, from)| {
                let r = &reports[i];
                row.push_bind(id)
                    .push_bind(r.subject.cluster.0)
                    .push_bind(from.as_str())
                    .push_bind(r.state.as_str())
                    .push_bind(said[i].as_str())
                    .push_bind(r.at);
            });
            qb.push(" RETURNING id");
            let mut ids: Vec<i64> = built(&mut qb)
                .returning::<(i64,)>(&mut *tx)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
            ids.sort_unstable();
            if ids.len() != chunk.len() {
                return Err(Error::Store(format!(
                    "{} alert changes stored of {}",
                    ids.len(),
                    chunk.len()
                )));
            }
            for (&(alert, i, from), change) in chunk.iter().zip(ids) {
                let r = &reports[i];
                changes.push(AlertChange {
                    id: AlertChangeId(change),
                    alert: AlertId(alert),
                    definition: r.definition.clone(),
                    subject: r.subject,
                    from,
                    to: r.state,
                    text: said[i].clone(),
                    at: r.at,
                });
            }
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
