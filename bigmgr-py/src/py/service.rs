//! `Service` (a service instance, refreshable, with its config history), `Unit`,
//! `ConfigVersion` and `ConfigDiff`.

use super::{from_py_as, run, to_py};
use crate::backend::Backend;
use bigmgr_core::manager::ConfigChange;
use bigmgr_core::view::{ConfigDiffView, ConfigVersionView, ServiceView, UnitStatusView};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

/// A service instance of a cluster with its units; its properties are as of the last
/// `refresh()`.
#[pyclass(frozen, module = "bigmgr", name = "Service")]
pub(crate) struct PyService {
    backend: Arc<dyn Backend>,
    cluster: String,
    info: Mutex<ServiceView>,
}

impl PyService {
    pub(crate) fn new(backend: Arc<dyn Backend>, cluster: &str, info: ServiceView) -> PyService {
        PyService {
            backend,
            cluster: cluster.to_string(),
            info: Mutex::new(info),
        }
    }

    fn info(&self) -> ServiceView {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn name(&self) -> String {
        self.info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .name
            .clone()
    }
}

#[pymethods]
impl PyService {
    /// Its id.
    #[getter]
    fn id(&self) -> i64 {
        self.info().id.0
    }

    /// Its name in the cluster.
    #[getter(name)]
    fn get_name(&self) -> String {
        self.name()
    }

    /// Its cluster's name.
    #[getter]
    fn cluster(&self) -> String {
        self.cluster.clone()
    }

    /// The stack.
    #[getter]
    fn stack(&self) -> String {
        self.info().stack
    }

    /// The stack version.
    #[getter]
    fn stack_version(&self) -> String {
        self.info().stack_version
    }

    /// The service definition in the stack (`zookeeper`).
    #[getter]
    fn definition(&self) -> String {
        self.info().service
    }

    /// The desired config version.
    #[getter]
    fn config_version(&self) -> u32 {
        self.info().config_version
    }

