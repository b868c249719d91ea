//! A cluster's changes as they happen ([`Manager::cluster_events`]): which of its lists —
//! hosts, services, units, configs, relations, jobs, alerts — changed, so a console re-reads just
//! those. What `GET /clusters/{cluster}/events` sends.
//!
//! The watcher compares a digest of each list with the last one it sent, whatever changed it:
//! a change through any frontend, the engine, an agent's registration or heartbeat, or another
//! server on the same store. It looks again soon after every engine update (at most every
//! [`MIN_GAP`], so a job of 10 000 tasks costs a few reads a second, not one per task) and at
//! least every [`WATCH_EVERY`] (heartbeats and host states are not broadcast).

use super::Manager;
use crate::Result;
use crate::model::{Cluster, JobFilter, JobId, JobState};
use crate::view::{ClusterEvent, ClusterTopic};
use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// The longest the watcher goes without looking.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The shortest time between two looks, however many updates come.
pub const MIN_GAP: Duration = Duration::from_millis(250);

impl Manager {
    /// A cluster's changes, as a channel of [`ClusterEvent`]s naming what changed since the
    /// previous one (the first names nothing in particular: it comes only after a change).
    /// An unknown cluster is an error at once; the channel ends with an `Err` if the store
    /// fails or the cluster is deleted. Dropping the receiver stops the watcher.
    pub async fn cluster_events(
        &self,
        cluster: &str,
    ) -> Result<mpsc::Receiver<Result<ClusterEvent>>> {
        let updates = self.subscribe();
        let c = self.cluster(cluster).await?;
        let mut newest = None;
        let last = self.digests(&c, &mut newest).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(self.clone().watch(c, last, newest, updates, tx));
        Ok(rx)
    }

    async fn watch(
        self,
        c: Cluster,
        mut last: BTreeMap<ClusterTopic, u64>,
        mut newest: Option<JobId>,
        mut updates: broadcast::Receiver<crate::engine::Update>,
        tx: mpsc::Sender<Result<ClusterEvent>>,
    ) {
        let mut looked = Instant::now();
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                u = updates.recv() => {
                    if matches!(u, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    tokio::time::sleep_until(looked + MIN_GAP).await;
                    // What came meanwhile is covered by this look.
                    while updates.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep_until(looked + WATCH_EVERY) => {}
            }
            looked = Instant::now();
            let now = match self.cluster(&c.name).await {
                Ok(found) if found.id == c.id => self.digests(&c, &mut newest).await,
                Ok(_) => Err(crate::Error::not_found("cluster", &c.name)),
                Err(e) => Err(e),
            };
            let now = match now {
                Ok(now) => now,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let topics: Vec<ClusterTopic> = now
                .iter()
                .filter(|(topic, digest)| last.get(topic) != Some(digest))
                .map(|(topic, _)| *topic)
                .collect();
            last = now;
            if !topics.is_empty() && tx.send(Ok(ClusterEvent { topics })).await.is_err() {
                return;
            }
        }
    }

    /// One digest per topic of cluster `c` as it is now; `newest` is the newest job seen so
    /// far, moved on to the newest now.
    async fn digests(
        &self,
        c: &Cluster,
        newest: &mut Option<JobId>,
    ) -> Result<BTreeMap<ClusterTopic, u64>> {
        let store = &self.inner.store;
        let services = store.list_services(c.id).await?;
        let mut versions = Vec::with_capacity(services.len());
        for s in &services {
            versions.push((s.id, store.list_config_versions(s.id).await?.len()));
        }
        let unfinished = store
            .list_jobs(&JobFilter {
                cluster: Some(c.id),
                states: JobState::UNFINISHED.to_vec(),
                ..JobFilter::default()
            })
            .await?;
        *newest = newest_job(store.as_ref(), c, *newest).await?;
        let alerts = store
            .alerts(&crate::model::AlertFilter {
                cluster: Some(c.id),
                firing: true,
                ..crate::model::AlertFilter::default()
            })
            .await?;
        Ok(BTreeMap::from([
            (
                ClusterTopic::Hosts,
                digest(&format!("{:?}", store.list_hosts(c.id).await?)),
            ),
            (ClusterTopic::Services, digest(&format!("{services:?}"))),
            (
                ClusterTopic::Units,
                digest(&format!("{:?}", store.list_units(c.id).await?)),
            ),
            (ClusterTopic::Configs, digest(&versions)),
            (
                ClusterTopic::Relations,
                digest(&format!("{:?}", store.list_relations(c.id).await?)),
            ),
            (
                ClusterTopic::Jobs,
                digest(&(format!("{unfinished:?}"), *newest)),
            ),
            (
                ClusterTopic::Alerts,
                digest(
                    &alerts
                        .iter()
                        .map(|a| (a.id.0, a.state.as_str()))
                        .collect::<Vec<_>>(),
                ),
            ),
        ]))
    }
}

/// The id of the cluster's newest job, if any, looking only past `seen` (ids ascend as jobs
/// are submitted, so only the first look reads every job).
async fn newest_job(
    store: &dyn crate::store::Store,
    c: &Cluster,
    seen: Option<JobId>,
) -> Result<Option<JobId>> {
    let mut after = seen;
    let mut newest = seen;
    loop {
        let page = store
            .list_jobs(&JobFilter {
                cluster: Some(c.id),
                after,
                limit: Some(1000),
                ..JobFilter::default()
            })
            .await?;
        match page.last() {
            Some(j) => {
                newest = Some(j.id);
                after = Some(j.id);
            }
            None => return Ok(newest),
        }
    }
}

fn digest(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}
