//! The embedded backend: a core `Manager` in-process on a SQLite file, with in-process agents,
//! and [`PyStackProvider`], a stack provider that asks a Python object where stacks are.

use crate::backend::{Backend, JobAction, OnFollowed};
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_core::Manager;
use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::auth::Actor;
use bigmgr_core::manager::Acting;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::*;
use bigmgr_core::stack::dir::{compare_versions, load_stack_dir};
use bigmgr_core::stack::{Stack, StackProvider, StackRef};
use bigmgr_core::view::{
    AuditEventView, ClusterView, ConfigDiffView, ConfigVersionView, HostView, JobDetailView,
    JobView, LogLineView, RelationEventView, RelationView, ServiceView, SnapshotView, StackView,
    UnitStatusView, follow,
};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The engine in-process: a [`Manager`] on a SQLite file and the in-process agents it talks to.
pub struct Embedded {
    mgr: Mutex<Option<Manager>>,
    transport: Arc<LocalTransport>,
    /// Who acts: every change is authorised by its role and audited with its name.
    actor: Actor,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("actor", &self.actor)
            .field("agents", &self.transport.hosts())
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Opens (or creates) the store at `path`, starts one in-process agent per `(name, address)`
    /// with its root `<root>/<name>`, and starts the engine. Every change acts as `actor`:
    /// authorised by its role, audited and authored in its name. Must be called inside the
    /// tokio runtime.
    pub async fn open(
        path: &Path,
        stacks: impl StackProvider,
        agents: &[(String, String)],
        root: &Path,
        actor: Actor,
    ) -> Result<Embedded> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let transport = LocalTransport::new();
        for (name, address) in agents {
            let cfg = AgentConfig::new(name.as_str(), address.as_str(), root.join(name));
            transport
                .spawn_agent(cfg, Arc::new(ProcessExecutor))
                .await?;
        }
        let mgr = Manager::builder()
            .sqlite(path)
            .transport(transport.clone())
            .stacks(stacks)
            .build()
            .await?;
        Ok(Embedded {
            mgr: Mutex::new(Some(mgr)),
            transport,
            actor,
        })
    }

    /// Stops the engine, then every agent (each finishes what it runs). Daemons that scripts
    /// started keep running: stop them with a `stop` job first. Closing twice does nothing.
    pub async fn close(&self) {
        let mgr = self.mgr.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mgr) = mgr {
            mgr.shutdown().await;
            self.transport.shutdown().await;
        }
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.mgr.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    /// The names of the in-process agents.
    pub fn agents(&self) -> Vec<String> {
        let mut hosts = self.transport.hosts();
        hosts.sort();
        hosts
    }

    /// The Manager, acting as this engine's user.
    fn acting(&self) -> Result<Acting> {
        Ok(self.mgr()?.acting(self.actor.clone()))
    }

    fn mgr(&self) -> Result<Manager> {
        self.mgr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Other("this Embedded is closed".into()))
    }

    async fn control_job(&self, id: JobId, action: JobAction) -> Result<Job> {
        let acting = self.acting()?;
        Ok(match action {
            JobAction::Cancel => acting.cancel(id).await?,
            JobAction::Pause => acting.pause(id).await?,
            JobAction::Resume => acting.resume(id).await?,
            JobAction::Retry => acting.retry(id).await?,
        })
    }
}

#[async_trait]
impl Backend for Embedded {
    async fn clusters(&self) -> Result<Vec<ClusterView>> {
        Ok(self
            .mgr()?
            .clusters()
            .await?
            .into_iter().collect())
    }

    async fn create_cluster(&self, name: &str) -> Result<ClusterView> {
        Ok(self.acting()?.create_cluster(name).await?)
    }

    async fn cluster(&self, name: &str) -> Result<ClusterView> {
        Ok(self.mgr()?.cluster(name).await?)
    }

    async fn delete_cluster(&self, name: &str) -> Result<()> {
        Ok(self.acting()?.delete_cluster(name).await?)
    }

    async fn create_join_token(&self, cluster: &str) -> Result<String> {
        Ok(self.acting()?.create_join_token(cluster).await?)
    }

