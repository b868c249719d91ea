//! The read-only records the backend answers, as Python classes: `Host`, `Unit`,
//! `ConfigVersion`, `ConfigDiff`, `Snapshot`, `Relation`, `RelationEvent`, `Stack`, `Stage`,
//! `Task`, `LogLine`, `Alert`, `Finding`, `Plan` and `Exported`. Each is read from its core view by one helper, [`record`]: a record's
//! attributes are its view's fields of the same name, as the REST API's JSON has them.

use super::to_py;
use bigmgr_core::view::{LogLineView, ServiceUnitView, StackView, TaskView};
use pyo3::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// A record read from view `view`: the fields of the view's JSON that the record has (ids as
/// numbers, states as their text).
pub(crate) fn record<R: DeserializeOwned>(view: &impl serde::Serialize) -> R {
    let json = serde_json::to_value(view).expect("a view serialises to JSON");
    serde_json::from_value(json).expect("a record has the fields of its view")
}

/// A JSON value of a record (configs, a diff's values), which Python reads as dicts, lists,
/// str, int, float, bool or None (`null`: not set).
#[derive(Deserialize, Default, Clone)]
#[serde(transparent)]
pub(crate) struct Json(Value);

impl Json {
    /// Value `v` as JSON (`null` if it has no JSON form).
    pub(crate) fn of(v: &impl serde::Serialize) -> Json {
        Json(serde_json::to_value(v).unwrap_or(Value::Null))
    }

    /// The value for a repr: its JSON, or `(unset)`.
    fn or_unset(&self) -> String {
        match &self.0 {
            Value::Null => "(unset)".into(),
            v => v.to_string(),
        }
    }
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }
}

/// The records of views `views`, in order.
pub(crate) fn records<R: DeserializeOwned>(views: Vec<impl serde::Serialize>) -> Vec<R> {
    views.iter().map(record).collect()
}

/// A host of a cluster.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Host")]
#[derive(Deserialize)]
pub(crate) struct PyHost {
    /// Its name.
    name: String,
    /// The address its services bind to.
    address: String,
    /// An address its agent reported that an admin has not accepted yet, or `None`.
    reported_address: Option<String>,
    /// `WAITING` (no agent registered for it yet), `ONLINE` or `LOST`.
    state: String,
    /// Its last heartbeat (ms since the epoch), if any.
    last_heartbeat: Option<i64>,
}

#[pymethods]
impl PyHost {
    fn __repr__(&self) -> String {
        format!("<Host {} {}: {}>", self.name, self.address, self.state)
    }
}

/// A unit: one component of a service instance on one host.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Unit")]
#[derive(Deserialize)]
pub(crate) struct PyUnit {
    /// Its id (`cluster.run(..., units=[id])` targets it).
    id: i64,
    /// Its service instance's name (a service's own list of units leaves it to the service).
    #[serde(default)]
    service: String,
    /// The component.
    component: String,
    /// The host's name.
    host: String,
    /// `NEW`, `INSTALLED`, `STARTED`, `STOPPED`, `FAILED` or `REMOVED`.
    state: String,
    /// The config version its last configure applied.
    applied_version: Option<u32>,
    /// Its files differ from what they should be (a restart is required).
    stale: bool,
    /// Why, when stale.
    stale_reason: Option<String>,
}

impl PyUnit {
    /// Unit `u` of service instance `service`, as the service lists it.
    pub(crate) fn of_service(service: &str, u: &ServiceUnitView) -> PyUnit {
        PyUnit {
            service: service.to_string(),
            ..record(u)
        }
    }
}

#[pymethods]
impl PyUnit {
    fn __repr__(&self) -> String {
        format!(
            "<Unit {} {}/{} on {}: {}{}>",
            self.id,
            self.service,
            self.component,
            self.host,
            self.state,
            if self.stale { " (stale)" } else { "" }
        )
    }
}

/// One version of a service's configs.
#[pyclass(frozen, get_all, module = "bigmgr", name = "ConfigVersion")]
#[derive(Deserialize)]
pub(crate) struct PyConfigVersion {
    /// The service instance.
    service: String,
    /// Its number, from 1.
    version: u32,
    /// Who made it.
    author: String,
    /// When (ms since the epoch).
    created_at: i64,
    /// Why.
    message: String,
    /// The service layer: `{config type: {property: value}}` (secrets read `********`).
    configs: Json,
    /// The host layer: `{host: {config type: {property: value}}}`.
    host_overrides: Json,
}

#[pymethods]
impl PyConfigVersion {
    fn __repr__(&self) -> String {
        format!(
            "<ConfigVersion {} v{} by {}: {:?}>",
            self.service, self.version, self.author, self.message
        )
    }
}

