//! The reads frontends show: every one returns a [`crate::view`] type, names resolved once here
//! (a task's host, a unit's service, a removed service as `#id`), secrets redacted.

use super::Manager;
use crate::Result;
use crate::model::{
    Cluster, HostId, JobFilter, JobId, Relation, RelationEvent, RelationId, ServiceId, StageId,
    Unit, UnitId,
};
use crate::render::{redact, redact_hosts};
use crate::view::{
    ConfigVersionView, HostSeriesView, HostTaskView, HostUnitView, HostView, JobDetailView,
    JobView, RelationEventView, RelationView, RenderedFileView, ServiceView, StackView, StageView,
    TaskView, UnitStatusView,
};
use std::collections::HashMap;

impl Manager {
    /// Whether the store answers (for a health check).
    pub async fn health(&self) -> Result<()> {
        self.inner.store.list_clusters().await.map(|_| ())
    }

    /// True while this server runs the job engine: always for a single server; for a replica,
    /// while it holds the engine's lease.
    pub fn leads(&self) -> bool {
        self.inner.metrics.families().leader.get() == 1
    }

    /// A cluster's hosts, by id, each with its units.
    pub async fn host_views(&self, cluster: &str) -> Result<Vec<HostView>> {
        let c = self.cluster(cluster).await?;
        let hosts = self.inner.store.list_hosts(c.id).await?;
        self.host_views_of(&c, hosts).await
    }

    /// One host of a cluster with its units.
    pub async fn host_view(&self, cluster: &str, name: &str) -> Result<HostView> {
        let c = self.cluster(cluster).await?;
        let h = self.host_of(&c, name).await?;
        Ok(self.host_views_of(&c, vec![h]).await?.remove(0))
    }

    async fn host_views_of(
        &self,
        c: &Cluster,
        mut hosts: Vec<crate::model::Host>,
    ) -> Result<Vec<HostView>> {
        hosts.sort_by_key(|h| h.id);
        let names = self.service_names(c).await?;
        let mut units: HashMap<HostId, Vec<HostUnitView>> = HashMap::new();
        for u in self.inner.store.list_units(c.id).await? {
            units.entry(u.host).or_default().push(HostUnitView {
                id: u.id,
                service: names.get(&u.service).cloned().unwrap_or_default(),
                component: u.component,
                state: u.state,
                health: u.health,
            });
        }
        Ok(hosts
            .into_iter()
            .map(|h| {
                let u = units.remove(&h.id).unwrap_or_default();
                HostView::of(h, &c.name, u)
            })
            .collect())
    }

    /// A cluster's jobs as `filter` selects and orders them (its `cluster` is the named one).
    pub async fn job_views(&self, cluster: &str, filter: JobFilter) -> Result<Vec<JobView>> {
        let c = self.cluster(cluster).await?;
        let filter = JobFilter {
            cluster: Some(c.id),
            ..filter
        };
        Ok(self
            .jobs(&filter)
            .await?
            .into_iter()
            .map(|j| JobView::of(j, &c.name))
            .collect())
    }

    /// A job without its stages.
    pub async fn job_summary(&self, id: JobId) -> Result<JobView> {
        let job = self.job_row(id).await?;
        let cluster = crate::store::cluster_name(&*self.inner.store, job.cluster).await?;
        Ok(JobView::of(job, &cluster))
    }

    /// A job with its stages (in a topological order) and their tasks, each naming its host.
    pub async fn job_view(&self, id: JobId) -> Result<JobDetailView> {
        let detail = self.job(id).await?;
        let cluster = crate::store::cluster_name(&*self.inner.store, detail.job.cluster).await?;
        let hosts: HashMap<HostId, String> = self
            .inner
            .store
            .list_hosts(detail.job.cluster)
            .await?
            .into_iter()
            .map(|h| (h.id, h.name))
            .collect();
        let mut tasks: HashMap<StageId, Vec<TaskView>> = HashMap::new();
        for t in detail.tasks {
            tasks.entry(t.stage).or_default().push(TaskView {
                id: t.id,
                // A removed host keeps its id in history: it reads as the id.
                host: hosts
                    .get(&t.host)
                    .cloned()
                    .unwrap_or_else(|| t.host.to_string()),
                state: t.state,
                attempt: t.attempt,
                exit_code: t.exit_code,
                message: t.message,
                started_at: t.started_at,
                finished_at: t.finished_at,
            });
        }
        let stages = detail
            .stages
            .into_iter()
            .map(|st| StageView {
                tasks: tasks.remove(&st.id).unwrap_or_default(),
                id: st.id,
                name: st.name,
                component: st.component,
                command: st.command,
                state: st.state,
                after: st.after,
            })
            .collect();
        Ok(JobDetailView {
            job: JobView::of(detail.job, &cluster),
            stages,
        })
    }

