//! The entry points: `bigmgr.connect(url, token)` → `Client`, and `bigmgr.Embedded(path)`;
//! both offer the same cluster, stack and job methods.

use super::assistant::PyProposal;
use super::cluster::PyCluster;
use super::job::PyJob;
use super::records::PyStack;
use super::run;
use crate::backend::Backend;
use crate::embedded::{Embedded, PyStackProvider};
use crate::error::Error;
use bigmgr_core::stack::DirStackProvider;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The methods a `Client` and an `Embedded` share, with their own items before them.
macro_rules! session_methods {
    ($ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// Every cluster.
            fn clusters(&self, py: Python<'_>) -> PyResult<Vec<PyCluster>> {
                let b = &self.backend;
                let list = run(py, b.clusters())?;
                Ok(list.into_iter().map(|c| PyCluster::new(b.clone(), c)).collect())
            }

            /// The cluster of that name (`NotFound` if there is none).
            fn cluster(&self, py: Python<'_>, name: &str) -> PyResult<PyCluster> {
                let c = run(py, self.backend.cluster(name))?;
                Ok(PyCluster::new(self.backend.clone(), c))
            }

            /// Creates a cluster (`Conflict` if the name is taken, `InvalidInput` if it is not a
            /// valid name).
            fn create_cluster(&self, py: Python<'_>, name: &str) -> PyResult<PyCluster> {
                let c = run(py, self.backend.create_cluster(name))?;
                Ok(PyCluster::new(self.backend.clone(), c))
            }

            /// Deletes a cluster; refused (`Conflict`) while it has hosts, services or jobs.
            fn delete_cluster(&self, py: Python<'_>, name: &str) -> PyResult<()> {
                run(py, self.backend.delete_cluster(name))
            }

            /// Every stack version offered, with its services' names.
            fn stacks(&self, py: Python<'_>) -> PyResult<Vec<PyStack>> {
                Ok(run(py, self.backend.stacks())?
                    .into_iter()
                    .map(PyStack::from)
                    .collect())
            }

            /// The job of that id, with its stages and tasks.
            fn job(&self, py: Python<'_>, id: i64) -> PyResult<PyJob> {
                let j = run(py, self.backend.job(id))?;
                Ok(PyJob::detailed(self.backend.clone(), j))
            }

            /// The assistant's model providers: dicts with `name`, `base_url`, `model`,
            /// `default`, `has_key`, `timeout_ms` and `updated_at` — never the key. Needs a
            /// server.
            fn providers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
                let list = run(py, self.backend.providers())?;
                list.iter()
                    .map(|p| super::to_py(py, &serde_json::to_value(p).unwrap_or_default()))
                    .collect()
            }

            /// Adds or replaces model provider `name` (admins): an OpenAI-compatible API at
            /// `base_url` asked for `model`; `api_key` is written, never read back (`None`
            /// keeps a stored one); `default` makes it the default; `timeout_ms` bounds an
            /// answer. Returns the provider as `providers()` shows it.
            #[pyo3(signature = (name, base_url, model, api_key = None, default = false, timeout_ms = None))]
            #[allow(clippy::too_many_arguments)]
            fn set_provider<'py>(
                &self,
                py: Python<'py>,
                name: &str,
                base_url: String,
                model: String,
                api_key: Option<String>,
                default: bool,
                timeout_ms: Option<u64>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let body = bigmgr_client::SetProvider { base_url, model, api_key, default, timeout_ms };
                let p = run(py, self.backend.set_provider(name, body))?;
                super::to_py(py, &serde_json::to_value(&p).unwrap_or_default())
            }

            /// Confirms proposal `id` of yours: its request runs on the server as you. The
            /// proposal as it is now (`confirmed`, or `failed` with the refusal in `result`).
            fn confirm_proposal(&self, py: Python<'_>, id: i64) -> PyResult<PyProposal> {
                let p = run(py, self.backend.confirm_proposal(id))?;
                Ok(PyProposal::new(self.backend.clone(), &p))
            }

            /// Rejects proposal `id` of yours: nothing runs.
            fn reject_proposal(&self, py: Python<'_>, id: i64) -> PyResult<PyProposal> {
                let p = run(py, self.backend.reject_proposal(id))?;
                Ok(PyProposal::new(self.backend.clone(), &p))
            }

            /// The audit log (admins only), oldest first: dicts with `id`, `at`, `actor`,
            /// `action`, `target`, `outcome` (`ok`, `refused`, `failed`) and `detail`; only
            /// `actor`'s if given.
            #[pyo3(signature = (actor = None))]
            fn audit<'py>(
                &self,
                py: Python<'py>,
                actor: Option<String>,
            ) -> PyResult<Vec<Bound<'py, PyAny>>> {
                let events = run(py, self.backend.audit(actor.as_deref()))?;
                events
                    .iter()
                    .map(|e| super::to_py(py, &serde_json::to_value(e).unwrap_or_default()))
                    .collect()
            }
        }
    };
}

/// A client of a running `bigmgr serve` over its REST API. Make one with
/// `bigmgr.connect(url, token)`; its methods are those of `Embedded`.
#[pyclass(frozen, module = "bigmgr", name = "Client")]
pub(crate) struct PyClient {
    backend: Arc<dyn Backend>,
    url: String,
}