/// One property that differs between two config versions of a service.
#[pyclass(frozen, get_all, module = "bigmgr", name = "ConfigDiff")]
#[derive(Deserialize)]
pub(crate) struct PyConfigDiff {
    /// The config type (`hello.conf`).
    config_type: String,
    /// The host, for a host override; `None` for the service layer.
    host: Option<String>,
    /// The property.
    property: String,
    /// Its value in the earlier version (`None`: not set there, so the stack's default).
    #[serde(rename = "from", default)]
    from_value: Json,
    /// Its value in the later version (`None`: not set there, so the stack's default).
    #[serde(rename = "to", default)]
    to_value: Json,
}

#[pymethods]
impl PyConfigDiff {
    fn __repr__(&self) -> String {
        let host = match &self.host {
            Some(h) => format!(" on {h}"),
            None => String::new(),
        };
        format!(
            "<ConfigDiff {}/{}{}: {} -> {}>",
            self.config_type,
            self.property,
            host,
            self.from_value.or_unset(),
            self.to_value.or_unset()
        )
    }
}

/// A snapshot: a named set of config versions across a cluster's services.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Snapshot")]
#[derive(Deserialize)]
pub(crate) struct PySnapshot {
    /// Its name, unique in the cluster.
    name: String,
    /// Who took it.
    author: String,
    /// When (ms since the epoch).
    created_at: i64,
    /// Why.
    message: String,
    /// Service instance name → its config version then.
    versions: BTreeMap<String, u32>,
}

#[pymethods]
impl PySnapshot {
    fn __repr__(&self) -> String {
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(s, v)| format!("{s} v{v}"))
            .collect();
        format!(
            "<Snapshot {} by {}: {}>",
            self.name,
            self.author,
            versions.join(", ")
        )
    }
}

/// An alert as it stands: what a check found about a host, service instance or unit.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Alert")]
#[derive(Deserialize)]
pub(crate) struct PyAlert {
    /// Its id.
    id: i64,
    /// The definition (`host_lost`, `unit_down`, `unit_stale`, `job_failed`, …).
    definition: String,
    /// OK, WARNING, CRITICAL or UNKNOWN.
    state: String,
    /// What the last check said.
    text: String,
    /// The host it is about, if any.
    host: Option<String>,
    /// The service instance it is about, if any.
    service: Option<String>,
    /// The unit it is about (`component@host`), if any.
    unit: Option<String>,
    /// Since when it is in this state (ms since the epoch).
    since: i64,
    /// Why it notifies no one now (a maintenance window), if so.
    #[serde(default)]
    silenced: Option<String>,
}

#[pymethods]
impl PyAlert {
    fn __repr__(&self) -> String {
        format!(
            "<Alert {} {} {}: {}>",
            self.id, self.state, self.definition, self.text
        )
    }
}

/// What the advisor found: a severity, a plain title, the evidence and what to do, with the
/// requests that act on it (run only after checking them; the advisor runs nothing).
#[pyclass(frozen, get_all, module = "bigmgr", name = "Finding")]
#[derive(Deserialize)]
pub(crate) struct PyFinding {
    /// The rule that found it (`task.port_in_use`, `host.lost`, `replica.not_replicating` …).
    rule: String,
    /// CRITICAL, WARNING or INFO.
    severity: String,
    /// What is wrong, in plain words.
    title: String,
    /// What shows it: names, ids, the log lines or check output that matter.
    evidence: Vec<String>,
    /// What to look at or do.
    hint: String,
    /// The host it is about, if any.
    host: Option<String>,
    /// The service instance it is about, if any.
    service: Option<String>,
    /// The job it is about, if any.
    job: Option<i64>,
    /// The task it is about, if any.
    task: Option<i64>,
    /// The suggested requests: dicts with `title`, `method`, `path` (under `/api/v1`) and
    /// `body` (a dict or None).
    actions: Json,
}

#[pymethods]
impl PyFinding {
    fn __repr__(&self) -> String {
        format!("<Finding {} {}: {}>", self.severity, self.rule, self.title)
    }
}

/// A relation between two service instances of a cluster.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Relation")]
#[derive(Deserialize)]
pub(crate) struct PyRelation {
    /// Its id.
    id: i64,
    /// The requiring service instance.
    requirer: String,
    /// Its endpoint.
    requirer_endpoint: String,
    /// The providing service instance.
    provider: String,
    /// Its endpoint.
    provider_endpoint: String,
    /// The interface both endpoints share.
    interface: String,
    /// Whether a change on one side reconfigures the other.
    auto_reconfigure: bool,
}

