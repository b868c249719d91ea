//! `/clusters`: clusters and their join tokens.

use crate::http::in_cluster;
use crate::{Client, Result, seg};
use bigmgr_core::request::CreateCluster;
use bigmgr_core::view::{ClusterView, JoinToken};

impl Client {
    /// Every cluster, by id.
    pub async fn clusters(&self) -> Result<Vec<ClusterView>> {
        self.list("/clusters").await
    }

    /// Creates a cluster.
    pub async fn create_cluster(&self, name: &str) -> Result<ClusterView> {
        self.post(
            "/clusters",
            &CreateCluster {
                name: name.to_string(),
            },
        )
        .await
    }

    /// One cluster.
    pub async fn cluster(&self, name: &str) -> Result<ClusterView> {
        self.get(&format!("/clusters/{}", seg(name))).await
    }

    /// Deletes a cluster (refused while it has hosts, services or jobs).
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        self.delete(&format!("/clusters/{}", seg(name))).await
    }

    /// A new join token for agents of the cluster (`bmj_…`), shown once.
    pub async fn create_join_token(&self, cluster: &str) -> Result<String> {
        let t: JoinToken = self
            .post(&in_cluster(cluster, "join-tokens"), &serde_json::json!({}))
            .await?;
        Ok(t.token)
    }
}
