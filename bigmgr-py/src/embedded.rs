//! The embedded backend: a core `Manager` in-process on a SQLite file, with in-process agents,
//! and [`PyStackProvider`], a stack provider that asks a Python object where stacks are.

use crate::backend::{Backend, JobAction};
use crate::data::*;
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_core::Manager;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::manager::{AddService, ConfigChange, ConfigDiff, Relate, UnitStatus};
use bigmgr_core::model::*;
use bigmgr_core::stack::dir::{compare_versions, load_stack_dir};
use bigmgr_core::stack::{Stack, StackProvider, StackRef};
use bigmgr_core::store::SqlStore;
use bigmgr_core::transport::LocalTransport;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The engine in-process: a [`Manager`] on a SQLite file and the in-process agents it talks to.
pub struct Embedded {
    mgr: Mutex<Option<Manager>>,
    transport: Arc<LocalTransport>,
    author: String,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("author", &self.author)
            .field("agents", &self.transport.hosts())
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Opens (or creates) the store at `path`, starts one in-process agent per `(name, address)`
    /// with its root `<root>/<name>`, and starts the engine. Config changes and added services
    /// are authored by `author`. Must be called inside the tokio runtime.
    pub async fn open(
        path: &Path,
        stacks: impl StackProvider,
        agents: &[(String, String)],
        root: &Path,
        author: &str,
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
            .store(SqlStore::open_path(path).await?)
            .transport(transport.clone())
            .stacks(stacks)
            .build()
            .await?;
        Ok(Embedded {
            mgr: Mutex::new(Some(mgr)),
            transport,
            author: author.to_string(),
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

    fn mgr(&self) -> Result<Manager> {
        self.mgr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Other("this Embedded is closed".into()))
    }

    async fn cluster_name(mgr: &Manager, id: ClusterId) -> Result<String> {
        Ok(mgr
            .clusters()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.name)
            .unwrap_or_else(|| id.to_string()))
    }

    async fn service_names(mgr: &Manager, cluster: &str) -> Result<HashMap<ServiceId, String>> {
        Ok(mgr
            .services(cluster)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect())
    }

    /// Views of `services` of `cluster` with their units (secrets redacted, as the REST API).
    async fn service_views(
        mgr: &Manager,
        cluster: &str,
        services: Vec<ServiceInstance>,
    ) -> Result<Vec<ServiceInfo>> {
        let statuses = mgr.service_statuses(cluster, services).await?;
        Ok(statuses
            .into_iter()
            .map(|st| {
                let s = st.instance;
                ServiceInfo {
                    units: st.units.into_iter().map(unit_info).collect(),
                    id: s.id.0,
                    name: s.name,
                    stack: s.stack,
                    stack_version: s.stack_version,
                    service: s.service,
                    config_version: s.config_version,
                    configs: to_json(&s.configs),
                    host_overrides: to_json(&s.host_overrides),
                }
            })
            .collect())
    }

    async fn control_job(&self, id: JobId, action: JobAction) -> Result<Job> {
        let mgr = self.mgr()?;
        Ok(match action {
            JobAction::Cancel => mgr.cancel(id).await?,
            JobAction::Pause => mgr.pause(id).await?,
            JobAction::Resume => mgr.resume(id).await?,
            JobAction::Retry => mgr.retry(id).await?,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn cluster_info(c: Cluster) -> ClusterInfo {
    ClusterInfo {
        id: c.id.0,
        name: c.name,
        created_at: c.created_at,
    }
}

fn host_info(h: Host) -> HostInfo {
    HostInfo {
        name: h.name,
        address: h.address,
        reported_address: h.reported_address,
        state: h.state.as_str().to_string(),
        last_heartbeat: h.last_heartbeat,
    }
}

fn job_info(j: Job, cluster: String) -> JobInfo {
    JobInfo {
        id: j.id.0,
        cluster,
        command: j.command,
        state: j.state.as_str().to_string(),
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        stages: Vec::new(),
    }
}

fn version_info(service: &str, v: ConfigVersion) -> ConfigVersionInfo {
    ConfigVersionInfo {
        service: service.to_string(),
        version: v.version,
        author: v.author,
        created_at: v.created_at,
        message: v.message,
        configs: to_json(&v.configs),
        host_overrides: to_json(&v.host_overrides),
    }
}

fn unit_info(u: UnitStatus) -> UnitInfo {
    UnitInfo {
        id: u.unit.id.0,
        service: u.service,
        component: u.unit.component,
        host: u.host,
        state: u.unit.state.as_str().to_string(),
        applied_version: u.unit.applied_version,
        stale: u.stale,
        stale_reason: u.stale_reason,
    }
}

fn diff_info(d: ConfigDiff) -> ConfigDiffInfo {
    ConfigDiffInfo {
        config_type: d.config_type,
        host: d.host,
        property: d.property,
        from: d.from,
        to: d.to,
    }
}

fn snapshot_info(s: Snapshot) -> SnapshotInfo {
    SnapshotInfo {
        name: s.name,
        author: s.author,
        created_at: s.created_at,
        message: s.message,
        versions: s.entries.into_iter().map(|e| (e.name, e.version)).collect(),
    }
}

/// The name of service `id`, or `#id` once it was removed (as the REST API reads it).
fn service_name(names: &HashMap<ServiceId, String>, id: ServiceId) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

fn relation_info(r: Relation, names: &HashMap<ServiceId, String>) -> RelationInfo {
    let name = |id: ServiceId| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    RelationInfo {
        id: r.id.0,
        requirer: name(r.requirer),
        requirer_endpoint: r.requirer_endpoint,
        provider: name(r.provider),
        provider_endpoint: r.provider_endpoint,
        interface: r.interface,
        auto_reconfigure: r.auto_reconfigure,
    }
}

#[async_trait]
impl Backend for Embedded {
    async fn clusters(&self) -> Result<Vec<ClusterInfo>> {
        Ok(self
            .mgr()?
            .clusters()
            .await?
            .into_iter()
            .map(cluster_info)
            .collect())
    }

    async fn create_cluster(&self, name: &str) -> Result<ClusterInfo> {
        Ok(cluster_info(self.mgr()?.create_cluster(name).await?))
    }

    async fn cluster(&self, name: &str) -> Result<ClusterInfo> {
        Ok(cluster_info(self.mgr()?.cluster(name).await?))
    }

    async fn delete_cluster(&self, name: &str) -> Result<()> {
        Ok(self.mgr()?.delete_cluster(name).await?)
    }

    async fn create_join_token(&self, cluster: &str) -> Result<String> {
        Ok(self.mgr()?.create_join_token(cluster).await?)
    }

    async fn hosts(&self, cluster: &str) -> Result<Vec<HostInfo>> {
        Ok(self
            .mgr()?
            .hosts(cluster)
            .await?
            .into_iter()
            .map(host_info)
            .collect())
    }

    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostInfo> {
        Ok(host_info(
            self.mgr()?.add_host(cluster, name, address).await?,
        ))
    }

    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(self.mgr()?.remove_host(cluster, name).await?)
    }

    async fn stacks(&self) -> Result<Vec<StackInfo>> {
        let mgr = self.mgr()?;
        let mut out = Vec::new();
        for r in mgr.list_stacks().await? {
            // A stack that fails to load is listed without services rather than failing all.
            let services = match mgr.stacks().stack(&r.name, Some(&r.version)).await {
                Ok(s) => s.services.keys().cloned().collect(),
                Err(_) => Vec::new(),
            };
            out.push(StackInfo {
                name: r.name,
                version: r.version,
                services,
            });
        }
        Ok(out)
    }

    async fn services(&self, cluster: &str) -> Result<Vec<ServiceInfo>> {
        let mgr = self.mgr()?;
        let services = mgr.services(cluster).await?;
        Self::service_views(&mgr, cluster, services).await
    }

    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceInfo> {
        let mgr = self.mgr()?;
        let services: Vec<ServiceInstance> = mgr
            .services(cluster)
            .await?
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        Self::service_views(&mgr, cluster, services)
            .await?
            .pop()
            .ok_or_else(|| {
                bigmgr_core::Error::not_found("service", format!("{name} (in cluster {cluster})"))
                    .into()
            })
    }

    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceInfo> {
        let name = req.name.clone();
        self.mgr()?
            .add_service_by(cluster, req, &self.author)
            .await?;
        self.service(cluster, &name).await
    }

    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        Ok(self.mgr()?.remove_service(cluster, name).await?)
    }

    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionInfo> {
        let v = self
            .mgr()?
            .update_configs(cluster, service, change, &self.author)
            .await?;
        Ok(version_info(service, v))
    }

    async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersionInfo>> {
        Ok(self
            .mgr()?
            .config_versions(cluster, service)
            .await?
            .into_iter()
            .map(|v| version_info(service, v))
            .collect())
    }

    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionInfo> {
        let v = self
            .mgr()?
            .rollback_configs(cluster, service, to, &self.author, message)
            .await?;
        Ok(version_info(service, v))
    }

    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionInfo> {
        let v = self
            .mgr()?
            .config_version(cluster, service, version)
            .await?;
        Ok(version_info(service, v))
    }

    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffInfo>> {
        Ok(self
            .mgr()?
            .diff_configs(cluster, service, from, to)
            .await?
            .into_iter()
            .map(diff_info)
            .collect())
    }

    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotInfo> {
        let snap = self
            .mgr()?
            .create_snapshot(cluster, name, message, &self.author)
            .await?;
        Ok(snapshot_info(snap))
    }

    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotInfo>> {
        Ok(self
            .mgr()?
            .snapshots(cluster)
            .await?
            .into_iter()
            .map(snapshot_info)
            .collect())
    }

    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionInfo>> {
        let mgr = self.mgr()?;
        let versions = mgr.restore_snapshot(cluster, name, &self.author).await?;
        let names = Self::service_names(&mgr, cluster).await?;
        Ok(versions
            .into_iter()
            .map(|v| {
                let service = service_name(&names, v.service);
                version_info(&service, v)
            })
            .collect())
    }

    async fn units(&self, cluster: &str) -> Result<Vec<UnitInfo>> {
        Ok(self
            .mgr()?
            .unit_statuses(cluster)
            .await?
            .into_iter()
            .map(unit_info)
            .collect())
    }

    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitInfo>> {
        let mgr = self.mgr()?;
        let placed = mgr.add_units(cluster, service, component, hosts).await?;
        let ids: Vec<UnitId> = placed.iter().map(|u| u.id).collect();
        Ok(mgr
            .unit_statuses(cluster)
            .await?
            .into_iter()
            .filter(|u| ids.contains(&u.unit.id))
            .map(unit_info)
            .collect())
    }

    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        Ok(self.mgr()?.remove_unit(cluster, UnitId(unit)).await?)
    }

    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobInfo>> {
        let mgr = self.mgr()?;
        let c = mgr.cluster(cluster).await?;
        Ok(mgr
            .restart_stale(cluster, service, None)
            .await?
            .into_iter()
            .map(|j| job_info(j, c.name.clone()))
            .collect())
    }

    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationInfo> {
        let mgr = self.mgr()?;
        let rel = mgr.relate(cluster, req).await?;
        let names = Self::service_names(&mgr, cluster).await?;
        Ok(relation_info(rel, &names))
    }

    async fn relations(&self, cluster: &str) -> Result<Vec<RelationInfo>> {
        let mgr = self.mgr()?;
        let rels = mgr.relations(cluster).await?;
        let names = Self::service_names(&mgr, cluster).await?;
        Ok(rels.into_iter().map(|r| relation_info(r, &names)).collect())
    }

    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        Ok(self.mgr()?.unrelate(cluster, RelationId(id)).await?)
    }

    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventInfo>> {
        let mgr = self.mgr()?;
        let events = mgr.relation_events(cluster, RelationId(id)).await?;
        let names = Self::service_names(&mgr, cluster).await?;
        Ok(events
            .into_iter()
            .map(|e| RelationEventInfo {
                at: e.at,
                kind: e.kind.as_str().to_string(),
                service: service_name(&names, e.service),
                detail: e.detail,
                job: e.job.map(|j| j.0),
            })
            .collect())
    }

    async fn submit(&self, req: JobRequest) -> Result<JobInfo> {
        let mgr = self.mgr()?;
        let cluster = mgr.cluster(&req.cluster).await?.name;
        Ok(job_info(mgr.submit(req).await?, cluster))
    }

    async fn job(&self, id: i64) -> Result<JobInfo> {
        let mgr = self.mgr()?;
        let detail = mgr.job(JobId(id)).await?;
        let cluster = Self::cluster_name(&mgr, detail.job.cluster).await?;
        let hosts: HashMap<HostId, String> = mgr
            .store()
            .list_hosts(detail.job.cluster)
            .await?
            .into_iter()
            .map(|h| (h.id, h.name))
            .collect();
        let mut tasks: HashMap<StageId, Vec<TaskInfo>> = HashMap::new();
        for t in detail.tasks {
            tasks.entry(t.stage).or_default().push(TaskInfo {
                id: t.id.0,
                host: hosts
                    .get(&t.host)
                    .cloned()
                    .unwrap_or_else(|| t.host.to_string()),
                state: t.state.as_str().to_string(),
                attempt: t.attempt,
                exit_code: t.exit_code,
                message: t.message,
            });
        }
        let mut info = job_info(detail.job, cluster);
        info.stages = detail
            .stages
            .into_iter()
            .map(|st| StageInfo {
                tasks: tasks.remove(&st.id).unwrap_or_default(),
                id: st.id.0,
                name: st.name,
                state: st.state.as_str().to_string(),
            })
            .collect();
        Ok(info)
    }

    async fn jobs(&self, cluster: &str) -> Result<Vec<JobInfo>> {
        let mgr = self.mgr()?;
        let c = mgr.cluster(cluster).await?;
        let filter = JobFilter {
            cluster: Some(c.id),
            ..JobFilter::default()
        };
        // The store lists oldest first; the trait answers newest first.
        Ok(mgr
            .jobs(&filter)
            .await?
            .into_iter()
            .rev()
            .map(|j| job_info(j, c.name.clone()))
            .collect())
    }

    async fn control(&self, id: i64, action: JobAction) -> Result<JobInfo> {
        let job = self.control_job(JobId(id), action).await?;
        let cluster = Self::cluster_name(&self.mgr()?, job.cluster).await?;
        Ok(job_info(job, cluster))
    }

    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineInfo>> {
        let mgr = self.mgr()?;
        Ok(mgr
            .job_task_log(JobId(job), TaskId(task), None)
            .await?
            .into_iter()
            .map(|l| LogLineInfo {
                attempt: l.attempt,
                seq: l.seq,
                stream: l.stream.as_str().to_string(),
                at: l.at,
                line: l.line,
            })
            .collect())
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