session_methods!(PyClient {
    /// Connects to the server at `url` (`https://127.0.0.1:7070`) with an API token
    /// (`bmt_…`), trusting the CA certificate in the PEM file `ca` (the server's
    /// `<data>/tls/ca.pem`; needed for an `https://` server); every request times out after
    /// `timeout` seconds.
    #[new]
    #[pyo3(signature = (url, token = None, timeout = 30.0, ca = None))]
    fn new(url: &str, token: Option<String>, timeout: f64, ca: Option<std::path::PathBuf>) -> PyResult<PyClient> {
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(Error::InvalidInput(format!(
                "timeout must be a positive number of seconds, not {timeout}"
            ))
            .into());
        }
        let rest = bigmgr_client::Client::new(
            url,
            token.as_deref(),
            Duration::from_secs_f64(timeout),
            ca.as_deref(),
        )
        .map_err(Error::from)?;
        Ok(PyClient {
            backend: Arc::new(rest),
            url: url.to_string(),
        })
    }

    /// The server's URL.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    fn __repr__(&self) -> String {
        format!("<Client {}>", self.url)
    }
});

/// Connects to a running `bigmgr serve` at `url` with an API token, trusting the CA in the PEM
/// file `ca` for an `https://` server; returns a `Client`.
#[pyfunction]
#[pyo3(signature = (url, token = None, timeout = 30.0, ca = None))]
pub(crate) fn connect(
    url: &str,
    token: Option<String>,
    timeout: f64,
    ca: Option<std::path::PathBuf>,
) -> PyResult<PyClient> {
    PyClient::new(url, token, timeout, ca)
}

/// The bigmgr engine in-process on a SQLite file, with in-process agents: the same methods as
/// a `Client`, without a server. Also a context manager (closes on exit).
///
/// `Embedded(path, *, stacks=None, agents=[], root=None, user="python", role="admin")`:
/// `stacks` is a list of stack directories or an object with `list()` and `stack(name,
/// version)` (the StackProvider protocol); `agents` are `(host name, address)` pairs, each agent
/// rooted at `<root>/<name>` (root default: `<dir of path>/agents`). Every change acts as user
/// `user` with role `role` (`viewer`, `operator` or `admin`): authorised by that role as a REST
/// call would be (`PermissionDenied` otherwise), written to the audit log under that name, and
/// authored by it (config versions, snapshots). `author` is an older name for `user`.
#[pyclass(frozen, module = "bigmgr", name = "Embedded")]
pub(crate) struct PyEmbedded {
    backend: Arc<dyn Backend>,
    inner: Arc<Embedded>,
    path: String,
}

session_methods!(PyEmbedded {
    #[new]
    #[pyo3(signature = (path, *, stacks = None, agents = Vec::new(), root = None, user = None, role = "admin", author = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        stacks: Option<&Bound<'_, PyAny>>,
        agents: Vec<(String, String)>,
        root: Option<PathBuf>,
        user: Option<String>,
        role: &str,
        author: Option<String>,
    ) -> PyResult<PyEmbedded> {
        let role: bigmgr_core::auth::Role = role.parse().map_err(|_| {
            Error::InvalidInput(format!(
                "role must be 'viewer', 'operator' or 'admin', not {role:?}"
            ))
        })?;
        let name = user.or(author).unwrap_or_else(|| "python".to_string());
        let actor = bigmgr_core::auth::Actor::new(name, role);
        let path = std::path::absolute(&path).unwrap_or(path);
        let root = root.unwrap_or_else(|| {
            path.parent().unwrap_or(Path::new(".")).join("agents")
        });
        enum Stacks {
            Dirs(Vec<PathBuf>),
            Python(PyStackProvider),
        }
        let stacks = match stacks {
            None => Stacks::Dirs(Vec::new()),
            Some(s) if s.is_instance_of::<PyString>() => Stacks::Dirs(vec![s.extract()?]),
            Some(s) if s.is_instance_of::<PyList>() || s.is_instance_of::<PyTuple>() => {
                Stacks::Dirs(s.extract()?)
            }
            Some(s) if s.hasattr("stack")? && s.hasattr("list")? => {
                Stacks::Python(PyStackProvider::new(s))
            }
            Some(s) => {
                return Err(Error::InvalidInput(format!(
                    "stacks must be a list of directories or an object with list() and \
                     stack(name, version), not {}",
                    s.repr()?
                ))
                .into());
            }
        };
        let emb = run(py, async {
            match stacks {
                Stacks::Dirs(d) => {
                    Embedded::open(&path, DirStackProvider::new(d), &agents, &root, actor).await
                }
                Stacks::Python(p) => Embedded::open(&path, p, &agents, &root, actor).await,
            }
        })?;
        let inner = Arc::new(emb);
        Ok(PyEmbedded {
            backend: inner.clone(),
            inner,
            path: path.display().to_string(),
        })
    }

    /// Stops the engine and the in-process agents (each finishes what it runs). Daemons that
    /// scripts started keep running: run a `stop` job before closing. Closing twice is fine.
    fn close(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| crate::runtime().block_on(inner.close()));
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The SQLite file.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// The names of the in-process agents.
    #[getter]
    fn agents(&self) -> Vec<String> {
        self.inner.agents()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.inner.is_closed() { ", closed" } else { "" };
        format!(
            "<Embedded {} agents=[{}]{state}>",
            self.path,
            self.inner.agents().join(", ")
        )
    }
});
