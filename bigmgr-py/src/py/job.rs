//! `Job` (refresh, wait with progress, wait_async, logs, control), its `Stage`s and `Task`s,
//! and `LogLine`s with the iterator that follows them.

use super::run;
use crate::backend::{Backend, JobAction};
use crate::data::{JobInfo, LogLineInfo, StageInfo, TaskInfo};
use crate::error::JobFailed;
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often `wait` and `logs` poll the job.
const POLL: Duration = Duration::from_millis(200);

fn task_final(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "CANCELED")
}

fn sleep(py: Python<'_>) -> PyResult<()> {
    py.detach(|| std::thread::sleep(POLL));
    py.check_signals()
}

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
    info: Mutex<JobInfo>,
}

impl PyJob {
    pub(crate) fn new(backend: Arc<dyn Backend>, info: JobInfo) -> PyJob {
        PyJob {
            backend,
            id: info.id,
            info: Mutex::new(info),
        }
    }

    fn info(&self) -> JobInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, info: JobInfo) {
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

    /// What failed, for `JobFailed`: each task that did not succeed, with its message.
    fn failure(info: &JobInfo) -> String {
        let mut parts = Vec::new();
        for st in &info.stages {
            for t in &st.tasks {
                if matches!(t.state.as_str(), "FAILED" | "TIMED_OUT")
                    || (t.state == "CANCELED" && t.message.is_some() && info.state == "CANCELED")
                {
                    let mut p = format!("task {} ({} on {}) {}", t.id, st.name, t.host, t.state);
                    if let Some(code) = t.exit_code {
                        p.push_str(&format!(" with exit code {code}"));
                    }
                    if let Some(m) = &t.message {
                        p.push_str(&format!(": {m}"));
                    }
                    parts.push(p);
                }
            }
        }
        let mut msg = format!(
            "job {} ({} on {}) ended {}",
            info.id, info.command, info.cluster, info.state
        );
        if !parts.is_empty() {
            msg.push_str(": ");
            msg.push_str(&parts.join("; "));
        }
        msg
    }
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
        self.info().cluster
    }

    /// The command (`deploy`, `start` …).
    #[getter]
    fn command(&self) -> String {
        self.info().command
    }

    /// `QUEUED`, `RUNNING`, `PAUSED`, `CANCELING`, `SUCCEEDED`, `FAILED` or `CANCELED`.
    #[getter]
    fn state(&self) -> String {
        self.info().state
    }

    /// When it was submitted (ms since the epoch).
    #[getter]
    fn created_at(&self) -> i64 {
        self.info().created_at
    }

    /// When it first ran.
    #[getter]
    fn started_at(&self) -> Option<i64> {
        self.info().started_at
    }

    /// When it ended.
    #[getter]
    fn finished_at(&self) -> Option<i64> {
        self.info().finished_at
    }

    /// Its stages in a topological order (empty until a `refresh()` when it came in a list).
    #[getter]
    fn stages(&self) -> Vec<PyStage> {
        self.info().stages.into_iter().map(PyStage::from).collect()
    }

    /// True once it reached a final state (`SUCCEEDED`, `FAILED`, `CANCELED`).
    #[getter]
    fn done(&self) -> bool {
        self.info().is_final()
    }

    /// Reloads the job with its stages and tasks, and returns it.
    fn refresh(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let this = slf.get();
        let info = run(slf.py(), this.backend.job(this.id))?;
        this.set(info);
        Ok(slf)
    }

    /// Waits until the job ends, polling it with the GIL released, and returns it. With
    /// `progress`, prints a line to stderr whenever a stage's state or count of finished
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
        let deadline = timeout.map(|t| started + Duration::from_secs_f64(t.max(0.0)));
        let mut shown: HashMap<i64, (String, usize)> = HashMap::new();
        let mut job_state = String::new();
        let info = loop {
            let info = run(py, this.backend.job(this.id))?;
            this.set(info.clone());
            if progress {
                if info.state != job_state && !info.is_final() {
                    stderr_line(
                        py,
                        &format!(
                            "[job {}] {} on {}: {}",
                            info.id, info.command, info.cluster, info.state
                        ),
                    )?;
                    job_state = info.state.clone();
                }
                for st in &info.stages {
                    let done = st.tasks.iter().filter(|t| task_final(&t.state)).count();
                    let now = (st.state.clone(), done);
                    if st.state != "PENDING" && shown.get(&st.id) != Some(&now) {
                        stderr_line(
                            py,
                            &format!(
                                "[job {}] {}: {} {}/{}",
                                info.id,
                                st.name,
                                st.state,
                                done,
                                st.tasks.len()
                            ),
                        )?;
                        shown.insert(st.id, now);
                    }
                }
                if info.is_final() {
                    stderr_line(
                        py,
                        &format!(
                            "[job {}] {} on {}: {} after {:.1}s",
                            info.id,
                            info.command,
                            info.cluster,
                            info.state,
                            started.elapsed().as_secs_f64()
                        ),
                    )?;
                }
            }
            if info.is_final() {
                break info;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err(format!(
                    "job {} ({} on {}) is still {} after {}s",
                    info.id,
                    info.command,
                    info.cluster,
                    info.state,
                    timeout.unwrap_or_default()
                )));
            }
            sleep(py)?;
        };
        if check && info.state != "SUCCEEDED" {
            let err = JobFailed::new_err(Self::failure(&info));
            err.value(py).setattr("job", slf.clone())?;
            return Err(err);
        }
        Ok(slf)
    }

    /// `await job.wait_async(...)`: `wait` in the running event loop's default executor, so
    /// the loop goes on meanwhile. Returns a coroutine: it may be created before the loop runs
    /// (`asyncio.run(job.wait_async())`).
    #[pyo3(signature = (progress = false, timeout = None, check = true))]
    fn wait_async<'py>(
        slf: Bound<'py, Self>,
        progress: bool,
        timeout: Option<f64>,
        check: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("bigmgr._aio")?.call_method1(
            "in_executor",
            (slf.getattr("wait")?, progress, timeout, check),
        )
    }

    /// Every log line of every task, each once, in order per task: an iterator of `LogLine`.
    /// With `follow`, new lines are yielded as the scripts write them until the job ends;
    /// without, the lines so far.
    #[pyo3(signature = (follow = true))]
    fn logs(&self, follow: bool) -> PyLogIter {
        PyLogIter {
            backend: self.backend.clone(),
            job: self.id,
            follow,
            buffer: VecDeque::new(),
            seen: HashSet::new(),
            complete: HashSet::new(),
            finished: false,
        }
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
        let i = self.info();
        format!("<Job {} {} on {}: {}>", i.id, i.command, i.cluster, i.state)
    }
}

