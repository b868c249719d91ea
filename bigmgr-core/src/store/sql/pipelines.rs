//! The [`PipelineStore`] of [`SqlStore`]: pipelines by name per cluster, and their state.

use super::{SqlStore, WriteTx, insert_err, query, select_all, select_one};
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
        from: &[PipelineState],
        to: PipelineState,
        message: Option<&str>,
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
        if !from.iter().any(|f| f.as_str() == state) {
            return Ok(false);
        }
        query(
            "UPDATE pipelines SET state = ?, message = ? WHERE id = ?",
            (to.as_str(), message, id.0),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_pipeline_replicas(
        &self,
        id: PipelineId,
        replicas: &std::collections::BTreeMap<String, u32>,
    ) -> Result<()> {
        let json = super::rows::to_json(replicas)?;
        let res = self
            .write(
                "UPDATE pipelines SET replicas = ? WHERE id = ? AND removed_at IS NULL",
                (json, id.0),
            )
            .await?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found("pipeline", id));
        }
        Ok(())
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
        if matches!(
            state,
            PipelineState::Running | PipelineState::Paused | PipelineState::Draining
        ) {
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

    async fn receive_batches(&self, pipeline: PipelineId, batches: &[NewBatch]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        live_pipeline(&mut tx, pipeline).await?;
        let new = record_batches(&mut tx, pipeline, batches).await?;
        tx.commit().await?;
        Ok(new)
    }

    async fn lease_batch(
        &self,
        pipeline: PipelineId,
        node: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<PipelineBatch>> {
        let mut tx = self.begin_write().await?;
        let waiting: Vec<(String,)> = query(
            "SELECT batch FROM pipeline_batches WHERE pipeline = ? AND node = ? \
               AND state = 'RECEIVED' AND (lease_until IS NULL OR lease_until < ?) \
             ORDER BY created_at, batch LIMIT 8",
            (pipeline.0, node, now),
        )
        .rows(&mut *tx)
        .await?;
        for (batch,) in waiting {
            // Compare-and-set: taken only if no live lease holds it now.
            let taken = query(
                "UPDATE pipeline_batches SET lease_holder = ?, lease_until = ?, \
                   attempts = attempts + 1, updated_at = ? \
                 WHERE pipeline = ? AND node = ? AND batch = ? AND state = 'RECEIVED' \
                   AND (lease_until IS NULL OR lease_until < ?)",
                (holder, until, now, pipeline.0, node, &batch, now),
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 1 {
                let from = "FROM pipeline_batches WHERE pipeline = ? AND node = ? AND batch = ?";
                let got: Option<PipelineBatch> =
                    select_one(&mut *tx, from, (pipeline.0, node, batch.as_str())).await?;
                tx.commit().await?;
                return Ok(got);
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn complete_batches(
        &self,
        pipeline: PipelineId,
        node: &str,
        batches: &[String],
        holder: &str,
        outputs: &[NewBatch],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        for batch in batches {
            let done = query(
                "UPDATE pipeline_batches SET state = 'PROCESSED', lease_holder = NULL, \
                   lease_until = NULL, updated_at = ? \
                 WHERE pipeline = ? AND node = ? AND batch = ? AND state = 'RECEIVED' \
                   AND lease_holder = ?",
                (now, pipeline.0, node, batch.as_str(), holder),
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                // Dropped uncommitted: nothing of it is written.
                return Ok(false);
            }
        }
        record_batches(&mut tx, pipeline, outputs).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn release_leases(&self, pipeline: PipelineId, holder: Option<&str>) -> Result<u64> {
        let res = match holder {
            Some(holder) => {
                self.write(
                    "UPDATE pipeline_batches SET lease_holder = NULL, lease_until = NULL, \
                       updated_at = ? \
                     WHERE pipeline = ? AND state = 'RECEIVED' AND lease_holder = ?",
                    (now_ms(), pipeline.0, holder),
                )
                .await?
            }
            None => {
                self.write(
                    "UPDATE pipeline_batches SET lease_holder = NULL, lease_until = NULL, \
                       updated_at = ? \
                     WHERE pipeline = ? AND state = 'RECEIVED' AND lease_holder IS NOT NULL",
                    (now_ms(), pipeline.0),
                )
                .await?
            }
        };
        Ok(res.rows_affected())
    }

    async fn clean_location(&self, pipeline: PipelineId, location: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let counts: Option<(i64, i64)> = query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'RECEIVED' THEN 1 ELSE 0 END), 0) \
             FROM pipeline_batches WHERE pipeline = ? AND location = ?",
            (pipeline.0, location),
        )
        .row(&mut *tx)
        .await?;
        let (all, waiting) = counts.unwrap_or((0, 0));
        if all == 0 || waiting > 0 {
            return Ok(false);
        }
        query(
            "UPDATE pipeline_batches SET state = 'CLEAN', updated_at = ? \
             WHERE pipeline = ? AND location = ? AND state = 'PROCESSED'",
            (now_ms(), pipeline.0, location),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn clean_batch(&self, pipeline: PipelineId, node: &str, batch: &str) -> Result<bool> {
        let res = self
            .write(
                "UPDATE pipeline_batches SET state = 'CLEAN', updated_at = ? \
                 WHERE pipeline = ? AND node = ? AND batch = ? AND state = 'PROCESSED'",
                (now_ms(), pipeline.0, node, batch),
            )
            .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn batches(
        &self,
        pipeline: PipelineId,
        node: Option<&str>,
    ) -> Result<Vec<PipelineBatch>> {
        match node {
            Some(node) => {
                let from = "FROM pipeline_batches WHERE pipeline = ? AND node = ? \
                            ORDER BY created_at, batch";
                select_all(&self.pool, from, (pipeline.0, node)).await
            }
            None => {
                let from = "FROM pipeline_batches WHERE pipeline = ? \
                            ORDER BY node, created_at, batch";
                select_all(&self.pool, from, (pipeline.0,)).await
            }
        }
    }

    async fn batch(
        &self,
        pipeline: PipelineId,
        node: &str,
        batch: &str,
    ) -> Result<Option<PipelineBatch>> {
        let from = "FROM pipeline_batches WHERE pipeline = ? AND node = ? AND batch = ?";
        select_one(&self.pool, from, (pipeline.0, node, batch)).await
    }

    async fn backlog(&self, pipeline: PipelineId, node: &str) -> Result<u64> {
        let n: Option<i64> = query(
            "SELECT COUNT(*) FROM pipeline_batches WHERE pipeline = ? AND node = ? \
               AND state = 'RECEIVED'",
            (pipeline.0, node),
        )
        .value(&self.pool)
        .await?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }
}

/// NotFound unless `pipeline` exists and is not removed.
async fn live_pipeline(tx: &mut WriteTx<'_>, pipeline: PipelineId) -> Result<()> {
    let found: Option<i64> = query(
        "SELECT id FROM pipelines WHERE id = ? AND removed_at IS NULL",
        (pipeline.0,),
    )
    .value(&mut **tx)
    .await?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::not_found("pipeline", pipeline))
}

/// Records `batches` RECEIVED at their nodes, each once; how many were new.
async fn record_batches(
    tx: &mut WriteTx<'_>,
    pipeline: PipelineId,
    batches: &[NewBatch],
) -> Result<u64> {
    let now = now_ms();
    let mut new = 0;
    for b in batches {
        new += query(
            "INSERT INTO pipeline_batches (pipeline, node, batch, state, location, attempts, \
               created_at, updated_at) VALUES (?, ?, ?, 'RECEIVED', ?, 0, ?, ?) \
             ON CONFLICT (pipeline, node, batch) DO NOTHING",
            (pipeline.0, &b.node, &b.batch, &b.location, now, now),
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(new)
}
