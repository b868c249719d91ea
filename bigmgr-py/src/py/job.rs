//! `Job` (refresh, wait with progress, wait_async, logs, control), its `Stage`s and `Task`s,
//! and `LogLine`s with the iterator that follows them. Waiting and following go through the
//! backend's `follow` — core's one [`bigmgr_core::view::follow`], over the server's event
//! stream or the engine's own — so lines and progress arrive as they happen, each line once.

use super::records::{PyLogLine, PyStage, records};
use super::run;
use crate::backend::{Backend, JobAction};
use crate::error::JobFailed;
use bigmgr_core::model::{JobId, JobState, StageState, TaskState};
use bigmgr_core::view::{Followed, JobDetailView, JobView};
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How often a wait checks for Python signals (Ctrl-C).
const SIGNALS: Duration = Duration::from_millis(200);

/// Writes a line to Python's `sys.stderr` (so it goes where Python's output goes).
fn stderr_line(py: Python<'_>, line: &str) -> PyResult<()> {
    let err = py.import("sys")?.getattr("stderr")?;
    err.call_method1("write", (format!("{line}\n"),))?;
    err.call_method0("flush")?;
    Ok(())
}

/// A job: one command on a target of a cluster, planned into stages of tasks. Its properties
/// are as of the last `refresh()` (or `wait()`).
#[pyclass(frozen, module = "bigmgr", name = "Job")]
pub(crate) struct PyJob {
    backend: Arc<dyn Backend>,
    id: i64,
    info: Mutex<JobDetailView>,
}

impl PyJob {
    /// A job from a list or an action (without its stages until a refresh).
    pub(crate) fn new(backend: Arc<dyn Backend>, job: JobView) -> PyJob {
        PyJob::detailed(
            backend,
            JobDetailView {
                job,
                stages: Vec::new(),
            },
        )
    }

    /// A job with its stages.
    pub(crate) fn detailed(backend: Arc<dyn Backend>, info: JobDetailView) -> PyJob {
        PyJob {
            backend,
            id: info.job.id.0,
            info: Mutex::new(info),
        }
    }

    fn info(&self) -> JobDetailView {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, info: JobDetailView) {
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
    }

    fn control(slf: Bound<'_, Self>, action: JobAction) -> PyResult<Bound<'_, Self>> {
        let this = slf.get();
        let backend = &this.backend;
        let id = this.id;
        let info = run(slf.py(), async {
            backend.control(id, action).await?;
            backend.job(id).await
        })?;
        this.set(info);
        Ok(slf)
    }
}

/// Runs `fut` with the GIL released, checking for Python signals (Ctrl-C) every [`SIGNALS`]
/// and giving up after `timeout`: `Ok(None)` then.
fn run_interruptible<T: Send>(
    py: Python<'_>,
    fut: impl std::future::Future<Output = crate::error::Result<T>> + Send,
    timeout: Option<Duration>,
) -> PyResult<Option<T>> {
    let outcome: Result<Option<T>, PyErr> = py.detach(|| {
        crate::runtime().block_on(async {
            let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            tokio::pin!(fut);
            loop {
                let tick = tokio::time::sleep(SIGNALS);
                tokio::select! {
                    r = &mut fut => return r.map(Some).map_err(PyErr::from),
                    () = tick => {
                        Python::attach(|py| py.check_signals())?;
                        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                            return Ok(None);
                        }
                    }
                }
            }
        })
    });
    outcome
}

#[pymethods]
impl PyJob {
    /// Its id.
    #[getter]
    fn id(&self) -> i64 {
        self.id
    }

    /// Its cluster's name.
    #[getter]
    fn cluster(&self) -> String {
        self.info().job.cluster
    }

    /// The command (`deploy`, `start` …).
    #[getter]
    fn command(&self) -> String {
        self.info().job.command
    }

