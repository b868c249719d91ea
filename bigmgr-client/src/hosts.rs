//! `/clusters/{cluster}/hosts`: hosts with their units.

use crate::{Client, Result, seg};
use bigmgr_core::request::{AddHost, UpdateHost};
use bigmgr_core::view::HostView;

impl Client {
    /// A cluster's hosts, by id.
    pub async fn hosts(&self, cluster: &str) -> Result<Vec<HostView>> {
        self.list(&format!("/clusters/{}/hosts", seg(cluster)))
            .await
    }

    /// One host.
    pub async fn host(&self, cluster: &str, name: &str) -> Result<HostView> {
        self.get(&format!("/clusters/{}/hosts/{}", seg(cluster), seg(name)))
            .await
    }

    /// Adds a host ahead of its agent.
    pub async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostView> {
        self.post(
            &format!("/clusters/{}/hosts", seg(cluster)),
            &AddHost {
                name: name.to_string(),
                address: address.to_string(),
            },
        )
        .await
    }

    /// Changes a host's address (accepts the one its agent reported).
    pub async fn set_host_address(
        &self,
        cluster: &str,
        name: &str,
        address: &str,
    ) -> Result<HostView> {
        self.patch(
            &format!("/clusters/{}/hosts/{}", seg(cluster), seg(name)),
            &UpdateHost {
                address: address.to_string(),
            },
        )
        .await
    }

    /// Removes a host (refused while units are placed on it).
    pub async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&format!("/clusters/{}/hosts/{}", seg(cluster), seg(name)))
            .await
    }
}
