//! `Pipeline` (docs/pipelines.md): a pipeline of a cluster, refreshable, with its run controls
//! (start, pause, resume, stop, scale), its `PipelineStatus` (`PipelineNode`s with their
//! batches) and its run log.

use super::records::records;
use super::run;
use crate::backend::Backend;
use bigmgr_core::request::ScalePipeline;
use bigmgr_core::view::{PipelineNode, PipelineView};
use pyo3::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A pipeline of a cluster (docs/pipelines.md). Its properties are as of the last `refresh()`
/// (or control: `start()`, `pause()`, `resume()`, `stop()`, `scale()`, or `status()`).
#[pyclass(frozen, module = "bigmgr", name = "Pipeline")]
pub(crate) struct PyPipeline {
    backend: Arc<dyn Backend>,
    cluster: String,
    info: Mutex<PipelineView>,
}

impl PyPipeline {
    /// Pipeline `info` of cluster `cluster`.
    pub(crate) fn new(backend: Arc<dyn Backend>, cluster: &str, info: PipelineView) -> PyPipeline {
        PyPipeline {
            backend,
            cluster: cluster.to_string(),
            info: Mutex::new(info),
        }
    }

    /// The pipeline as of its last refresh.
    fn info(&self) -> MutexGuard<'_, PipelineView> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` — a backend call given the backend, this pipeline's cluster and its name,
    /// answering the pipeline as it is now — keeps its answer and returns the pipeline.
    fn act<F>(
        slf: Bound<'_, Self>,
        call: impl FnOnce(Arc<dyn Backend>, String, String) -> F,
    ) -> PyResult<Bound<'_, Self>>
    where
        F: std::future::Future<Output = crate::error::Result<PipelineView>> + Send,
    {
        let this = slf.get();
        let name = this.info().name.clone();
        let fut = call(this.backend.clone(), this.cluster.clone(), name);
        let info = run(slf.py(), fut)?;
        *this.info() = info;
        Ok(slf)
    }
}

#[pymethods]
impl PyPipeline {
    /// Its id.
    #[getter]
    fn id(&self) -> i64 {
        self.info().id.0
    }

    /// Its name, unique among the cluster's pipelines.
    #[getter]
    fn name(&self) -> String {
        self.info().name.clone()
    }

    /// Its cluster's name.
    #[getter]
    fn cluster(&self) -> String {
        self.cluster.clone()
    }

    /// Who created it.
    #[getter]
    fn author(&self) -> String {
        self.info().author.clone()
    }

    /// When (ms since the epoch).
    #[getter]
    fn created_at(&self) -> i64 {
        self.info().created_at
    }