#[pymethods]
impl PyRelation {
    fn __repr__(&self) -> String {
        format!(
            "<Relation {} {}:{} -> {}:{} ({})>",
            self.id,
            self.requirer,
            self.requirer_endpoint,
            self.provider,
            self.provider_endpoint,
            self.interface
        )
    }
}

/// An event on a relation, received by one of its services (whose configs re-render).
#[pyclass(frozen, get_all, module = "bigmgr", name = "RelationEvent")]
#[derive(Deserialize)]
pub(crate) struct PyRelationEvent {
    /// When (ms since the epoch).
    at: i64,
    /// `joined`, `changed` or `broken`.
    kind: String,
    /// The service instance that received it.
    service: String,
    /// What changed (`hello_server/h1 at 127.0.0.2`).
    detail: String,
    /// The id of the automatic reconfigure job it started, if any.
    job: Option<i64>,
}

#[pymethods]
impl PyRelationEvent {
    fn __repr__(&self) -> String {
        let job = match self.job {
            Some(j) => format!(" (job {j})"),
            None => String::new(),
        };
        format!(
            "<RelationEvent {} to {}: {:?}{}>",
            self.kind, self.service, self.detail, job
        )
    }
}

/// A stack version offered, with its services' names.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Stack")]
pub(crate) struct PyStack {
    /// The stack's name.
    name: String,
    /// The version.
    version: String,
    /// Its services' names.
    services: Vec<String>,
}

impl From<StackView> for PyStack {
    fn from(s: StackView) -> PyStack {
        let services = s.services.into_iter().map(|d| d.name).collect();
        PyStack {
            name: s.name,
            version: s.version,
            services,
        }
    }
}

#[pymethods]
impl PyStack {
    fn __repr__(&self) -> String {
        format!(
            "<Stack {} {}: {}>",
            self.name,
            self.version,
            self.services.join(", ")
        )
    }
}

/// A stage of a job: one command on one component (`START hello/hello_server`), one task
/// per unit.
#[pyclass(frozen, module = "bigmgr", name = "Stage")]
#[derive(Deserialize)]
pub(crate) struct PyStage {
    /// Its id.
    #[pyo3(get)]
    id: i64,
    /// `COMMAND service/component`.
    #[pyo3(get)]
    name: String,
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED` or `CANCELED`.
    #[pyo3(get)]
    state: String,
    /// Its tasks' views.
    #[serde(rename = "tasks")]
    task_views: Vec<TaskView>,
}

#[pymethods]
impl PyStage {
    /// Its tasks, one per unit.
    #[getter]
    fn tasks(&self) -> Vec<PyTask> {
        records(self.task_views.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "<Stage {} {}: {} ({} task(s))>",
            self.id,
            self.name,
            self.state,
            self.task_views.len()
        )
    }
}

/// A task: one unit's part of a stage, run by its host's agent.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Task")]
#[derive(Deserialize)]
pub(crate) struct PyTask {
    /// Its id.
    id: i64,
    /// The host it runs on.
    host: String,
    /// `PENDING`, `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `CANCELED`.
    state: String,
    /// The current attempt, from 1.
    attempt: u32,
    /// The script's exit code, once finished.
    exit_code: Option<i32>,
    /// Why it ended as it did, where there is more to say than the state.
    message: Option<String>,
}

#[pymethods]
impl PyTask {
    fn __repr__(&self) -> String {
        let mut s = format!("<Task {} on {}: {}", self.id, self.host, self.state);
        if let Some(c) = self.exit_code {
            s.push_str(&format!(" (exit {c})"));
        }
        s.push('>');
        s
    }
}

/// One line a task's script wrote.
#[pyclass(frozen, get_all, module = "bigmgr", name = "LogLine")]
#[derive(Deserialize)]
pub(crate) struct PyLogLine {
    /// The task (the line's view leaves it to the task's).
    #[serde(default)]
    task: i64,
    /// The host it ran on (likewise).
    #[serde(default)]
    host: String,
    /// The attempt that wrote it.
    attempt: u32,
    /// `stdout` or `stderr`.
    stream: String,
    /// When it was read (ms since the epoch).
    at: i64,
    /// The text.
    line: String,
}

impl PyLogLine {
    /// Line `l` of task `task`.
    pub(crate) fn new(task: &TaskView, l: &LogLineView) -> PyLogLine {
        PyLogLine {
            task: task.id.0,
            host: task.host.clone(),
            ..record(l)
        }
    }
}

#[pymethods]
impl PyLogLine {
    fn __repr__(&self) -> String {
        format!(
            "<LogLine task {} on {} ({}): {:?}>",
            self.task, self.host, self.stream, self.line
        )
    }

