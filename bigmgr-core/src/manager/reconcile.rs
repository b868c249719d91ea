//! Keeping relations current: after units, relations or hosts change, started units whose
//! files differ only by relation data are reconfigured by an automatic job.

use super::Manager;
use crate::Result;
use crate::model::*;
use crate::render::{Staleness, Topology};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Watches the engine's updates for agents registering and, half a second after the last of
/// a burst, reconciles their clusters' relations (a host's new address reaches the other
/// side of its relations this way). Holds the manager weakly: it ends with it.
pub(super) async fn watch_hosts(
    inner: std::sync::Weak<super::Inner>,
    mut rx: tokio::sync::broadcast::Receiver<crate::engine::Update>,
) {
    use crate::engine::Update;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let mut names = HashSet::new();
        let mut ended = HashSet::new();
        // What an update asks for: a host re-registered, or a job ended (units it held may
        // have become stale meanwhile).
        let note = |u: Update, names: &mut HashSet<String>, ended: &mut HashSet<JobId>| match u {
            Update::Host { name } => {
                names.insert(name);
                true
            }
            Update::Job { id, state } if state.is_final() => {
                ended.insert(id);
                true
            }
            _ => false,
        };
        match rx.recv().await {
            Ok(u) => {
                if !note(u, &mut names, &mut ended) {
                    continue;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        let quiet = tokio::time::sleep(std::time::Duration::from_millis(500));
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                () = &mut quiet => break,
                r = rx.recv() => match r {
                    Ok(u) => {
                        note(u, &mut names, &mut ended);
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mgr = Manager { inner };
        let Ok(clusters) = mgr.inner.store.list_clusters().await else {
            continue;
        };
        let mut by_cluster: HashMap<ClusterId, HashSet<String>> = HashMap::new();
        for n in names {
            if let Ok(Some(h)) = mgr.inner.store.host_by_name(&n).await {
                // An in-process agent said Hello for a host no agent had registered for
                // (remote agents are recorded ONLINE when they register).
                if h.state == HostState::Waiting
                    && let Err(e) = mgr
                        .inner
                        .store
                        .set_host_state(h.id, HostState::Online, Some(crate::model::now_ms()))
                        .await
                {
                    tracing::warn!(host = %n, error = %e, "cannot record a host ONLINE");
                }
                by_cluster.entry(h.cluster).or_default().insert(n);
            }
        }
        // A failed automatic reconfigure is not followed by another: its units stay stale and
        // say so, for the operator.
        for id in ended {
            if let Ok(Some(job)) = mgr.inner.store.get_job(id).await
                && !(job.command == "reconfigure" && job.state != JobState::Succeeded)
            {
                by_cluster.entry(job.cluster).or_default();
            }
        }
        for (id, hosts) in by_cluster {
            let Some(c) = clusters.iter().find(|c| c.id == id) else {
                continue;
            };
            if let Err(e) = mgr.hosts_changed(c, &hosts, "re-registered").await {
                tracing::warn!(cluster = %c.name, error = %e, "cannot reconcile relations after hosts registered or jobs ended");
            }
        }
    }
}

impl Manager {
    /// After units or relations changed: every started unit whose files differ only because
    /// of relation or peer data (not a pending config version, which waits for the operator)
    /// is reconfigured by an automatic job per service — unless every relation it has with
    /// the change's services turned `auto_reconfigure` off. The events are recorded with the
    /// job their side got (all of them, or with `record_all` false only those that got one).
    pub(super) async fn reconcile(
        &self,
        c: &Cluster,
        events: Vec<NewRelationEvent>,
        record_all: bool,
    ) -> Result<Vec<Job>> {
        let topo = Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), c).await?;
        let relations = self.inner.store.list_relations(c.id).await?;
        let manual: BTreeSet<ServiceId> = events
            .iter()
            .filter(|e| {
                relations
                    .iter()
                    .find(|r| r.id == e.relation)
                    .is_some_and(|r| !r.auto_reconfigure)
            })
            .map(|e| e.service)
            .collect();
        let stale_units: Vec<&Unit> = topo
            .units()
            .iter()
            .filter(|u| {
                u.state == UnitState::Started
                    && !manual.contains(&u.service)
                    && topo.staleness(u) == Staleness::Relations
            })
            .collect();
        // A unit an unfinished job works on is left alone: two jobs must not configure and
        // restart it at once. When that job ends, the watcher reconciles again. (Read only
        // when some unit is stale: it reads every unfinished job's tasks.)
        let busy = if stale_units.is_empty() {
            HashSet::new()
        } else {
            self.busy_units(c).await?
        };
        let mut stale: BTreeMap<ServiceId, Vec<UnitId>> = BTreeMap::new();
        for u in stale_units {
            if !busy.contains(&u.id) {
                stale.entry(u.service).or_default().push(u.id);
            }
        }
        let mut jobs = Vec::new();
        let mut job_of: HashMap<ServiceId, JobId> = HashMap::new();
        for (service, units) in stale {
            let job = self
                .submit(JobRequest {
                    cluster: c.name.clone(),
                    target: Target::Units(units),
                    command: "reconfigure".into(),
                    options: JobOptions {
                        batch_size: Some(1),
                        ..JobOptions::default()
                    },
                })
                .await?;
            tracing::info!(cluster = %c.name, service = %service, job = %job.id,
                "relation data changed: reconfiguring stale units");
            job_of.insert(service, job.id);
            jobs.push(job);
        }
        for mut e in events {
            e.job = job_of.get(&e.service).copied();
            if record_all || e.job.is_some() {
                self.inner.store.add_relation_event(&e).await?;
            }
        }
        Ok(jobs)
    }

    /// The units that unfinished jobs of cluster `c` have tasks on.
    pub(super) async fn busy_units(&self, c: &Cluster) -> Result<HashSet<UnitId>> {
        busy_units(self.inner.store.as_ref(), c.id).await
    }

    /// After agents registered on `hosts` (of cluster `c`), or an admin changed their
    /// addresses (`why` says which): their addresses or roots may have changed, so every
    /// relation with a unit on one of them tells its other side `changed`, and stale units are
    /// reconfigured.
    pub(super) async fn hosts_changed(
        &self,
        c: &Cluster,
        hosts: &HashSet<String>,
        why: &str,
    ) -> Result<()> {
        // After jobs ended and no host moved: nothing to tell, only stale units to reconfigure.
        if hosts.is_empty() {
            self.reconcile(c, Vec::new(), false).await?;
            return Ok(());
        }
        let by_name = self.hosts_by_name(c.id).await?;
        let ids: HashSet<HostId> = hosts
            .iter()
            .filter_map(|n| by_name.get(n))
            .map(|h| h.id)
            .collect();
        let units = self.inner.store.list_units(c.id).await?;
        let moved: HashSet<ServiceId> = units
            .iter()
            .filter(|u| ids.contains(&u.host))
            .map(|u| u.service)
            .collect();
        let mut events = Vec::new();
        for s in moved {
            let detail = format!(
                "host(s) {} {why}",
                hosts.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            events.extend(
                self.relation_events_for(c, s, RelationEventKind::Changed, &detail)
                    .await?,
            );
        }
        self.reconcile(c, events, false).await?;
        Ok(())
    }
}

/// The units that unfinished jobs of cluster `c` have tasks on: no other job (an automatic
/// reconfigure, a self-heal restart) may touch them meanwhile.
pub(super) async fn busy_units(
    store: &dyn crate::store::Store,
    c: ClusterId,
) -> Result<HashSet<UnitId>> {
    let unfinished = store
        .list_jobs(&JobFilter {
            cluster: Some(c),
            states: JobState::UNFINISHED.to_vec(),
            ..JobFilter::default()
        })
        .await?;
    let mut busy = HashSet::new();
    for job in unfinished {
        if let Some(detail) = store.job_detail(job.id).await? {
            busy.extend(detail.tasks.iter().map(|t| t.unit));
        }
    }
    Ok(busy)
}