    /// Its config values over the stack's defaults: `{config type: {property: value}}`
    /// (secrets read `********`).
    #[getter]
    fn configs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &to_json(&self.info().configs))
    }

    /// Its host overrides: `{host: {config type: {property: value}}}`.
    #[getter]
    fn host_overrides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &to_json(&self.info().host_overrides))
    }

    /// Its units.
    #[getter]
    fn units(&self) -> Vec<PyUnit> {
        let i = self.info();
        i.units.iter().map(|u| PyUnit::of_service(&i, u)).collect()
    }

    /// Reloads the service (units' states, config version) and returns it.
    fn refresh(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let this = slf.get();
        let name = this.name();
        let info = run(slf.py(), this.backend.service(&this.cluster, &name))?;
        *this.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        Ok(slf)
    }

    /// Changes configs as a new version: `configs` is a merge patch over the current values
    /// (`{"hello.conf": {"greeting": "hi", "interval": None}}`; `None` removes a value),
    /// `hosts` one per host (`{"h1": {"hello.conf": {...}}}`). Values are type-checked
    /// (`InvalidInput`). Units turn stale until `cluster.restart_stale()`. Returns the new
    /// version; the service is refreshed.
    #[pyo3(signature = (configs = None, hosts = None, message = ""))]
    fn update_configs(
        &self,
        py: Python<'_>,
        configs: Option<&Bound<'_, PyAny>>,
        hosts: Option<&Bound<'_, PyAny>>,
        message: &str,
    ) -> PyResult<PyConfigVersion> {
        let change = ConfigChange {
            configs: match configs {
                Some(c) => from_py_as(c, "configs", "{config type: {property: value}}")?,
                None => Default::default(),
            },
            hosts: match hosts {
                Some(h) => from_py_as(h, "hosts", "{host: {config type: {property: value}}}")?,
                None => Default::default(),
            },
            message: message.to_string(),
        };
        let name = self.name();
        let backend = &self.backend;
        let cluster = &self.cluster;
        let (v, info) = run(py, async {
            let v = backend.update_configs(cluster, &name, change).await?;
            let info = backend.service(cluster, &name).await?;
            Ok((v, info))
        })?;
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        Ok(v.into())
    }

    /// Every config version of the service, oldest first.
    fn config_versions(&self, py: Python<'_>) -> PyResult<Vec<PyConfigVersion>> {
        let name = self.name();
        Ok(run(py, self.backend.config_versions(&self.cluster, &name))?
            .into_iter()
            .map(PyConfigVersion::from)
            .collect())
    }

    /// Rolls the configs back to version `to`: a new version equal to it. Returns the new
    /// version; the service is refreshed.
    #[pyo3(signature = (to, message = None))]
    fn rollback(
        &self,
        py: Python<'_>,
        to: u32,
        message: Option<String>,
    ) -> PyResult<PyConfigVersion> {
        let name = self.name();
        let backend = &self.backend;
        let cluster = &self.cluster;
        let (v, info) = run(py, async {
            let v = backend
                .rollback_configs(cluster, &name, to, message)
                .await?;
            let info = backend.service(cluster, &name).await?;
            Ok((v, info))
        })?;
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        Ok(v.into())
    }

    /// One config version of the service (`NotFound` if there is no such version). (The
    /// `config_version` property is the desired version's number.)
    fn config_version_at(&self, py: Python<'_>, version: u32) -> PyResult<PyConfigVersion> {
        let name = self.name();
        Ok(run(
            py,
            self.backend.config_version(&self.cluster, &name, version),
        )?
        .into())
    }

    /// What differs from config version `from_version` to `to_version`, property by property
    /// (service layer first, then each host's overrides; secrets read `********`).
    fn diff(
        &self,
        py: Python<'_>,
        from_version: u32,
        to_version: u32,
    ) -> PyResult<Vec<PyConfigDiff>> {
        let name = self.name();
        Ok(run(
            py,
            self.backend
                .diff_configs(&self.cluster, &name, from_version, to_version),
        )?
        .into_iter()
        .map(PyConfigDiff::from)
        .collect())
    }

    /// Places more units of `component` on `hosts` (names). They are NEW: deploy them with
    /// `cluster.run("deploy", units=[u.id for u in new])`. The cardinality must still hold
    /// (`InvalidInput`); a component already on a host is a `Conflict`. Related services get
    /// `joined`. Returns the new units; the service is refreshed.
    fn add_units(
        &self,
        py: Python<'_>,
        component: &str,
        hosts: Vec<String>,
    ) -> PyResult<Vec<PyUnit>> {
        let name = self.name();
        let backend = &self.backend;
        let cluster = &self.cluster;
        let (units, info) = run(py, async {
            let units = backend.add_units(cluster, &name, component, &hosts).await?;
            let info = backend.service(cluster, &name).await?;
            Ok((units, info))
        })?;
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
        Ok(units.into_iter().map(PyUnit::from).collect())
    }

    fn __repr__(&self) -> String {
        let i = self.info();
        format!(
            "<Service {} ({} {} {}) on {}: config v{}, {} unit(s)>",
            i.name,
            i.stack,
            i.stack_version,
            i.service,
            self.cluster,
            i.config_version,
            i.units.len()
        )
    }
}

/// A unit: one component of a service instance on one host.
#[pyclass(frozen, module = "bigmgr", name = "Unit")]
pub(crate) struct PyUnit {
    /// Its id (`cluster.run(..., units=[id])` targets it).
    #[pyo3(get)]
    id: i64,
    /// Its service instance's name.
    #[pyo3(get)]
    service: String,
    /// The component.
    #[pyo3(get)]
    component: String,
    /// The host's name.
    #[pyo3(get)]
    host: String,
    /// `NEW`, `INSTALLED`, `STARTED`, `STOPPED`, `FAILED` or `REMOVED`.
    #[pyo3(get)]
    state: &'static str,
    /// The config version its last configure applied.
    #[pyo3(get)]
    applied_version: Option<u32>,
    /// Its files differ from what they should be (a restart is required).
    #[pyo3(get)]
    stale: bool,
    /// Why, when stale.
    #[pyo3(get)]
    stale_reason: Option<String>,
}