    async fn hosts(&self, cluster: &str) -> Result<Vec<HostView>> {
        Ok(self.mgr()?.host_views(cluster).await?)
    }

    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostView> {
        let acting = self.acting()?;
        acting.add_host(cluster, name, address).await?;
        Ok(acting.manager().host_view(cluster, name).await?)
    }

    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(self.acting()?.remove_host(cluster, name).await?)
    }

    async fn stacks(&self) -> Result<Vec<StackView>> {
        Ok(self.mgr()?.stack_views().await?)
    }

    async fn services(&self, cluster: &str) -> Result<Vec<ServiceView>> {
        Ok(self.mgr()?.service_views(cluster).await?)
    }

    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView> {
        Ok(self.mgr()?.service_view(cluster, name).await?)
    }

    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceView> {
        let acting = self.acting()?;
        let name = req.name.clone();
        acting.add_service(cluster, req).await?;
        Ok(acting.manager().service_view(cluster, &name).await?)
    }

    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(self.acting()?.remove_service(cluster, name).await?)
    }

    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionView> {
        let v = self
            .acting()?
            .update_configs(cluster, service, change)
            .await?;
        Ok(ConfigVersionView::of(service, v))
    }

    async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersionView>> {
        Ok(self
            .mgr()?
            .config_versions(cluster, service)
            .await?
            .into_iter()
            .map(|v| ConfigVersionView::of(service, v))
            .collect())
    }

    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionView> {
        let v = self
            .acting()?
            .rollback_configs(cluster, service, to, message)
            .await?;
        Ok(ConfigVersionView::of(service, v))
    }

    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionView> {
        let v = self
            .mgr()?
            .config_version(cluster, service, version)
            .await?;
        Ok(ConfigVersionView::of(service, v))
    }

    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffView>> {
        Ok(self
            .mgr()?
            .diff_configs(cluster, service, from, to)
            .await?
            .into_iter()
            .map(ConfigDiffView::from)
            .collect())
    }

    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotView> {
        let snap = self
            .acting()?
            .create_snapshot(cluster, name, message)
            .await?;
        Ok(snap.into())
    }

    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotView>> {
        Ok(self
            .mgr()?
            .snapshots(cluster)
            .await?
            .into_iter()
            .map(SnapshotView::from)
            .collect())
    }

    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionView>> {
        let acting = self.acting()?;
        let versions = acting.restore_snapshot(cluster, name).await?;
        Ok(acting
            .manager()
            .config_version_views(cluster, versions)
            .await?)
    }

    async fn units(&self, cluster: &str) -> Result<Vec<UnitStatusView>> {
        Ok(self.mgr()?.unit_views(cluster).await?)
    }

    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitStatusView>> {
        let acting = self.acting()?;
        let placed = acting.add_units(cluster, service, component, hosts).await?;
        let ids: Vec<UnitId> = placed.iter().map(|u| u.id).collect();
        Ok(acting
            .manager()
            .unit_views(cluster)
            .await?
            .into_iter()
            .filter(|u| ids.contains(&u.id))
            .collect())
    }

    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        Ok(self.acting()?.remove_unit(cluster, UnitId(unit)).await?)
    }

    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobView>> {
        let acting = self.acting()?;
        let c = acting.manager().cluster(cluster).await?;
        Ok(acting
            .restart_stale(cluster, service, None)
            .await?
            .into_iter()
            .map(|j| JobView::of(j, &c.name))
            .collect())
    }

    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationView> {
        let acting = self.acting()?;
        let rel = acting.relate(cluster, req).await?;
        Ok(acting.manager().relation_view(cluster, rel).await?)
    }

    async fn relations(&self, cluster: &str) -> Result<Vec<RelationView>> {
        Ok(self.mgr()?.relation_views(cluster).await?)
    }

    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        Ok(self.acting()?.unrelate(cluster, RelationId(id)).await?)
    }

    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventView>> {
        Ok(self
            .mgr()?
            .relation_event_views(cluster, RelationId(id))
            .await?)
    }

    async fn submit(&self, req: JobRequest) -> Result<JobView> {
        let acting = self.acting()?;
        let job = acting.submit(req).await?;
        Ok(acting.manager().job_summary(job.id).await?)
    }

    async fn job(&self, id: i64) -> Result<JobDetailView> {
        Ok(self.mgr()?.job_view(JobId(id)).await?)
    }

    async fn jobs(&self, cluster: &str) -> Result<Vec<JobView>> {
        Ok(self
            .mgr()?
            .job_views(cluster, Vec::new(), None, None)
            .await?)
    }

    async fn control(&self, id: i64, action: JobAction) -> Result<JobView> {
        let job = self.control_job(JobId(id), action).await?;
        Ok(self.mgr()?.job_summary(job.id).await?)
    }

    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineView>> {
        Ok(self
            .mgr()?
            .job_task_log(JobId(job), TaskId(task), None)
            .await?
            .into_iter()
            .map(LogLineView::from)
            .collect())
    }

    async fn audit(&self, actor: Option<&str>) -> Result<Vec<AuditEventView>> {
        let filter = AuditFilter {
            actor: actor.map(str::to_owned),
            ..AuditFilter::default()
        };
        Ok(self
            .mgr()?
            .audit(&self.actor, &filter)
            .await?
            .into_iter().collect())
    }

    async fn follow(&self, id: JobId, on: OnFollowed<'_>) -> Result<JobDetailView> {
        Ok(follow(&self.mgr()?, id, on).await?)
    }
}