    /// A cluster's service instances, by id, as operators see them: secrets redacted, each
    /// with its units' states and staleness.
    pub async fn service_views(&self, cluster: &str) -> Result<Vec<ServiceView>> {
        let c = self.cluster(cluster).await?;
        let mut services = self.inner.store.list_services(c.id).await?;
        services.sort_by_key(|s| s.id);
        self.service_views_of(cluster, services).await
    }

    /// One service instance as operators see it.
    pub async fn service_view(&self, cluster: &str, name: &str) -> Result<ServiceView> {
        let c = self.cluster(cluster).await?;
        let inst = self.service_named(&c, name).await?;
        Ok(self.service_views_of(cluster, vec![inst]).await?.remove(0))
    }

    async fn service_views_of(
        &self,
        cluster: &str,
        services: Vec<crate::model::ServiceInstance>,
    ) -> Result<Vec<ServiceView>> {
        let mut units: HashMap<ServiceId, Vec<_>> = HashMap::new();
        for u in self.unit_statuses(cluster).await? {
            units.entry(u.unit.service).or_default().push(u);
        }
        let mut out = Vec::with_capacity(services.len());
        for mut instance in services {
            let def = self
                .inner
                .stacks
                .stack(&instance.stack, Some(&instance.stack_version))
                .await
                .ok()
                .and_then(|st| st.service(&instance.service).ok().cloned());
            // Without its stack nothing tells which values are secret: none are shown.
            (instance.configs, instance.host_overrides) = match &def {
                Some(d) => (
                    redact(d, &instance.configs),
                    redact_hosts(d, &instance.host_overrides),
                ),
                None => Default::default(),
            };
            let u = units.remove(&instance.id).unwrap_or_default();
            out.push(ServiceView::of(instance, u));
        }
        Ok(out)
    }

    /// Every unit of a cluster with its staleness, by id.
    pub async fn unit_views(&self, cluster: &str) -> Result<Vec<UnitStatusView>> {
        Ok(self
            .unit_statuses(cluster)
            .await?
            .into_iter()
            .map(UnitStatusView::from)
            .collect())
    }

    /// The views of `units` (just placed, say) of a cluster, with their staleness.
    pub async fn unit_views_of(
        &self,
        cluster: &str,
        units: &[Unit],
    ) -> Result<Vec<UnitStatusView>> {
        let mut views = self.unit_views(cluster).await?;
        views.retain(|v| units.iter().any(|u| u.id == v.id));
        Ok(views)
    }