    /// `QUEUED`, `RUNNING`, `PAUSED`, `CANCELING`, `SUCCEEDED`, `FAILED` or `CANCELED`.
    #[getter]
    fn state(&self) -> &'static str {
        self.info().job.state.as_str()
    }

    /// When it was submitted (ms since the epoch).
    #[getter]
    fn created_at(&self) -> i64 {
        self.info().job.created_at
    }

    /// When it first ran.
    #[getter]
    fn started_at(&self) -> Option<i64> {
        self.info().job.started_at
    }

    /// When it ended.
    #[getter]
    fn finished_at(&self) -> Option<i64> {
        self.info().job.finished_at
    }

    /// Its stages in a topological order (empty until a `refresh()` when it came in a list).
    #[getter]
    fn stages(&self) -> Vec<PyStage> {
        records(self.info().stages)
    }

    /// True once it reached a final state (`SUCCEEDED`, `FAILED`, `CANCELED`).
    #[getter]
    fn done(&self) -> bool {
        self.info().job.state.is_final()
    }

    /// Reloads the job with its stages and tasks, and returns it.
    fn refresh(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let this = slf.get();
        let info = run(slf.py(), this.backend.job(this.id))?;
        this.set(info);
        Ok(slf)
    }

    /// Waits until the job ends, following its events with the GIL released, and returns it.
    /// With `progress`, prints a line to stderr whenever a stage's state or count of finished
    /// tasks changes (`[job 3] START zk/zookeeper_server: RUNNING 1/3`). Raises `JobFailed`
    /// (naming the failed tasks; `.job` is the job) if `check` and it did not succeed, and
    /// `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (progress = false, timeout = None, check = true))]
    fn wait(
        slf: Bound<'_, Self>,
        progress: bool,
        timeout: Option<f64>,
        check: bool,
    ) -> PyResult<Bound<'_, Self>> {
        let py = slf.py();
        let this = slf.get();
        let started = Instant::now();
        let limit = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        let mut shown: HashMap<i64, (StageState, usize)> = HashMap::new();
        let mut job_state: Option<JobState> = None;
        let mut printed: PyResult<()> = Ok(());
        let mut on = |f: Followed<'_>| {
            let Followed::Progress(d) = f else { return };
            if !progress || printed.is_err() {
                return;
            }
            printed =
                Python::attach(|py| progress_lines(py, d, &mut job_state, &mut shown, started));
        };
        let followed = run_interruptible(py, this.backend.follow(JobId(this.id), &mut on), limit)?;
        printed?;
        let Some(info) = followed else {
            let now = run(py, this.backend.job(this.id))?;
            let j = &now.job;
            let message = format!(
                "job {} ({} on {}) is still {} after {}s",
                j.id,
                j.command,
                j.cluster,
                j.state,
                timeout.unwrap_or_default()
            );
            this.set(now);
            return Err(PyTimeoutError::new_err(message));
        };
        this.set(info.clone());
        if check && info.job.state != JobState::Succeeded {
            let err = JobFailed::new_err(info.summary());
            err.value(py).setattr("job", slf.clone())?;
            return Err(err);
        }
        Ok(slf)
    }

    /// `await job.wait_async(...)`: `wait` (with the same arguments) in the running event
    /// loop's default executor, so the loop goes on meanwhile. Returns a coroutine: it may be
    /// created before the loop runs (`asyncio.run(job.wait_async())`).
    #[pyo3(signature = (*args, **kwargs))]
    #[pyo3(text_signature = "($self, progress=False, timeout=None, check=True)")]
    fn wait_async<'py>(
        slf: Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut call = vec![slf.getattr("wait")?];
        call.extend(args.iter());
        let in_executor = py.import("bigmgr._aio")?.getattr("in_executor")?;
        in_executor.call(PyTuple::new(py, call)?, kwargs)
    }

    /// Every log line of every task, each once, in order per task: an iterator of `LogLine`.
    /// With `follow`, new lines are yielded as the scripts write them until the job ends;
    /// without, the lines so far.
    #[pyo3(signature = (follow = true))]
    fn logs(&self, py: Python<'_>, follow: bool) -> PyResult<PyLogIter> {
        let (tx, rx) = mpsc::channel();
        let backend = self.backend.clone();
        let id = self.id;
        if follow {
            crate::runtime().spawn(async move {
                let sink = tx.clone();
                let mut on = move |f: Followed<'_>| {
                    if let Followed::Line { task, line, .. } = f {
                        let _ = sink.send(Ok(PyLogLine::new(task, line)));
                    }
                };
                if let Err(e) = backend.follow(JobId(id), &mut on).await {
                    let _ = tx.send(Err(e));
                }
            });
        } else {
            let lines = run(py, async {
                let detail = backend.job(id).await?;
                let mut lines = Vec::new();
                for t in detail.stages.iter().flat_map(|s| &s.tasks) {
                    if t.state == TaskState::Pending {
                        continue;
                    }
                    for l in backend.task_log(id, t.id.0).await? {
                        lines.push(PyLogLine::new(t, &l));
                    }
                }
                Ok(lines)
            })?;
            for l in lines {
                let _ = tx.send(Ok(l));
            }
        }
        Ok(PyLogIter {
            job: id,
            follow,
            rx: Mutex::new(Some(rx)),
        })
    }

    /// Cancels the job: pending tasks end CANCELED, running scripts are stopped. Returns it.
    fn cancel(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::control(slf, JobAction::Cancel)
    }

    /// Pauses the job: nothing new is dispatched; running tasks finish. Returns it.
    fn pause(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::control(slf, JobAction::Pause)
    }

    /// Resumes a paused job. Returns it.
    fn resume(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::control(slf, JobAction::Resume)
    }

    /// Retries a failed or cancelled job: its failed and cancelled tasks run again. Returns it.
    fn retry(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        Self::control(slf, JobAction::Retry)
    }

    fn __repr__(&self) -> String {
        let j = self.info().job;
        format!("<Job {} {} on {}: {}>", j.id, j.command, j.cluster, j.state)
    }
}