    fn __str__(&self) -> String {
        format!("[{} task {}] {}", self.host, self.task, self.line)
    }
}

/// A maintenance window: a host's or a service's alerts notify no one until it ends.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Maintenance")]
#[derive(Deserialize)]
pub(crate) struct PyMaintenance {
    /// Its id.
    id: i64,
    /// The host in maintenance, or
    host: Option<String>,
    /// the service instance in maintenance.
    service: Option<String>,
    /// When it ends (ms since the epoch).
    until: i64,
    /// Why.
    reason: String,
    /// Who started it.
    by: String,
}

#[pymethods]
impl PyMaintenance {
    fn __repr__(&self) -> String {
        let what = self.host.as_ref().map_or_else(
            || format!("service {}", self.service.clone().unwrap_or_default()),
            |h| format!("host {h}"),
        );
        format!("<Maintenance {} of {what} until {}>", self.id, self.until)
    }
}

/// A service's self-healing policy, and how it fares.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Healing")]
#[derive(Deserialize)]
pub(crate) struct PyHealing {
    /// Whether down units are restarted.
    restart: bool,
    /// How long a unit is down before the first restart (`30s`).
    grace: String,
    /// At most this many restarts of one unit an hour.
    max_per_hour: u32,
    /// Restarts of the service's units in the last hour.
    attempts_last_hour: u32,
    /// Whether it gave up on one of its units.
    gave_up: bool,
}

#[pymethods]
impl PyHealing {
    fn __repr__(&self) -> String {
        format!(
            "<Healing restart={} grace={} max_per_hour={}>",
            self.restart, self.grace, self.max_per_hour
        )
    }
}

/// What applying a cluster spec would change (`Cluster.plan`), or did (`Applied.plan`):
/// lists of dicts with the REST API's fields. Empty (falsy) when the cluster is as the spec
/// says.
#[pyclass(frozen, get_all, module = "bigmgr", name = "Plan")]
#[derive(Deserialize)]
pub(crate) struct PyPlan {
    /// The cluster does not exist yet: an apply creates it.
    create_cluster: bool,
    /// Hosts to add: dicts with `name` and `address`.
    hosts_to_add: Json,
    /// Service instances to add.
    services_to_add: Vec<String>,
    /// Service instances to remove (with prune).
    services_to_remove: Vec<String>,
    /// Units to add: dicts with `service`, `component` and `host`.
    units_to_add: Json,
    /// Units to remove (with prune).
    units_to_remove: Json,
    /// Property changes: dicts with `service`, `config_type`, `host` (None: the service
    /// layer), `property`, `from` and `to` (secrets as `********`).
    configs: Json,
    /// Relations to add: dicts with `requirer`, `requirer_endpoint`, `provider`,
    /// `provider_endpoint`.
    relations_to_add: Json,
    /// Relations to remove (with prune).
    relations_to_remove: Json,
    /// The jobs an apply runs, in order: dicts with `command`, `service`, `hosts`, `why`.
    jobs: Json,
    /// What an apply cannot change (it refuses while there is any).
    problems: Vec<String>,
    /// What the cluster has and the spec does not name, kept without prune.
    kept: Vec<String>,
}

impl PyPlan {
    fn changes(&self) -> usize {
        let n = |j: &Json| j.0.as_array().map_or(0, Vec::len);
        usize::from(self.create_cluster)
            + n(&self.hosts_to_add)
            + self.services_to_add.len()
            + self.services_to_remove.len()
            + n(&self.units_to_add)
            + n(&self.units_to_remove)
            + n(&self.configs)
            + n(&self.relations_to_add)
            + n(&self.relations_to_remove)
            + n(&self.jobs)
    }
}

#[pymethods]
impl PyPlan {
    /// True if an apply would change something.
    fn __bool__(&self) -> bool {
        self.changes() > 0
    }

    fn __repr__(&self) -> String {
        format!("<Plan: {} change(s)>", self.changes())
    }
}

/// A cluster written as a spec (`Cluster.export`).
#[pyclass(frozen, get_all, module = "bigmgr", name = "Exported")]
#[derive(Deserialize)]
pub(crate) struct PyExported {
    /// The spec, as TOML.
    spec: String,
    /// The references standing for its secret values (`env:NAME`): set them (or pass
    /// `secrets=`) where it is applied.
    references: Vec<String>,
}

#[pymethods]
impl PyExported {
    fn __repr__(&self) -> String {
        format!(
            "<Exported: {} line(s), {} secret reference(s)>",
            self.spec.lines().count(),
            self.references.len()
        )
    }
}
