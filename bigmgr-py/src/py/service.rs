//! `Service`: a service instance, refreshable, with its units and its config history.

use super::records::{Json, PyConfigDiff, PyConfigVersion, PyUnit, record, records};
use super::{from_py_as, run};
use crate::backend::Backend;
use bigmgr_core::manager::ConfigChange;
use bigmgr_core::request::AddUnitsBody;
use bigmgr_core::view::ServiceView;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, MutexGuard};

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

    /// The service as of its last refresh.
    fn info(&self) -> MutexGuard<'_, ServiceView> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `#[pymethods]` of `Service`: first a getter per `name: Type = |info| value`, read from
/// the service as of its last refresh, then the other methods.
macro_rules! service_methods {
    (
        $($(#[doc = $doc:literal])* $name:ident: $ty:ty = |$i:ident| $value:expr;)*
        { $($own:tt)* }
    ) => {
        #[pymethods]
        impl PyService {
            $(
                $(#[doc = $doc])*
                #[getter]
                fn $name(&self) -> $ty {
                    let $i = &*self.info();
                    $value
                }
            )*

            $($own)*
        }
    };
}

service_methods! {
    /// Its id.
    id: i64 = |i| i.id.0;
    /// Its name in the cluster.
    name: String = |i| i.name.clone();
    /// The stack.
    stack: String = |i| i.stack.clone();
    /// The stack version.
    stack_version: String = |i| i.stack_version.clone();
    /// The service definition in the stack (`zookeeper`).
    definition: String = |i| i.service.clone();
    /// The desired config version.
    config_version: u32 = |i| i.config_version;
    /// Its config values over the stack's defaults: `{config type: {property: value}}`
    /// (secrets read `********`).
    configs: Json = |i| Json::of(&i.configs);
    /// Its host overrides: `{host: {config type: {property: value}}}`.
    host_overrides: Json = |i| Json::of(&i.host_overrides);
    /// Its units.
    units: Vec<PyUnit> = |i| i.units.iter().map(|u| PyUnit::of_service(&i.name, u)).collect();

    {
        /// Its cluster's name.
        #[getter]
        fn cluster(&self) -> String {
            self.cluster.clone()
        }

        /// Reloads the service (units' states, config version) and returns it.
        fn refresh(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
            let this = slf.get();
            let name = this.name();
            let info = run(slf.py(), this.backend.service(&this.cluster, &name))?;
            *this.info() = info;
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
            *self.info() = info;
            Ok(record(&v))
        }

        /// Every config version of the service, oldest first.
        fn config_versions(&self, py: Python<'_>) -> PyResult<Vec<PyConfigVersion>> {
            let name = self.name();
            Ok(records(run(
                py,
                self.backend.config_versions(&self.cluster, &name),
            )?))
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
            *self.info() = info;
            Ok(record(&v))
        }

        /// One config version of the service (`NotFound` if there is no such version). (The
        /// `config_version` property is the desired version's number.)
        fn config_version_at(&self, py: Python<'_>, version: u32) -> PyResult<PyConfigVersion> {
            let name = self.name();
            let v = run(
                py,
                self.backend.config_version(&self.cluster, &name, version),
            )?;
            Ok(record(&v))
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
            let diff = self
                .backend
                .diff_configs(&self.cluster, &name, from_version, to_version);
            Ok(records(run(py, diff)?))
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
                let req = AddUnitsBody {
                    component: component.to_owned(),
                    hosts,
                };
                let units = backend.add_units(cluster, &name, &req).await?;
                let info = backend.service(cluster, &name).await?;
                Ok((units, info))
            })?;
            *self.info() = info;
            Ok(records(units))
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
}