    /// Every stack version the provider offers, by name then version, with its services; one
    /// that fails to load is listed with its error.
    pub async fn stack_views(&self) -> Result<Vec<StackView>> {
        let mut refs = self.list_stacks().await?;
        refs.sort_by_key(|r| format!("{}/{}", r.name, r.version));
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            out.push(
                match self.inner.stacks.stack(&r.name, Some(&r.version)).await {
                    Ok(stack) => StackView::of(&stack),
                    Err(e) => StackView {
                        name: r.name,
                        version: r.version,
                        services: Vec::new(),
                        error: Some(e.to_string()),
                    },
                },
            );
        }
        Ok(out)
    }

    /// A cluster's relations, by id, sides named.
    pub async fn relation_views(&self, cluster: &str) -> Result<Vec<RelationView>> {
        let c = self.cluster(cluster).await?;
        let names = self.service_names(&c).await?;
        Ok(self
            .relations(cluster)
            .await?
            .into_iter()
            .map(|r| relation_view(r, &names))
            .collect())
    }

    /// The view of one relation of a cluster (as [`Manager::relate`] returned it).
    pub async fn relation_view(&self, cluster: &str, r: Relation) -> Result<RelationView> {
        let c = self.cluster(cluster).await?;
        Ok(relation_view(r, &self.service_names(&c).await?))
    }

    /// A relation's events, oldest first, services named.
    pub async fn relation_event_views(
        &self,
        cluster: &str,
        id: RelationId,
    ) -> Result<Vec<RelationEventView>> {
        let events = self.relation_events(cluster, id).await?;
        let names = self.service_names(&self.cluster(cluster).await?).await?;
        Ok(events.into_iter().map(|e| event_view(e, &names)).collect())
    }

    /// Views of config versions of a cluster's services (as a snapshot restore made them),
    /// each naming its service.
    pub async fn config_version_views(
        &self,
        cluster: &str,
        versions: Vec<crate::model::ConfigVersion>,
    ) -> Result<Vec<ConfigVersionView>> {
        let c = self.cluster(cluster).await?;
        let names = self.service_names(&c).await?;
        Ok(versions
            .into_iter()
            .map(|v| {
                let name = name_of(&names, v.service);
                ConfigVersionView::of(&name, v)
            })
            .collect())
    }

    /// The names of a cluster's live service instances, by id.
    /// A host's recent CPU and memory use: its samples from the last `window`, at most
    /// `points` points (see [`HostSeriesView::of`]).
    pub async fn host_series(
        &self,
        cluster: &str,
        window: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HostSeriesView>> {
        self.series(cluster, None, window, points).await
    }

    /// [`Manager::host_series`] of one host.
    pub async fn one_host_series(
        &self,
        cluster: &str,
        host: &str,
        window: std::time::Duration,
        points: usize,
    ) -> Result<HostSeriesView> {
        let mut all = self.series(cluster, Some(host), window, points).await?;
        Ok(all.remove(0))
    }

    async fn series(
        &self,
        cluster: &str,
        host: Option<&str>,
        window: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HostSeriesView>> {
        let c = self.cluster(cluster).await?;
        let hosts = match host {
            Some(name) => vec![self.host_of(&c, name).await?],
            None => {
                let mut all = self.inner.store.list_hosts(c.id).await?;
                all.sort_by_key(|h| h.id);
                all
            }
        };
        let now = crate::model::now_ms();
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let since = now.saturating_sub(window);
        let samples = self
            .inner
            .store
            .host_metrics(c.id, host.map(|_| hosts[0].id), since)
            .await?;
        let mut by_host: HashMap<HostId, Vec<crate::model::HostMetrics>> = HashMap::new();
        for (h, m) in samples {
            by_host.entry(h).or_default().push(m);
        }
        Ok(hosts
            .iter()
            .map(|h| {
                let s = by_host.remove(&h.id).unwrap_or_default();
                HostSeriesView::of(&h.name, &s, since, now, points)
            })
            .collect())
    }

    /// The latest `limit` tasks on a host of a cluster, newest first.
    pub async fn host_task_views(
        &self,
        cluster: &str,
        host: &str,
        limit: u32,
    ) -> Result<Vec<HostTaskView>> {
        let c = self.cluster(cluster).await?;
        let h = self.host_of(&c, host).await?;
        let names = self.service_names(&c).await?;
        let tasks = self.inner.store.host_tasks(h.id, limit).await?;
        Ok(tasks
            .into_iter()
            .map(|t| HostTaskView {
                id: t.task.id,
                job: t.task.job,
                command: t.command,
                stage_command: t.stage_command,
                service: name_of(&names, t.service),
                component: t.component,
                state: t.task.state,
                attempt: t.task.attempt,
                exit_code: t.task.exit_code,
                started_at: t.task.started_at,
                finished_at: t.task.finished_at,
            })
            .collect())
    }

    /// The config files a unit's `configure` would write now, with its service's secret
    /// values masked (other services' secrets never reach a unit's templates).
    pub async fn unit_files(&self, cluster: &str, unit: UnitId) -> Result<Vec<RenderedFileView>> {
        let c = self.cluster(cluster).await?;
        let mut topo =
            crate::render::Topology::load(&*self.inner.store, &*self.inner.stacks, &c).await?;
        let u = topo.unit(unit).cloned().ok_or_else(|| {
            crate::Error::not_found("unit", format!("{unit} (in cluster {})", c.name))
        })?;
        let svc = topo
            .service(u.service)
            .ok_or_else(|| crate::Error::not_found("service", u.service))?;
        let (configs, overrides) = (
            redact(&svc.def, &svc.instance.configs),
            redact_hosts(&svc.def, &svc.instance.host_overrides),
        );
        let name = svc.instance.name.clone();
        topo.set_configs(u.service, configs, overrides);
        let files = topo
            .render(&u)
            .map_err(|message| crate::Error::Template { name, message })?;
        Ok(files
            .into_iter()
            .map(|f| RenderedFileView {
                path: f.path,
                content: f.content,
            })
            .collect())
    }

    async fn service_names(&self, c: &Cluster) -> Result<HashMap<ServiceId, String>> {
        Ok(self
            .inner
            .store
            .list_services(c.id)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect())
    }
}

/// A service's name, or `#id` for one removed since (relations keep their history).
fn name_of(names: &HashMap<ServiceId, String>, id: ServiceId) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

fn relation_view(r: Relation, names: &HashMap<ServiceId, String>) -> RelationView {
    RelationView {
        id: r.id,
        requirer: name_of(names, r.requirer),
        requirer_endpoint: r.requirer_endpoint,
        provider: name_of(names, r.provider),
        provider_endpoint: r.provider_endpoint,
        interface: r.interface,
        auto_reconfigure: r.auto_reconfigure,
        created_at: r.created_at,
    }
}

fn event_view(e: RelationEvent, names: &HashMap<ServiceId, String>) -> RelationEventView {
    RelationEventView {
        at: e.at,
        kind: e.kind.as_str().to_string(),
        service: name_of(names, e.service),
        detail: e.detail,
        job: e.job,
    }
}