/// The progress lines of `d` that changed since the last ones (`wait(progress=True)`).
fn progress_lines(
    py: Python<'_>,
    d: &JobDetailView,
    job_state: &mut Option<JobState>,
    shown: &mut HashMap<i64, (StageState, usize)>,
    started: Instant,
) -> PyResult<()> {
    let j = &d.job;
    if *job_state != Some(j.state) && !j.state.is_final() {
        stderr_line(
            py,
            &format!("[job {}] {} on {}: {}", j.id, j.command, j.cluster, j.state),
        )?;
        *job_state = Some(j.state);
    }
    for st in &d.stages {
        let done = st.tasks.iter().filter(|t| t.state.is_final()).count();
        let now = (st.state, done);
        if st.state != StageState::Pending && shown.get(&st.id.0) != Some(&now) {
            stderr_line(
                py,
                &format!(
                    "[job {}] {}: {} {}/{}",
                    j.id,
                    st.name,
                    st.state,
                    done,
                    st.tasks.len()
                ),
            )?;
            shown.insert(st.id.0, now);
        }
    }
    if j.state.is_final() && *job_state != Some(j.state) {
        *job_state = Some(j.state);
        stderr_line(
            py,
            &format!(
                "[job {}] {} on {}: {} after {:.1}s",
                j.id,
                j.command,
                j.cluster,
                j.state,
                started.elapsed().as_secs_f64()
            ),
        )?;
    }
    Ok(())
}

/// The iterator `job.logs()` returns: `LogLine`s, each once, in order per task.
#[pyclass(module = "bigmgr", name = "LogIterator")]
pub(crate) struct PyLogIter {
    job: i64,
    follow: bool,
    /// Lines (or the error that ended following) as the follower hands them over; closed when
    /// the job ended.
    rx: Mutex<Option<mpsc::Receiver<crate::error::Result<PyLogLine>>>>,
}

#[pymethods]
impl PyLogIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyLogLine>> {
        let mut slot = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut rx) = slot.take() else {
            return Ok(None);
        };
        loop {
            // The receiver goes into the GIL-free wait and comes back with what it got.
            let (back, got) = py.detach(move || {
                let got = rx.recv_timeout(SIGNALS);
                (rx, got)
            });
            rx = back;
            match got {
                Ok(Ok(line)) => {
                    *slot = Some(rx);
                    return Ok(Some(line));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        *slot = Some(rx);
                        return Err(e);
                    }
                }
            }
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<LogIterator of job {}{}>",
            self.job,
            if self.follow { ", following" } else { "" }
        )
    }
}
