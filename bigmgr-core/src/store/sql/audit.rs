//! The [`AuditStore`] of [`SqlStore`]: the audit log (a table of migration 0003).

use super::{SqlStore, page, read_all, select, text};
use crate::model::*;
use crate::store::AuditStore;
use crate::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent> {
        self.write_insert(
            "INSERT INTO audit (at, actor, action, target, outcome, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                event.at,
                text(&event.actor).into_owned(),
                text(&event.action).into_owned(),
                text(&event.target).into_owned(),
                event.outcome.as_str(),
                text(&event.detail).into_owned(),
            ),
            Error::from,
        )
        .await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut qb = select::<AuditEvent>("FROM audit WHERE 1 = 1");
        if let Some(actor) = &filter.actor {
            qb.push(" AND actor = ").push_bind(actor.as_str());
        }
        page(&mut qb, filter.after.map(|a| a.0), filter.limit);
        read_all(&self.pool, &mut qb).await
    }
}
