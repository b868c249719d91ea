//! `/clusters/{cluster}/pipelines`: pipelines (docs/pipelines.md).

use crate::http::in_cluster;
use crate::{Client, Result, seg};
use bigmgr_core::request::CreatePipeline;
use bigmgr_core::view::PipelineView;

impl Client {
    /// A cluster's pipelines, oldest first.
    pub async fn pipelines(&self, cluster: &str) -> Result<Vec<PipelineView>> {
        self.list(&in_cluster(cluster, "pipelines")).await
    }

    /// One pipeline.
    pub async fn pipeline(&self, cluster: &str, name: &str) -> Result<PipelineView> {
        self.get(&in_cluster(cluster, &format!("pipelines/{}", seg(name))))
            .await
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
        self.delete(&in_cluster(cluster, &format!("pipelines/{}", seg(name))))
            .await
    }
}