    /// `CREATED`, `RUNNING`, `PAUSED`, `DRAINING`, `STOPPED`, `FAILED` or `FINISHED`.
    #[getter]
    fn state(&self) -> &'static str {
        self.info().state.as_str()
    }

    /// What its run last said: why it failed, or how it stopped (`None`: nothing yet).
    #[getter]
    fn message(&self) -> Option<String> {
        self.info().message.clone()
    }

    /// The replicas its units were scaled to, over what the definition says: `{unit: n}`.
    #[getter]
    fn replicas(&self) -> BTreeMap<String, u32> {
        self.info().replicas.clone()
    }

    /// Its definition as written (TOML).
    #[getter]
    fn definition(&self) -> String {
        self.info().definition.clone()
    }

    /// Reloads the pipeline (its state, message, replicas) and returns it.
    fn refresh(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, |b, cluster, name| async move {
            b.pipeline(&cluster, &name).await
        })
    }

    /// Starts the pipeline (admins and operators): from CREATED, STOPPED, FAILED or FINISHED
    /// it is RUNNING; what was processed before stays processed, so it processes only what
    /// is new. `Conflict` in another state. Returns it.
    fn start(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, |b, cluster, name| async move {
            b.start_pipeline(&cluster, &name).await
        })
    }

    /// Pauses the RUNNING pipeline: no node takes a new batch; batches being processed finish.
    /// `Conflict` in another state. Returns it.
    fn pause(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, |b, cluster, name| async move {
            b.pause_pipeline(&cluster, &name).await
        })
    }

    /// Resumes the PAUSED pipeline. `Conflict` in another state. Returns it.
    fn resume(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, |b, cluster, name| async move {
            b.resume_pipeline(&cluster, &name).await
        })
    }

    /// Stops the running pipeline: drains it — DRAINING: its sources take nothing more, what
    /// they took is processed, then it is STOPPED — or with `abort=True` stops it now
    /// (STOPPED: batches being processed go back to their channels). `Conflict` when it is
    /// not running. Returns it.
    #[pyo3(signature = (abort = false))]
    fn stop(slf: Bound<'_, Self>, abort: bool) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, move |b, cluster, name| async move {
            b.stop_pipeline(&cluster, &name, abort).await
        })
    }

    /// Runs `replicas` (1 to 64) replicas of the non-blocking unit `unit` from now on,
    /// running or not; nothing is lost or processed twice. `InvalidInput` for a unit the
    /// pipeline does not have, a blocking one, or replicas out of range. Returns it (see
    /// `replicas`).
    fn scale(slf: Bound<'_, Self>, unit: String, replicas: u32) -> PyResult<Bound<'_, Self>> {
        Self::act(slf, move |b, cluster, name| async move {
            let req = ScalePipeline { unit, replicas };
            b.scale_pipeline(&cluster, &name, req).await
        })
    }

    /// The pipeline's graph and what each node has done (from the metastore); the pipeline
    /// is refreshed with it (`PipelineStatus.pipeline` is this pipeline).
    fn status(slf: Bound<'_, Self>) -> PyResult<PyPipelineStatus> {
        let this = slf.get();
        let name = this.info().name.clone();
        let status = run(slf.py(), this.backend.pipeline_status(&this.cluster, &name))?;
        *this.info() = status.pipeline;
        Ok(PyPipelineStatus {
            pipeline: slf.unbind(),
            node_views: status.nodes,
            edges: status.edges,
            running_here: status.running_here,
        })
    }

    /// The latest lines of its run on the server (or in this `Embedded`), oldest first, as
    /// `(at, line)`: when (ms since the epoch) and what happened — batches processed, hosts
    /// away, how the run ended. Empty when no run happened there since it started.
    fn logs(&self, py: Python<'_>) -> PyResult<Vec<(i64, String)>> {
        let name = self.name();
        let lines = run(py, self.backend.pipeline_logs(&self.cluster, &name))?;
        Ok(lines.into_iter().map(|l| (l.at, l.line)).collect())
    }

    fn __repr__(&self) -> String {
        let i = self.info();
        format!("<Pipeline {} of {}: {}>", i.name, self.cluster, i.state)
    }
}

/// A pipeline's graph and what each node has done (`Pipeline.status()`).
#[pyclass(frozen, module = "bigmgr", name = "PipelineStatus")]
pub(crate) struct PyPipelineStatus {
    /// The pipeline, refreshed.
    #[pyo3(get)]
    pipeline: Py<PyPipeline>,
    /// Its nodes' views.
    node_views: Vec<PipelineNode>,
    /// Its edges, `(from, to)`.
    #[pyo3(get)]
    edges: Vec<(String, String)>,
    /// This server (or `Embedded`) runs it now.
    #[pyo3(get)]
    running_here: bool,
}

#[pymethods]
impl PyPipelineStatus {
    /// Its nodes — sources, units, channels (named ones and those between two nodes,
    /// `<from>-><to>`) and sinks — by name.
    #[getter]
    fn nodes(&self) -> Vec<PyPipelineNode> {
        records(self.node_views.clone())
    }

    fn __repr__(&self) -> String {
        let p = self.pipeline.get().info();
        format!(
            "<PipelineStatus {} {}: {} node(s){}>",
            p.name,
            p.state,
            self.node_views.len(),
            if self.running_here {
                ", running here"
            } else {
                ""
            }
        )
    }
}

/// One node of a pipeline and its batches (`PipelineStatus.nodes`).
#[pyclass(frozen, get_all, module = "bigmgr", name = "PipelineNode")]
#[derive(Deserialize)]
pub(crate) struct PyPipelineNode {
    /// Its name.
    name: String,
    /// `source`, `unit`, `channel` or `sink`.
    kind: String,
    /// A unit's replicas (as scaled); `None` for other nodes.
    replicas: Option<u32>,
    /// A channel's limit of batches waiting (backpressure); `None` for other nodes.
    limit: Option<u32>,
    /// Batches waiting (for a unit: in its input channels) — its backlog.
    waiting: u64,
    /// Batches being processed (leased).
    leased: u64,
    /// Batches processed.
    processed: u64,
    /// Batches processed in the last minute: its throughput.
    processed_last_minute: u64,
    /// A source's batches recorded.
    recorded: u64,
    /// A channel takes more (false: not-ready, upstream waits); other nodes are always ready.
    ready: bool,
    /// A unit that takes its whole input at once (it cannot be scaled).
    #[serde(default)]
    blocking: bool,
}

#[pymethods]
impl PyPipelineNode {
    fn __repr__(&self) -> String {
        format!(
            "<PipelineNode {} ({}): {} waiting, {} leased, {} processed>",
            self.name, self.kind, self.waiting, self.leased, self.processed
        )
    }
}
