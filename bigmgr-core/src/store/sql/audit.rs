//! The [`AuditStore`] of [`SqlStore`]: the audit log (a table of migration 0003).

use super::{SqlStore, text_state};
use crate::Result;
use crate::model::*;
use crate::store::AuditStore;
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

const AUDIT_COLS: &str = "id, at, actor, action, target, outcome, detail";

fn audit_row(row: &SqliteRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: AuditId(row.try_get("id")?),
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: text_state(row, "outcome")?,
        detail: row.try_get("detail")?,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "INSERT INTO audit (at, actor, action, target, outcome, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.target)
        .bind(event.outcome.as_str())
        .bind(&event.detail)
        .execute(&self.pool)
        .await?;
        Ok(AuditEvent {
            id: AuditId(res.last_insert_rowid()),
            at: event.at,
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            outcome: event.outcome,
            detail: event.detail.clone(),
        })
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {AUDIT_COLS} FROM audit WHERE 1 = 1"));
        if let Some(after) = filter.after {
            qb.push(" AND id > ").push_bind(after.0);
        }
        if let Some(actor) = &filter.actor {
            qb.push(" AND actor = ").push_bind(actor.as_str());
        }
        qb.push(" ORDER BY id");
        if let Some(limit) = filter.limit {
            qb.push(" LIMIT ").push_bind(i64::from(limit));
        }
        qb.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_row)
            .collect()
    }
}