/// A stage of a job: one command on one component (`START hello/hello_server`), one task
/// per unit.
#[pyclass(frozen, module = "bigmgr", name = "Stage")]
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
    task_infos: Vec<TaskInfo>,
}

impl From<StageInfo> for PyStage {
    fn from(s: StageInfo) -> PyStage {
        PyStage {
            id: s.id,
            name: s.name,
            state: s.state,
            task_infos: s.tasks,
        }
    }
}

#[pymethods]
impl PyStage {
    /// Its tasks, one per unit.
    #[getter]
    fn tasks(&self) -> Vec<PyTask> {
        self.task_infos.iter().cloned().map(PyTask::from).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Stage {} {}: {} ({} task(s))>",
            self.id,
            self.name,
            self.state,
            self.task_infos.len()
        )
    }
}

/// A task: one unit's part of a stage, run by its host's agent.
#[pyclass(frozen, module = "bigmgr", name = "Task")]
pub(crate) struct PyTask {
    /// Its id.
    #[pyo3(get)]
    id: i64,
    /// The host it runs on.
    #[pyo3(get)]
    host: String,
    /// `PENDING`, `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `CANCELED`.
    #[pyo3(get)]
    state: String,
    /// The current attempt, from 1.
    #[pyo3(get)]
    attempt: u32,
    /// The script's exit code, once finished.
    #[pyo3(get)]
    exit_code: Option<i32>,
    /// Why it ended as it did, where there is more to say than the state.
    #[pyo3(get)]
    message: Option<String>,
}

impl From<TaskInfo> for PyTask {
    fn from(t: TaskInfo) -> PyTask {
        PyTask {
            id: t.id,
            host: t.host,
            state: t.state,
            attempt: t.attempt,
            exit_code: t.exit_code,
            message: t.message,
        }
    }
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
#[pyclass(frozen, module = "bigmgr", name = "LogLine")]
pub(crate) struct PyLogLine {
    /// The task.
    #[pyo3(get)]
    task: i64,
    /// The host it ran on.
    #[pyo3(get)]
    host: String,
    /// The attempt that wrote it.
    #[pyo3(get)]
    attempt: u32,
    /// `stdout` or `stderr`.
    #[pyo3(get)]
    stream: String,
    /// When it was read (ms since the epoch).
    #[pyo3(get)]
    at: i64,
    /// The text.
    #[pyo3(get)]
    line: String,
}

impl PyLogLine {
    fn new(task: i64, host: &str, l: LogLineInfo) -> PyLogLine {
        PyLogLine {
            task,
            host: host.to_string(),
            attempt: l.attempt,
            stream: l.stream,
            at: l.at,
            line: l.line,
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

/// The iterator `job.logs()` returns: `LogLine`s, each once, in order per task.
#[pyclass(module = "bigmgr", name = "LogIterator")]
pub(crate) struct PyLogIter {
    backend: Arc<dyn Backend>,
    job: i64,
    follow: bool,
    buffer: VecDeque<PyLogLine>,
    /// (task, attempt, seq) of every line yielded or buffered.
    seen: HashSet<(i64, u32, u64)>,
    /// (task, attempt) whose log was read after the attempt had ended: complete.
    complete: HashSet<(i64, u32)>,
    finished: bool,
}

impl PyLogIter {
    /// Reads the job, then the log of every task that started and is not known complete.
    fn poll(&mut self, py: Python<'_>) -> PyResult<bool> {
        let backend = &self.backend;
        let job = self.job;
        let complete = &self.complete;
        let (info, logs) = run(py, async {
            let info = backend.job(job).await?;
            let mut logs = Vec::new();
            for st in &info.stages {
                for t in &st.tasks {
                    if t.state == "PENDING" || complete.contains(&(t.id, t.attempt)) {
                        continue;
                    }
                    let lines = backend.task_log(job, t.id).await?;
                    logs.push((t.clone(), lines));
                }
            }
            Ok((info, logs))
        })?;
        for (t, lines) in logs {
            if task_final(&t.state) {
                self.complete.insert((t.id, t.attempt));
            }
            for l in lines {
                if self.seen.insert((t.id, l.attempt, l.seq)) {
                    self.buffer.push_back(PyLogLine::new(t.id, &t.host, l));
                }
            }
        }
        Ok(info.is_final())
    }
}

#[pymethods]
impl PyLogIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<PyLogLine>> {
        loop {
            if let Some(l) = self.buffer.pop_front() {
                return Ok(Some(l));
            }
            if self.finished {
                return Ok(None);
            }
            let ended = self.poll(py)?;
            if ended || !self.follow {
                self.finished = true;
            } else if self.buffer.is_empty() {
                sleep(py)?;
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
