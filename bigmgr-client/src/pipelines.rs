//! `/clusters/{cluster}/pipelines`: pipelines (docs/pipelines.md) — created, listed, read and
//! removed; started, paused, resumed, stopped and scaled; their status and run log; batches
//! pushed to their HTTP sources.

use crate::http::in_cluster;
use crate::{Client, Result, seg};
use bigmgr_core::request::{CreatePipeline, ScalePipeline};
use bigmgr_core::view::{PipelineLogLine, PipelineStatus, PipelineView, PushedBatch};
use serde::Deserialize;

/// The answer of `GET …/pipelines/{pipeline}/logs`.
#[derive(Deserialize)]
struct PipelineLogs {
    /// Oldest first.
    lines: Vec<PipelineLogLine>,
}

impl Client {
    /// A cluster's pipelines, oldest first.
    pub async fn pipelines(&self, cluster: &str) -> Result<Vec<PipelineView>> {
        self.list(&in_cluster(cluster, "pipelines")).await
    }

    /// One pipeline.
    pub async fn pipeline(&self, cluster: &str, name: &str) -> Result<PipelineView> {
        self.get(&pipeline_path(cluster, name, "")).await
    }

    /// Creates a pipeline from its definition (TOML), checked whole by the server.
    pub async fn create_pipeline(&self, cluster: &str, definition: &str) -> Result<PipelineView> {
        let body = CreatePipeline {
            definition: definition.to_string(),
        };
        self.post(&in_cluster(cluster, "pipelines"), &body).await
    }

    /// Removes a pipeline that is not running.
    pub async fn remove_pipeline(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&pipeline_path(cluster, name, "")).await
    }

    /// Starts a pipeline that is not running (CREATED, STOPPED, FAILED or FINISHED) → the
    /// pipeline, RUNNING; a 409 problem in another state.
    pub async fn start_pipeline(&self, cluster: &str, name: &str) -> Result<PipelineView> {
        self.control_pipeline(cluster, name, "/start").await
    }

    /// Pauses a running pipeline (no node takes a new batch) → the pipeline, PAUSED.
    pub async fn pause_pipeline(&self, cluster: &str, name: &str) -> Result<PipelineView> {
        self.control_pipeline(cluster, name, "/pause").await
    }

    /// Resumes a paused pipeline → the pipeline, RUNNING.
    pub async fn resume_pipeline(&self, cluster: &str, name: &str) -> Result<PipelineView> {
        self.control_pipeline(cluster, name, "/resume").await
    }

    /// Stops a running pipeline: drains it (DRAINING, then STOPPED once what its sources took
    /// is processed), or with `abort` stops it now (STOPPED) → the pipeline.
    pub async fn stop_pipeline(
        &self,
        cluster: &str,
        name: &str,
        abort: bool,
    ) -> Result<PipelineView> {
        let action = if abort { "/stop?abort=true" } else { "/stop" };
        self.control_pipeline(cluster, name, action).await
    }

    /// Scales a non-blocking unit to `req.replicas` (1 to 64), running or not → the pipeline
    /// with its units' replicas; a 422 problem for a blocking or unknown unit.
    pub async fn scale_pipeline(
        &self,
        cluster: &str,
        name: &str,
        req: &ScalePipeline,
    ) -> Result<PipelineView> {
        self.post(&pipeline_path(cluster, name, "/scale"), req)
            .await
    }

    /// A pipeline's graph and each node's batches waiting, leased and processed.
    pub async fn pipeline_status(&self, cluster: &str, name: &str) -> Result<PipelineStatus> {
        self.get(&pipeline_path(cluster, name, "/status")).await
    }

    /// The latest lines of a pipeline's run on the server, oldest first.
    pub async fn pipeline_logs(&self, cluster: &str, name: &str) -> Result<Vec<PipelineLogLine>> {
        let logs: PipelineLogs = self.get(&pipeline_path(cluster, name, "/logs")).await?;
        Ok(logs.lines)
    }

    /// Pushes `data` (the batch's one file) to HTTP source `source` of a running pipeline,
    /// named `batch` so that a retried push is recorded once (none: the server names it).
    /// A full channel or a host away is a 503 problem: retry later.
    pub async fn push_batch(
        &self,
        cluster: &str,
        name: &str,
        source: &str,
        batch: Option<&str>,
        data: Vec<u8>,
    ) -> Result<PushedBatch> {
        let mut rest = format!("/sources/{}/batches", seg(source));
        if let Some(b) = batch {
            rest.push_str(&format!("?batch={}", seg(b)));
        }
        let path = pipeline_path(cluster, name, &rest);
        let what = format!("POST {}{path}", crate::PREFIX);
        let req = self
            .request(reqwest::Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(data);
        let v = self.send(&what, req).await?;
        crate::http::decode(&what, v)
    }

    /// `POST …/pipelines/{name}<action>` with an empty body → the pipeline as it is after it.
    async fn control_pipeline(
        &self,
        cluster: &str,
        name: &str,
        action: &str,
    ) -> Result<PipelineView> {
        self.post(
            &pipeline_path(cluster, name, action),
            &serde_json::json!({}),
        )
        .await
    }
}

/// The path of pipeline `name` of `cluster`, then `rest` (empty, or `/<action>[?query]`).
fn pipeline_path(cluster: &str, name: &str, rest: &str) -> String {
    in_cluster(cluster, &format!("pipelines/{}{rest}", seg(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_paths_encode_the_names() {
        assert_eq!(
            pipeline_path("c 1", "p/q", "/stop?abort=true"),
            "/clusters/c%201/pipelines/p%2Fq/stop?abort=true"
        );
        assert_eq!(pipeline_path("c", "p", ""), "/clusters/c/pipelines/p");
    }
}
