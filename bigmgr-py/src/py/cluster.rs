//! `Cluster`: its hosts, service instances, units, snapshots, jobs and relations.

use super::assistant::{self, PyAnswer, PyAnswerStream};
use super::job::PyJob;
use super::pipeline::PyPipeline;
use super::records::{
    PyAlert, PyConfigVersion, PyExported, PyFinding, PyHealing, PyHost, PyMaintenance, PyPlan,
    PyRelation, PyRelationEvent, PySnapshot, PyUnit, record, records,
};
use super::service::PyService;
use super::{from_py_as, run};
use crate::backend::Backend;
use crate::error::Error;
use bigmgr_core::manager::{AddService, Relate};
use bigmgr_core::model::{HostOverrides, JobOptions, JobRequest, ServiceConfigs, Target, UnitId};
use bigmgr_core::placement::Placement;
use bigmgr_core::request::{SetHealing, SpecBody, StartMaintenance};
use bigmgr_core::view::{ClusterView, JobView, PipelineView};
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A cluster: hosts, service instances, the jobs that act on them, and relations.
#[pyclass(frozen, module = "bigmgr", name = "Cluster")]
pub(crate) struct PyCluster {
    backend: Arc<dyn Backend>,
    /// Its id.
    #[pyo3(get)]
    id: i64,
    /// Its name.
    #[pyo3(get)]
    name: String,
    /// When it was created (ms since the epoch).
    #[pyo3(get)]
    created_at: i64,
}

/// The request for spec `spec`: `secrets` as given, or read here for its references. A spec
/// that does not parse goes as it is, for the server to list its problems.
fn spec_body(
    spec: &str,
    prune: bool,
    secrets: Option<BTreeMap<String, String>>,
) -> PyResult<SpecBody> {
    let secrets = match (secrets, bigmgr_core::spec::parse(spec)) {
        (Some(given), _) => given,
        (None, Ok(parsed)) => {
            parsed
                .local_secrets(std::path::Path::new("."))
                .map_err(|problems| {
                    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    Error::InvalidInput(format!(
                        "the spec's secrets cannot be read here: {}",
                        lines.join("; ")
                    ))
                })?
        }
        (None, Err(_)) => BTreeMap::new(),
    };
    Ok(SpecBody {
        spec: spec.to_string(),
        prune,
        secrets,
    })
}

impl PyCluster {
    pub(crate) fn new(backend: Arc<dyn Backend>, c: ClusterView) -> PyCluster {
        PyCluster {
            backend,
            id: c.id.0,
            name: c.name,
            created_at: c.created_at,
        }
    }

    fn job(&self, j: JobView) -> PyJob {
        PyJob::new(self.backend.clone(), j)
    }

    fn pipeline_of(&self, p: PipelineView) -> PyPipeline {
        PyPipeline::new(self.backend.clone(), &self.name, p)
    }
}

#[pymethods]
impl PyCluster {
    /// The cluster's hosts.
    fn hosts(&self, py: Python<'_>) -> PyResult<Vec<PyHost>> {
        Ok(records(run(py, self.backend.hosts(&self.name))?))
    }

    /// Adds a host: `name` (unique across clusters) and the address its services bind to.
    /// In an `Embedded`, the in-process agent of that name serves it.
    fn add_host(&self, py: Python<'_>, name: &str, address: &str) -> PyResult<PyHost> {
        Ok(record(&run(
            py,
            self.backend.add_host(&self.name, name, address),
        )?))
    }

    /// Removes a host; refused (`Conflict`) while units are placed on it.
    fn remove_host(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        run(py, self.backend.remove_host(&self.name, name))
    }

    /// Every unit of the cluster (of every service), with whether it is stale.
    fn units(&self, py: Python<'_>) -> PyResult<Vec<PyUnit>> {
        Ok(records(run(py, self.backend.units(&self.name))?))
    }

    /// Removes a unit by id; refused (`Conflict`) while it is STARTED, in an unfinished job,
    /// or the last its component needs. Related services get `broken`.
    fn remove_unit(&self, py: Python<'_>, unit_id: i64) -> PyResult<()> {
        run(py, self.backend.remove_unit(&self.name, unit_id))
    }

