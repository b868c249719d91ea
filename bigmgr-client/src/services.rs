//! `/stacks` and `/clusters/{cluster}/services`: what can be deployed and the service
//! instances of a cluster.

use crate::http::in_cluster;
use crate::{Client, Result};
use bigmgr_core::manager::AddService;
use bigmgr_core::view::{ServiceView, StackView};

impl Client {
    /// Every stack version, by name then version.
    pub async fn stacks(&self) -> Result<Vec<StackView>> {
        self.list("/stacks").await
    }

    /// A cluster's service instances, by id.
    pub async fn services(&self, cluster: &str) -> Result<Vec<ServiceView>> {
        self.list(&in_cluster(cluster, "services")).await
    }

    /// One service instance.
    pub async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView> {
        self.get(&self.scope(cluster, name).path).await
    }

    /// Adds a service instance with its units.
    pub async fn add_service(&self, cluster: &str, req: &AddService) -> Result<ServiceView> {
        self.post(&in_cluster(cluster, "services"), req).await
    }

    /// Removes a service instance.
    pub async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&self.scope(cluster, name).path).await
    }
}
