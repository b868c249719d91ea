//! Snapshots: a named set of every service's config version in a cluster, and restoring one as
//! new versions.

use super::Manager;
use crate::model::*;
use crate::{Error, Result};
use std::collections::HashMap;

impl Manager {
    /// Names the current config version of every service of a cluster.
    pub async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
        author: &str,
    ) -> Result<Snapshot> {
        crate::name::check_name("snapshot", name)?;
        let c = self.cluster(cluster).await?;
        let entries = self
            .inner
            .store
            .list_services(c.id)
            .await?
            .into_iter()
            .map(|s| SnapshotEntry {
                service: s.id,
                name: s.name,
                version: s.config_version,
            })
            .collect();
        self.inner
            .store
            .add_snapshot(&NewSnapshot {
                cluster: c.id,
                name: name.to_string(),
                author: author.to_string(),
                message: message.to_string(),
                entries,
            })
            .await
    }

    /// A cluster's snapshots, oldest first.
    pub async fn snapshots(&self, cluster: &str) -> Result<Vec<Snapshot>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_snapshots(c.id).await
    }

    /// One snapshot.
    pub async fn snapshot(&self, cluster: &str, name: &str) -> Result<Snapshot> {
        let c = self.cluster(cluster).await?;
        self.inner
            .store
            .snapshot(c.id, name)
            .await?
            .ok_or_else(|| Error::not_found("snapshot", format!("{name} (in cluster {cluster})")))
    }

    /// Rolls every service of a snapshot that still exists and has changed since back to its
    /// version there; returns the new versions.
    pub async fn restore_snapshot(
        &self,
        cluster: &str,
        name: &str,
        author: &str,
    ) -> Result<Vec<ConfigVersion>> {
        let snap = self.snapshot(cluster, name).await?;
        let c = self.cluster(cluster).await?;
        let current: HashMap<ServiceId, ServiceInstance> = self
            .inner
            .store
            .list_services(c.id)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut out = Vec::new();
        for e in &snap.entries {
            let Some(inst) = current.get(&e.service) else {
                continue;
            };
            let old = self.version_of(inst, e.version).await?;
            if old.configs == inst.configs && old.host_overrides == inst.host_overrides {
                continue;
            }
            let (_, def) = self.service_def(&c, &inst.name).await?;
            out.push(
                self.new_version(
                    &c,
                    inst,
                    &def,
                    NewConfigVersion {
                        author: author.to_string(),
                        message: format!("restore snapshot {name} (version {})", e.version),
                        configs: old.configs,
                        host_overrides: old.host_overrides,
                    },
                )
                .await?,
            );
        }
        Ok(out)
    }
}