    /// Takes a snapshot `name` (unique in the cluster): every service's current config
    /// version, to `restore(name)` later.
    #[pyo3(signature = (name, message = ""))]
    fn snapshot(&self, py: Python<'_>, name: &str, message: &str) -> PyResult<PySnapshot> {
        Ok(record(&run(
            py,
            self.backend.create_snapshot(&self.name, name, message),
        )?))
    }

    /// The cluster's snapshots, oldest first.
    fn snapshots(&self, py: Python<'_>) -> PyResult<Vec<PySnapshot>> {
        Ok(records(run(py, self.backend.snapshots(&self.name))?))
    }

    /// Restores snapshot `name`: every service that still exists and changed since gets a new
    /// config version equal to its version in the snapshot (its units turn stale until
    /// `restart_stale()`). Returns the new versions (empty if nothing changed).
    fn restore(&self, py: Python<'_>, name: &str) -> PyResult<Vec<PyConfigVersion>> {
        Ok(records(run(
            py,
            self.backend.restore_snapshot(&self.name, name),
        )?))
    }

    /// A new join token (`bmj_…`): an agent started with it joins this cluster as a new host.
    fn join_token(&self, py: Python<'_>) -> PyResult<String> {
        run(py, self.backend.create_join_token(&self.name))
    }

    /// The cluster's service instances, each with its units.
    fn services(&self, py: Python<'_>) -> PyResult<Vec<PyService>> {
        Ok(run(py, self.backend.services(&self.name))?
            .into_iter()
            .map(|s| PyService::new(self.backend.clone(), &self.name, s))
            .collect())
    }

    /// The service instance of that name (`NotFound` if there is none).
    fn service(&self, py: Python<'_>, name: &str) -> PyResult<PyService> {
        let s = run(py, self.backend.service(&self.name, name))?;
        Ok(PyService::new(self.backend.clone(), &self.name, s))
    }

    /// Adds a service instance `name` of the stack's `service` definition, with units placed
    /// as `placement` says: hosts (`{"hello_server": ["h1", "h2"]}`), or a count the server
    /// places on the least loaded hosts by their averaged heartbeats (`{"hello_server": 2}`,
    /// or `{"count": 2, "among": [...], "match": "worker-*"}`). `configs` are values over the
    /// stack's defaults (`{"hello.conf": {"greeting": "hi"}}`), `host_overrides` win over them
    /// per host (`{"h1": {"hello.conf": {...}}}`); `version` is the stack version (default:
    /// the newest). Nothing is written unless every check passes (`InvalidInput`, `NotFound`,
    /// `Conflict`).
    #[pyo3(signature = (name, stack, service, placement, configs = None, host_overrides = None, version = None))]
    #[allow(clippy::too_many_arguments)]
    fn add_service(
        &self,
        py: Python<'_>,
        name: &str,
        stack: &str,
        service: &str,
        placement: &Bound<'_, PyAny>,
        configs: Option<&Bound<'_, PyAny>>,
        host_overrides: Option<&Bound<'_, PyAny>>,
        version: Option<String>,
    ) -> PyResult<PyService> {
        let placement: BTreeMap<String, Placement> = from_py_as(
            placement,
            "placement",
            "{component: [host, ...] or a count or {\"count\": n, \"among\": [...], \"match\": pattern}}",
        )?;
        let configs: ServiceConfigs = match configs {
            Some(c) => from_py_as(c, "configs", "{config type: {property: value}}")?,
            None => ServiceConfigs::new(),
        };
        let host_overrides: HostOverrides = match host_overrides {
            Some(h) => from_py_as(
                h,
                "host_overrides",
                "{host: {config type: {property: value}}}",
            )?,
            None => HostOverrides::new(),
        };
        let req = AddService {
            name: name.to_string(),
            stack: stack.to_string(),
            version,
            service: service.to_string(),
            placement,
            configs,
            host_overrides,
        };
        let s = run(py, self.backend.add_service(&self.name, req))?;
        Ok(PyService::new(self.backend.clone(), &self.name, s))
    }

