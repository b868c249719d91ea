//! The cluster as placement by count sees it ([`crate::placement`]): each host with its
//! units and its CPU and memory averaged over its recent heartbeats.

use super::Manager;
use crate::Result;
use crate::model::{Cluster, HostMetrics, HostState, now_ms};
use crate::placement::{Candidate, LOAD_WINDOW_MS, Load};
use std::collections::HashMap;

impl Manager {
    /// Every host of cluster `c` as a placement candidate.
    pub(super) async fn candidates(&self, c: &Cluster) -> Result<Vec<Candidate>> {
        let store = self.inner.store.as_ref();
        let hosts = store.list_hosts(c.id).await?;
        let units = store.list_units(c.id).await?;
        let samples = store
            .host_metrics(c.id, None, now_ms() - LOAD_WINDOW_MS)
            .await?;
        let mut by_host: HashMap<_, Vec<&HostMetrics>> = HashMap::new();
        for (h, m) in &samples {
            by_host.entry(*h).or_default().push(m);
        }
        Ok(hosts
            .iter()
            .map(|h| Candidate {
                name: h.name.clone(),
                units: units.iter().filter(|u| u.host == h.id).count(),
                load: by_host
                    .get(&h.id)
                    .and_then(|m| Load::average(m.iter().copied())),
                lost: h.state == HostState::Lost,
            })
            .collect())
    }
}