impl From<UnitStatusView> for PyUnit {
    fn from(u: UnitStatusView) -> PyUnit {
        PyUnit {
            id: u.id.0,
            service: u.service,
            component: u.component,
            host: u.host,
            state: u.state.as_str(),
            applied_version: u.applied_version,
            stale: u.stale,
            stale_reason: u.stale_reason,
        }
    }
}

impl PyUnit {
    /// Unit `u` of service `s`, as the service lists it.
    fn of_service(s: &ServiceView, u: &bigmgr_core::view::ServiceUnitView) -> PyUnit {
        PyUnit {
            id: u.id.0,
            service: s.name.clone(),
            component: u.component.clone(),
            host: u.host.clone(),
            state: u.state.as_str(),
            applied_version: u.applied_version,
            stale: u.stale,
            stale_reason: u.stale_reason.clone(),
        }
    }
}

/// A value as the JSON it serialises to.
fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
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
#[pyclass(frozen, module = "bigmgr", name = "ConfigVersion")]
pub(crate) struct PyConfigVersion {
    /// The service instance.
    #[pyo3(get)]
    service: String,
    /// Its number, from 1.
    #[pyo3(get)]
    version: u32,
    /// Who made it.
    #[pyo3(get)]
    author: String,
    /// When (ms since the epoch).
    #[pyo3(get)]
    created_at: i64,
    /// Why.
    #[pyo3(get)]
    message: String,
    configs_json: serde_json::Value,
    host_overrides_json: serde_json::Value,
}

impl From<ConfigVersionView> for PyConfigVersion {
    fn from(v: ConfigVersionView) -> PyConfigVersion {
        PyConfigVersion {
            service: v.service,
            version: v.version,
            author: v.author,
            created_at: v.created_at,
            message: v.message,
            configs_json: to_json(&v.configs),
            host_overrides_json: to_json(&v.host_overrides),
        }
    }
}

#[pymethods]
impl PyConfigVersion {
    /// The service layer: `{config type: {property: value}}` (secrets read `********`).
    #[getter]
    fn configs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.configs_json)
    }

    /// The host layer: `{host: {config type: {property: value}}}`.
    #[getter]
    fn host_overrides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.host_overrides_json)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ConfigVersion {} v{} by {}: {:?}>",
            self.service, self.version, self.author, self.message
        )
    }
}

/// One property that differs between two config versions of a service.
#[pyclass(frozen, module = "bigmgr", name = "ConfigDiff")]
pub(crate) struct PyConfigDiff {
    /// The config type (`hello.conf`).
    #[pyo3(get)]
    config_type: String,
    /// The host, for a host override; `None` for the service layer.
    #[pyo3(get)]
    host: Option<String>,
    /// The property.
    #[pyo3(get)]
    property: String,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
}

impl From<ConfigDiffView> for PyConfigDiff {
    fn from(d: ConfigDiffView) -> PyConfigDiff {
        PyConfigDiff {
            config_type: d.config_type,
            host: d.host,
            property: d.property,
            from: d.from,
            to: d.to,
        }
    }
}

/// A value of a diff as Python (`None` when not set).
fn opt_to_py<'py>(py: Python<'py>, v: &Option<serde_json::Value>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Some(v) => to_py(py, v),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A value of a diff for a repr: its JSON, or `(unset)`.
fn show(v: &Option<serde_json::Value>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "(unset)".into())
}

#[pymethods]
impl PyConfigDiff {
    /// Its value in the earlier version (`None`: not set there, so the stack's default).
    #[getter(from_value)]
    fn value_before<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_to_py(py, &self.from)
    }

    /// Its value in the later version (`None`: not set there, so the stack's default).
    #[getter(to_value)]
    fn value_after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_to_py(py, &self.to)
    }

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
            show(&self.from),
            show(&self.to)
        )
    }
}
