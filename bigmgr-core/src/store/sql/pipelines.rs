//! The [`PipelineStore`] of [`SqlStore`]: pipelines by name per cluster, and their state.

use super::{SqlStore, insert_err, query, select_all, select_one};
use crate::model::*;
use crate::store::PipelineStore;
use crate::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl PipelineStore for SqlStore {
    async fn add_pipeline(&self, new: &NewPipeline) -> Result<Pipeline> {
        self.write_insert(
            "INSERT INTO pipelines (cluster, name, author, created_at, definition, state) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                new.cluster.0,
                &new.name,
                &new.author,
                now_ms(),
                &new.definition,
                PipelineState::Created.as_str(),
            ),
            |e| {
                insert_err(e, "pipeline", &new.name, || {
                    Error::not_found("cluster", new.cluster)
                })
            },
        )
        .await
    }

    async fn pipeline(&self, cluster: ClusterId, name: &str) -> Result<Option<Pipeline>> {
        let from = "FROM pipelines WHERE cluster = ? AND name = ? AND removed_at IS NULL";
        select_one(&self.pool, from, (cluster.0, name)).await
    }

    async fn list_pipelines(&self, cluster: ClusterId) -> Result<Vec<Pipeline>> {
        let from = "FROM pipelines WHERE cluster = ? AND removed_at IS NULL ORDER BY id";
        select_all(&self.pool, from, (cluster.0,)).await
    }

    async fn set_pipeline_state(
        &self,
        id: PipelineId,
        from: PipelineState,
        to: PipelineState,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let state: Option<(String,)> = query(
            "SELECT state FROM pipelines WHERE id = ? AND removed_at IS NULL",
            (id.0,),
        )
        .row(&mut *tx)
        .await?;
        let Some((state,)) = state else {
            return Err(Error::not_found("pipeline", id));
        };
        if state != from.as_str() {
            return Ok(false);
        }
        query(
            "UPDATE pipelines SET state = ? WHERE id = ?",
            (to.as_str(), id.0),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_pipeline(&self, id: PipelineId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let row: Option<(String, String)> = query(
            "SELECT name, state FROM pipelines WHERE id = ? AND removed_at IS NULL",
            (id.0,),
        )
        .row(&mut *tx)
        .await?;
        let Some((name, state)) = row else {
            return Err(Error::not_found("pipeline", id));
        };
        let state: PipelineState = state.parse()?;
        if !matches!(state, PipelineState::Created | PipelineState::Stopped) {
            return Err(Error::Conflict(format!(
                "pipeline '{name}' is {state}: stop it before removing it"
            )));
        }
        query(
            "UPDATE pipelines SET removed_at = ? WHERE id = ?",
            (now_ms(), id.0),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