/// A [`StackProvider`] over a Python object with `list() -> list[tuple[str, str]]` and
/// `stack(name, version) -> str` (the directory of that stack version): each version is loaded
/// and validated from that directory once, then cached.
pub struct PyStackProvider {
    obj: Py<PyAny>,
    what: String,
    cache: Mutex<HashMap<StackRef, Arc<Stack>>>,
}

impl std::fmt::Debug for PyStackProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyStackProvider")
            .field("provider", &self.what)
            .finish_non_exhaustive()
    }
}

impl PyStackProvider {
    /// Wraps a Python object that follows the StackProvider protocol.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyStackProvider {
        let what = obj
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "<stack provider>".into());
        PyStackProvider {
            obj: obj.clone().unbind(),
            what,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn failed(
        &self,
        name: &str,
        version: Option<&str>,
        what: &str,
        e: PyErr,
    ) -> bigmgr_core::Error {
        bigmgr_core::Error::Stack {
            stack: name.to_string(),
            version: version.unwrap_or("(newest)").to_string(),
            message: format!(
                "the Python stack provider {} failed in {what}: {e}",
                self.what
            ),
        }
    }

    fn call_list(&self) -> std::result::Result<Vec<(String, String)>, PyErr> {
        Python::attach(|py| self.obj.bind(py).call_method0("list")?.extract())
    }

    fn call_stack(&self, name: &str, version: &str) -> std::result::Result<PathBuf, PyErr> {
        Python::attach(|py| {
            let dir = self.obj.bind(py).call_method1("stack", (name, version))?;
            let dir = py.import("os")?.call_method1("fspath", (dir,))?;
            Ok(PathBuf::from(dir.extract::<String>()?))
        })
    }

    fn cached(&self, key: &StackRef) -> Option<Arc<Stack>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

#[async_trait]
impl StackProvider for PyStackProvider {
    async fn list(&self) -> bigmgr_core::Result<Vec<StackRef>> {
        let list = self
            .call_list()
            .map_err(|e| self.failed("*", None, "list()", e))?;
        Ok(list
            .into_iter()
            .map(|(name, version)| StackRef { name, version })
            .collect())
    }

    async fn stack(&self, name: &str, version: Option<&str>) -> bigmgr_core::Result<Arc<Stack>> {
        let version = match version {
            Some(v) => v.to_string(),
            None => {
                let list = self
                    .call_list()
                    .map_err(|e| self.failed(name, None, "list()", e))?;
                list.into_iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .max_by(|a, b| compare_versions(a, b))
                    .ok_or_else(|| {
                        bigmgr_core::Error::not_found(
                            "stack",
                            format!(
                                "{name} (the Python stack provider {} does not list it)",
                                self.what
                            ),
                        )
                    })?
            }
        };
        let key = StackRef {
            name: name.to_string(),
            version: version.clone(),
        };
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        let dir = self.call_stack(name, &version).map_err(|e| {
            self.failed(
                name,
                Some(&version),
                &format!("stack({name:?}, {version:?})"),
                e,
            )
        })?;
        let stack = Arc::new(load_stack_dir(&dir, name, &version)?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Ok(cache.entry(key).or_insert(stack).clone())
    }
}