    /// Removes a service instance with its units; refused (`Conflict`) while a unit is
    /// STARTED or a job on it is unfinished.
    fn remove_service(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        run(py, self.backend.remove_service(&self.name, name))
    }

    /// Submits a job running `command` (`deploy`, `start`, `stop`, `restart`, a custom
    /// command …) on one target: a `service`, a `component` (`"svc/comp"`), `hosts` (names)
    /// or `units` (ids); no target means the whole cluster. `parallelism` caps the tasks
    /// running at once, `batch_size` rolls each stage in batches, `failure_tolerance` is how
    /// many failed tasks a stage tolerates, `pipelined` lets a host go on without waiting for
    /// the whole stage, `reason` says why it runs (the job list shows it). Returns the queued
    /// job; `job.wait()` waits for it.
    #[pyo3(signature = (command, *, service = None, component = None, hosts = None, units = None, parallelism = None, batch_size = None, failure_tolerance = 0, pipelined = false, reason = None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        command: &str,
        service: Option<String>,
        component: Option<String>,
        hosts: Option<Vec<String>>,
        units: Option<Vec<i64>>,
        parallelism: Option<u32>,
        batch_size: Option<u32>,
        failure_tolerance: u32,
        pipelined: bool,
        reason: Option<String>,
    ) -> PyResult<PyJob> {
        let given = [
            service.is_some(),
            component.is_some(),
            hosts.is_some(),
            units.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::InvalidInput(
                "give at most one target: service, component, hosts or units".into(),
            )
            .into());
        }
        let target = if let Some(s) = service {
            Target::Service(s)
        } else if let Some(c) = component {
            let Some((service, component)) = c.split_once('/') else {
                return Err(Error::InvalidInput(format!(
                    "component '{c}' must be written service/component (hello/hello_server)"
                ))
                .into());
            };
            Target::Component {
                service: service.to_string(),
                component: component.to_string(),
            }
        } else if let Some(h) = hosts {
            Target::Hosts(h)
        } else if let Some(u) = units {
            Target::Units(u.into_iter().map(UnitId).collect())
        } else {
            Target::Cluster
        };
        let req = JobRequest {
            cluster: self.name.clone(),
            target,
            command: command.to_string(),
            options: JobOptions {
                parallelism,
                batch_size,
                failure_tolerance,
                pipelined,
                reason,
            },
        };
        Ok(self.job(run(py, self.backend.submit(req))?))
    }

    /// The cluster's jobs, newest first (without their stages: `job.refresh()` loads them).
    fn jobs(&self, py: Python<'_>) -> PyResult<Vec<PyJob>> {
        Ok(run(py, self.backend.jobs(&self.name))?
            .into_iter()
            .rev()
            .map(|j| self.job(j))
            .collect())
    }

    /// Relates two service instances (`"prom"` or `"prom:metrics"` on each side; either way
    /// round). With `auto_reconfigure`, a change on one side reconfigures the other.
    #[pyo3(signature = (requirer, provider, auto_reconfigure = true))]
    fn relate(
        &self,
        py: Python<'_>,
        requirer: &str,
        provider: &str,
        auto_reconfigure: bool,
    ) -> PyResult<PyRelation> {
        let req = Relate {
            requirer: requirer.to_string(),
            provider: provider.to_string(),
            auto_reconfigure,
        };
        Ok(record(&run(py, self.backend.relate(&self.name, req))?))
    }

    /// What applying cluster spec `spec` (TOML text, docs/spec.md) to this cluster would
    /// change; changes nothing. `prune`: also plan removing what the spec does not name.
    /// `secrets`: the values of its secret references by `env:NAME` / `file:PATH`; if None
    /// they are read here (the environment, files relative to the working directory).
    #[pyo3(signature = (spec, prune = false, secrets = None))]
    fn plan(
        &self,
        py: Python<'_>,
        spec: &str,
        prune: bool,
        secrets: Option<BTreeMap<String, String>>,
    ) -> PyResult<PyPlan> {
        let body = spec_body(spec, prune, secrets)?;
        Ok(record(&run(py, self.backend.plan_spec(&self.name, body))?))
    }

    /// Applies cluster spec `spec` (admins): adds and changes what it says, then submits the
    /// jobs (deploy what is new, reconfigure what is stale). With `prune`, what it does not
    /// name is stopped and removed first (never hosts). Returns `(Plan, [Job])`: what it
    /// changed and the jobs to wait for. `secrets` as for `plan`.
    #[pyo3(signature = (spec, prune = false, secrets = None))]
    fn apply(
        &self,
        py: Python<'_>,
        spec: &str,
        prune: bool,
        secrets: Option<BTreeMap<String, String>>,
    ) -> PyResult<(PyPlan, Vec<PyJob>)> {
        let body = spec_body(spec, prune, secrets)?;
        let applied = run(py, self.backend.apply_spec(&self.name, body))?;
        let jobs = applied.jobs.into_iter().map(|j| self.job(j)).collect();
        Ok((record(&applied.plan), jobs))
    }

    /// The cluster written as a spec (`Exported.spec`); secret values become environment
    /// references listed in `Exported.references`.
    fn export(&self, py: Python<'_>) -> PyResult<PyExported> {
        Ok(record(&run(py, self.backend.export_spec(&self.name))?))
    }

    /// Creates a pipeline from `definition` (TOML, docs/pipelines.md; admins). A definition
    /// with problems raises `InvalidInput` listing each with its line, and creates nothing.
    fn create_pipeline(&self, py: Python<'_>, definition: &str) -> PyResult<PyPipeline> {
        let p = run(py, self.backend.create_pipeline(&self.name, definition))?;
        Ok(self.pipeline_of(p))
    }

    /// The cluster's pipelines, oldest first.
    fn pipelines(&self, py: Python<'_>) -> PyResult<Vec<PyPipeline>> {
        let all = run(py, self.backend.pipelines(&self.name))?;
        Ok(all.into_iter().map(|p| self.pipeline_of(p)).collect())
    }

    /// The pipeline `name` (`NotFound` if there is none).
    fn pipeline(&self, py: Python<'_>, name: &str) -> PyResult<PyPipeline> {
        let p = run(py, self.backend.pipeline(&self.name, name))?;
        Ok(self.pipeline_of(p))
    }

    /// Removes pipeline `name` (admins), which must not be running.
    fn remove_pipeline(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        run(py, self.backend.remove_pipeline(&self.name, name))
    }

    /// The cluster's alerts as they stand; only those not OK with `firing=True`.
    #[pyo3(signature = (firing = false))]
    fn alerts(&self, py: Python<'_>, firing: bool) -> PyResult<Vec<PyAlert>> {
        Ok(records(run(py, self.backend.alerts(&self.name, firing))?))
    }

    /// What the advisor finds wrong in the cluster, most severe first: everything, or only
    /// what is about one `host`, one `service` instance or one `job` ("explain this
    /// failure"). Findings only read; their `actions` are requests to run after checking them.
    #[pyo3(signature = (host = None, service = None, job = None))]
    fn advice(
        &self,
        py: Python<'_>,
        host: Option<String>,
        service: Option<String>,
        job: Option<i64>,
    ) -> PyResult<Vec<PyFinding>> {
        Ok(records(run(
            py,
            self.backend.advice(&self.name, host, service, job),
        )?))
    }

    /// Asks the assistant `question` about this cluster and waits for the whole answer: an
    /// `Answer` with its text, the tools it called, what it proposed (`Proposal`s, pending
    /// until you confirm them) and `error` if the model provider failed. A new thread unless
    /// `thread` (an `Answer`'s `thread`) goes on in one; `provider` default: the default one.
    /// Needs a server (`Client`); Ctrl-C cancels the answer.
    #[pyo3(signature = (question, thread = None, provider = None))]
    fn ask(
        &self,
        py: Python<'_>,
        question: &str,
        thread: Option<i64>,
        provider: Option<String>,
    ) -> PyResult<PyAnswer> {
        let (thread, rx) = assistant::start(
            py,
            &self.backend,
            &self.name,
            question,
            thread,
            provider.as_deref(),
        )?;
        assistant::collect(py, &self.backend, thread, rx)
    }

    /// `ask`, but an iterator of the answer's events as they stream: dicts `{"event":
    /// "token"|"tool_call"|"tool_result"|"proposal"|"done"|"error", "data": {...}}` (the REST
    /// API's), ending after `done` or `error`; its `thread` is the thread's id.
    #[pyo3(signature = (question, thread = None, provider = None))]
    fn ask_stream(
        &self,
        py: Python<'_>,
        question: &str,
        thread: Option<i64>,
        provider: Option<String>,
    ) -> PyResult<PyAnswerStream> {
        let (thread, rx) = assistant::start(
            py,
            &self.backend,
            &self.name,
            question,
            thread,
            provider.as_deref(),
        )?;
        Ok(assistant::stream(thread, rx))
    }

    /// Puts one `host` or one `service` in maintenance for a while (`for_`: `"2h"`): its
    /// alerts notify no one and self-healing leaves its units alone until it ends.
    #[pyo3(signature = (*, host = None, service = None, for_ = None, reason = String::new()))]
    fn silence(
        &self,
        py: Python<'_>,
        host: Option<String>,
        service: Option<String>,
        for_: Option<String>,
        reason: String,
    ) -> PyResult<PyMaintenance> {
        let req = StartMaintenance {
            host,
            service,
            duration: for_,
            until: None,
            reason,
        };
        Ok(record(&run(
            py,
            self.backend.start_maintenance(&self.name, req),
        )?))
    }

    /// The maintenance windows in progress.
    fn maintenance(&self, py: Python<'_>) -> PyResult<Vec<PyMaintenance>> {
        Ok(records(run(py, self.backend.maintenance(&self.name))?))
    }

    /// Ends the maintenance window of that id now.
    fn unsilence(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        run(py, self.backend.end_maintenance(&self.name, id))
    }

    /// A service's self-healing policy; with `restart` given, sets it first (`grace`: `"30s"`,
    /// `max_per_hour`: restarts of one unit an hour).
    #[pyo3(signature = (service, *, restart = None, grace = None, max_per_hour = None))]
    fn healing(
        &self,
        py: Python<'_>,
        service: &str,
        restart: Option<bool>,
        grace: Option<String>,
        max_per_hour: Option<u32>,
    ) -> PyResult<PyHealing> {
        let view = match restart {
            Some(restart) => {
                let req = SetHealing {
                    restart,
                    grace,
                    max_per_hour,
                };
                run(py, self.backend.set_healing(&self.name, service, req))?
            }
            None => run(py, self.backend.healing(&self.name, service))?,
        };
        Ok(record(&view))
    }

    /// The cluster's relations.
    fn relations(&self, py: Python<'_>) -> PyResult<Vec<PyRelation>> {
        Ok(records(run(py, self.backend.relations(&self.name))?))
    }

    /// Removes the relation of that id.
    fn unrelate(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        run(py, self.backend.unrelate(&self.name, id))
    }

    /// The events of relation `relation_id` (`joined`, `changed`, `broken`), oldest first; a
    /// removed relation keeps its events.
    fn relation_events(&self, py: Python<'_>, relation_id: i64) -> PyResult<Vec<PyRelationEvent>> {
        Ok(records(run(
            py,
            self.backend.relation_events(&self.name, relation_id),
        )?))
    }

    /// Applies pending config changes (of one service, or all): a rolling `reconfigure` of
    /// the stale started units and a `configure` of the others. Returns the jobs started
    /// (empty if nothing is stale).
    #[pyo3(signature = (service = None))]
    fn restart_stale(&self, py: Python<'_>, service: Option<String>) -> PyResult<Vec<PyJob>> {
        Ok(run(
            py,
            self.backend.restart_stale(&self.name, service.as_deref()),
        )?
        .into_iter()
        .map(|j| self.job(j))
        .collect())
    }

    fn __repr__(&self) -> String {
        format!("<Cluster {}>", self.name)
    }
}
