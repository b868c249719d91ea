//! The embedded backend: a core `Manager` in-process on a SQLite file, with in-process agents,
//! and [`PyStackProvider`], a stack provider that asks a Python object where stacks are.
//! What it does for each operation is in the backend's table (`crate::backend`).

use crate::backend::JobAction;
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_core::Manager;
use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::auth::Actor;
use bigmgr_core::manager::Acting;
use bigmgr_core::model::{Job, JobId};
use bigmgr_core::stack::dir::{compare_versions, load_stack_dir};
use bigmgr_core::stack::{Stack, StackProvider, StackRef};
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

/// A `Debug` of a type that shows only some of what it holds: `name { field: value, .. }`.
fn debug_some(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    fields: &[(&str, &dyn std::fmt::Debug)],
) -> std::fmt::Result {
    let mut d = f.debug_struct(name);
    for (field, value) in fields {
        d.field(field, value);
    }
    d.finish_non_exhaustive()
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let agents = self.transport.hosts();
        debug_some(
            f,
            "Embedded",
            &[("actor", &self.actor), ("agents", &agents)],
        )
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
    pub(crate) fn acting(&self) -> Result<Acting> {
        Ok(self.mgr()?.acting(self.actor.clone()))
    }

    /// The Manager (an error once closed).
    pub(crate) fn mgr(&self) -> Result<Manager> {
        self.mgr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Other("this Embedded is closed".into()))
    }

    /// Who acts.
    pub(crate) fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The assistant's chat is a server's: its answers stream through the REST API and a
    /// confirmed proposal runs as a request of that API, which an `Embedded` does not serve.
    /// `_args` are the call's arguments, unused.
    pub(crate) fn no_chat<T, A>(&self, _args: A) -> Result<T> {
        Err(Error::Other(
            "the assistant's chat needs a bigmgr server: connect with bigmgr.connect(url, token) \
             (an Embedded has no REST API for its answers to stream through or its proposals to \
             run as)"
                .into(),
        ))
    }

    /// Cancels, pauses, resumes or retries job `id`, acting as this engine's user.
    pub(crate) async fn control_job(&self, id: JobId, action: JobAction) -> Result<Job> {
        let acting = self.acting()?;
        Ok(match action {
            JobAction::Cancel => acting.cancel(id).await?,
            JobAction::Pause => acting.pause(id).await?,
            JobAction::Resume => acting.resume(id).await?,
            JobAction::Retry => acting.retry(id).await?,
        })
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
        debug_some(f, "PyStackProvider", &[("provider", &self.what)])
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

    /// The stack `key` from the cache, or loaded by `load` and cached (if two load it at
    /// once, both get the one cached first).
    fn cached_or(
        &self,
        key: StackRef,
        load: impl FnOnce(&StackRef) -> bigmgr_core::Result<Stack>,
    ) -> bigmgr_core::Result<Arc<Stack>> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = lock().get(&key) {
            return Ok(s.clone());
        }
        let stack = Arc::new(load(&key)?);
        Ok(lock().entry(key).or_insert(stack).clone())
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
            version,
        };
        self.cached_or(key, |key| {
            let version = &key.version;
            let dir = self.call_stack(name, version).map_err(|e| {
                self.failed(
                    name,
                    Some(version),
                    &format!("stack({name:?}, {version:?})"),
                    e,
                )
            })?;
            load_stack_dir(&dir, name, version)
        })
    }
}
