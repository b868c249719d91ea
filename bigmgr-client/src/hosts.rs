//! `/clusters/{cluster}/hosts`: hosts with their units.

use crate::http::in_cluster;
use crate::{Client, Result, seg};
use bigmgr_core::request::{AddHost, BootstrapHosts, UpdateHost};
use bigmgr_core::view::{HostView, JobView};

/// The path of host `name` of `cluster`.
fn host_path(cluster: &str, name: &str) -> String {
    in_cluster(cluster, &format!("hosts/{}", seg(name)))
}

impl Client {
    /// A cluster's hosts, by id.
    pub async fn hosts(&self, cluster: &str) -> Result<Vec<HostView>> {
        self.list(&in_cluster(cluster, "hosts")).await
    }

    /// One host.
    pub async fn host(&self, cluster: &str, name: &str) -> Result<HostView> {
        self.get(&host_path(cluster, name)).await
    }

    /// Adds a host ahead of its agent.
    pub async fn add_host(&self, cluster: &str, host: &AddHost) -> Result<HostView> {
        self.post(&in_cluster(cluster, "hosts"), host).await
    }

    /// Changes a host's address (accepts the one its agent reported).
    pub async fn set_host_address(
        &self,
        cluster: &str,
        name: &str,
        address: &str,
    ) -> Result<HostView> {
        let body = UpdateHost {
            address: address.to_string(),
        };
        let path = host_path(cluster, name);
        self.patch(&path, &body).await
    }

    /// Adds machines over SSH → the queued `bootstrap` job (one task per host).
    pub async fn bootstrap_hosts(&self, cluster: &str, req: &BootstrapHosts) -> Result<JobView> {
        self.post(&in_cluster(cluster, "hosts/bootstrap"), req)
            .await
    }

    /// Removes a host (refused while units are placed on it).
    pub async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&host_path(cluster, name)).await
    }
}
