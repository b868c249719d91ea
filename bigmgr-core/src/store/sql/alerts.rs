//! The [`AlertStore`] of [`SqlStore`]: alerts and their changes.

use super::{SqlStore, built, fk_or, query, read_all, select, text};
use crate::model::*;
use crate::store::AlertStore;
use crate::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AlertStore for SqlStore {
    async fn report_alerts(&self, reports: &[AlertReport]) -> Result<Vec<AlertChange>> {
        let mut tx = self.begin_write().await?;
        let mut changes = Vec::new();
        for r in reports {
            let key = r.subject.key();
            let said = text(&r.text).into_owned();
            let s = &r.subject;
            let known: Option<(i64, String)> = query(
                "SELECT id, state FROM alerts WHERE definition = ? AND subject = ?",
                (&r.definition, &key),
            )
            .row(&mut *tx)
            .await?;
            let (id, from) = match known {
                Some((id, state)) => (id, state.parse::<AlertState>()?),
                None => {
                    let id = query(
                        "INSERT INTO alerts (definition, subject, cluster, host, service, unit, \
                         state, text, since, checked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id",
                        (
                            &r.definition,
                            &key,
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
                            Error::not_found("cluster, host, service or unit of an alert", &key)
                        })
                    })?;
                    (id, AlertState::Ok)
                }
            };
            if from == r.state {
                query(
                    "UPDATE alerts SET text = ?, checked_at = ? WHERE id = ?",
                    (&said, r.at, id),
                )
                .execute(&mut *tx)
                .await?;
                continue;
            }
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
}
