//! The agent loop: receives messages, consults the ledger, runs tasks, reports events, and
//! adopts the runs an earlier agent on the same root left in flight.
//!
//! Layout of an agent's root directory:
//!
//! ```text
//! <root>/agent.lock                      held (flock) while an Agent owns the root
//! <root>/ledger.jsonl                    the run ledger (see Ledger)
//! <root>/spool.jsonl                     events not yet acknowledged, for a server agent
//!                                        (see Spool)
//! <root>/spool.rejected                  events the spool set aside, with why (see Spool)
//! <root>/scripts/<service_def>/<hash>-<name>   scripts, by content hash, mode 0755
//! <root>/scripts/<hash>-bigmgr.sh        the stack library, by content hash, mode 0644: every
//!                                        script gets its path as BIGMGR_LIB (see stacklib)
//! <root>/units/<cluster>/<service>/<component>/  a unit's directory (the script's cwd)
//! <root>/units/<cluster>/<service>/<component>.unit.json
//!                                        the unit's UnitRecord (JSON): written before each
//!                                        run of a task of the unit, deleted when a `remove`
//!                                        succeeds
//! <root>/tasks/<task>.<attempt>/         one run's task directory:
//!     context.json                       the run's context (below)
//!     stdout.log, stderr.log             the script's output, appended to as it runs
//!     exit                               the script's exit status and a newline, written by
//!                                        its supervisor when it has ended (no newline yet: none)
//! ```
//!
//! Scripts run detached from the agent (see [`ProcessExecutor`](super::ProcessExecutor)): when
//! the agent dies they run on, writing to their log files, and their supervisors record their
//! exit status. [`Agent::open`] adopts each run the ledger holds in flight: one that left an
//! `exit` file, or whose process (as recorded in the ledger when it started) still runs, is
//! followed to its end once [`Agent::run`] serves (its output reported again from the first
//! line, its timeout counted from its original start); any other ends FAILED with an unknown
//! outcome.
//!
//! `context.json` is an object with `run` (`"12.1"`), `task`, `attempt`, `job`, `cluster`,
//! `service`, `service_def`, `component`, `command`, `host`, `address`, `root`, `unit_dir`,
//! `task_dir`, `files` (a list of `{"path": <relative>, "full_path": <absolute>}`), `env` (every
//! variable the script gets from the agent) and `context` (the server's extra context).

use super::stacklib::{STACKLIB_ENV, stacklib_path, write_stacklib};
use super::{
    ExecEnv, ExecOutcome, ExecSink, Executor, Ledger, LedgerEntry, StartedRun, UNKNOWN_OUTCOME,
    UnitRecord,
};
use crate::fsutil::write_atomic;
use crate::model::{LogStream, RunId, TaskState, now_ms};
use crate::transport::limits::{self, MAX_RESULT_MESSAGE};
use crate::transport::{AgentEvent, TaskResult, TaskSpec, ToAgent};
use crate::{Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How often [`Agent::open`] retries the root's lock while another agent holds it.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// While waiting for another agent's lock on the root, how often the log says so again.
const LOCK_WAIT_NOTE: Duration = Duration::from_secs(30);

/// An agent's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The host name this agent serves.
    pub name: String,
    /// The host's address.
    pub address: String,
    /// The directory holding the ledger, scripts, unit and task directories.
    pub root: PathBuf,
    /// Between SIGTERM and SIGKILL, on timeout or cancel.
    pub grace: Duration,
}

impl AgentConfig {
    /// Settings with the default grace period of 5 s.
    pub fn new(
        name: impl Into<String>,
        address: impl Into<String>,
        root: impl Into<PathBuf>,
    ) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            address: address.into(),
            root: root.into(),
            grace: Duration::from_secs(5),
        }
    }
}

/// One host's agent: owns its root directory (exclusively, by a lock file) and its ledger, and
/// runs what it is sent exactly once per [`RunId`].
pub struct Agent {
    shared: Arc<Shared>,
    /// The runs an earlier agent left in flight that this one follows once it serves, with
    /// their processes (if the ledger recorded them).
    resumed: Vec<(RunId, Option<StartedRun>)>,
    /// Held until the agent is dropped: its flock keeps other agents off this root.
    _lock: Flock<File>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.debug("Agent", f)
    }
}

/// What the loop and the executions share.
struct Shared {
    config: AgentConfig,
    executor: Arc<dyn Executor>,
    ledger: Mutex<Ledger>,
}

impl Shared {
    /// How an [`Agent`] and its [`AgentHandle`] show in `Debug`: their type `name` and the
    /// agent's settings.
    fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves the ledger consistent (each method either
        // appended or not), so a poisoned lock is still usable.
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Agent {
    /// Opens the agent on `config.root`: creates it, takes its lock (waiting while another
    /// agent holds it) and opens the ledger. Runs an earlier agent process received but never
    /// finished are never run again: those the executor can still follow
    /// ([`Executor::resumable`]: their process still runs, or it left its exit status) stay in
    /// flight and are followed to their end once [`Agent::run`] serves; the others are recorded
    /// as FAILED with an unknown outcome.
    pub async fn open(config: AgentConfig, executor: Arc<dyn Executor>) -> Result<Agent> {
        let mut config = config;
        std::fs::create_dir_all(&config.root).map_err(|e| Error::io(&config.root, e))?;
        // Scripts run in the unit directory: every path handed to them must be absolute.
        config.root = std::path::absolute(&config.root).map_err(|e| Error::io(&config.root, e))?;
        let lock_path = config.root.join("agent.lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        // flock(2): held per open file, so it excludes agents in this process and in others.
        // Waiting is said in the log, with the holder's pid (which it writes into the file),
        // when it starts and then every LOCK_WAIT_NOTE.
        let mut waiting_since: Option<std::time::Instant> = None;
        let mut next_note = std::time::Instant::now();
        let lock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                    file = f;
                    let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                    if std::time::Instant::now() >= next_note {
                        let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                        let holder = holder.trim();
                        let holder = if holder.is_empty() { "?" } else { holder };
                        tracing::warn!(
                            root = %config.root.display(),
                            holder_pid = %holder,
                            waited = ?since.elapsed(),
                            "another agent holds this root ({}); waiting for it to stop: one \
                             agent per root (stop the other one, or give this one another --root)",
                            lock_path.display()
                        );
                        next_note = std::time::Instant::now() + LOCK_WAIT_NOTE;
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err((_, errno)) => return Err(Error::io(&lock_path, errno.into())),
            }
        };
        // The holder's pid, for the next agent's message: written before the log says this
        // one holds the root, so whoever reads that line finds this pid in the file.
        {
            use std::io::{Seek, Write};
            let mut f: &File = &lock;
            let _ = f
                .set_len(0)
                .and_then(|()| f.seek(std::io::SeekFrom::Start(0)))
                .and_then(|_| writeln!(f, "{}", std::process::id()));
        }
        if let Some(since) = waiting_since {
            tracing::info!(root = %config.root.display(), waited = ?since.elapsed(), "the other agent stopped: this one holds the root now");
        }
        let mut ledger = Ledger::open(config.root.join("ledger.jsonl"))?;
        let mut resumed = Vec::new();
        for run in ledger.in_flight() {
            let started = ledger.started(run);
            let dir = task_dir(&config.root, run);
            if executor.resumable(run, &dir, started.as_ref()) {
                tracing::info!(%run, "adopting a run the previous agent left in flight");
                resumed.push((run, started));
            } else {
                tracing::warn!(%run, "run was in flight when the previous agent stopped");
                ledger.record_finished(run, unknown_outcome())?;
            }
        }
        Ok(Agent {
            shared: Arc::new(Shared {
                config,
                executor,
                ledger: Mutex::new(ledger),
            }),
            resumed,
            _lock: lock,
        })
    }

    /// The agent's settings (with `root` made absolute).
    pub fn config(&self) -> &AgentConfig {
        &self.shared.config
    }

    /// A handle that stays usable while [`Agent::run`] serves: what to report on each
    /// (re)connection.
    pub fn handle(&self) -> AgentHandle {
        AgentHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves `inbox` until it closes: sends `Hello` first (with the runs in flight, including
    /// those adopted from an earlier agent), starts following the adopted runs, then handles
    /// each message (see [`ToAgent`]), reporting on `outbox`. When the inbox closes it waits for
    /// every running execution to finish (their results land in the ledger), then releases the
    /// root.
    ///
    /// A closed outbox is not an error: the server is gone and the results stay in the ledger.
    /// Dropping the future instead (the agent dies) leaves the scripts running, for the next
    /// agent on the root to adopt.
    pub async fn run(
        self,
        mut inbox: mpsc::UnboundedReceiver<ToAgent>,
        outbox: mpsc::UnboundedSender<AgentEvent>,
    ) {
        let Agent {
            shared,
            resumed,
            _lock,
        } = self;
        let (running, finished) = {
            let ledger = shared.ledger();
            (ledger.in_flight(), ledger.finished())
        };
        let _ = outbox.send(AgentEvent::Hello { running, finished });
        let mut state = Loop {
            shared: &shared,
            outbox: &outbox,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            ids: HashMap::new(),
        };
        for (run, started) in resumed {
            state.resume(run, started);
        }
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(msg) => state.handle(msg),
                    None => break,
                },
                Some(joined) = state.tasks.join_next_with_id(), if !state.tasks.is_empty() => {
                    state.joined(joined);
                }
            }
        }
        drop(inbox);
        while let Some(joined) = state.tasks.join_next_with_id().await {
            state.joined(joined);
        }
        tracing::debug!(agent = %shared.config.name, "agent stopped");
    }
}

/// A view of a serving [`Agent`] for its connection to the server.
#[derive(Clone)]
pub struct AgentHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.debug("AgentHandle", f)
    }
}

impl AgentHandle {
    /// The agent's settings.
    pub fn config(&self) -> &AgentConfig {
        &self.shared.config
    }

    /// What a registration reports: the runs in flight now (running, including those adopted
    /// from an earlier agent) and the finished runs not yet cleaned, with their results (from
    /// the ledger).
    pub fn report(&self) -> (Vec<RunId>, Vec<(RunId, TaskResult)>) {
        let ledger = self.shared.ledger();
        (ledger.in_flight(), ledger.finished())
    }
}

/// The loop's state while serving.
struct Loop<'a> {
    shared: &'a Arc<Shared>,
    outbox: &'a mpsc::UnboundedSender<AgentEvent>,
    tasks: JoinSet<()>,
    /// The cancel switch of each running run.
    running: HashMap<RunId, watch::Sender<bool>>,
    /// Which run each execution task serves.
    ids: HashMap<tokio::task::Id, RunId>,
}

impl Loop<'_> {
    fn send(&self, event: AgentEvent) {
        // The server may be gone; the ledger keeps the results for the next Hello.
        let _ = self.outbox.send(event);
    }

    fn handle(&mut self, msg: ToAgent) {
        match msg {
            ToAgent::Run(spec) => self.run(spec),
            ToAgent::Cancel(run) => {
                if let Some(cancel) = self.running.get(&run) {
                    let _ = cancel.send(true);
                }
            }
            ToAgent::Clean(runs) => {
                if let Err(e) = self.shared.ledger().clean(&runs) {
                    tracing::error!(error = %e, "cannot clean the ledger");
                }
            }
        }
    }

    fn run(&mut self, spec: Box<TaskSpec>) {
        let run = spec.run;
        let entry = self.shared.ledger().lookup(run);
        match entry {
            Some(LedgerEntry::Finished(result)) => self.send(AgentEvent::Finished { run, result }),
            _ if self.running.contains_key(&run) => self.send(AgentEvent::Received(run)),
            Some(LedgerEntry::Received) => {
                // Received but not running: its execution ended without a recorded result.
                // It may have run, so it must not run again.
                let result = unknown_outcome();
                let _ = self.shared.ledger().record_finished(run, result.clone());
                self.send(AgentEvent::Finished { run, result });
            }
            None => {
                if let Err(e) = self.shared.ledger().record_received(run) {
                    // Not recorded, so not run: a redelivery may try again.
                    self.send(AgentEvent::Finished {
                        run,
                        result: failed(format!(
                            "cannot record the run in the agent's ledger, so it was not run: {e}"
                        )),
                    });
                    return;
                }
                let (cancel_tx, cancel_rx) = watch::channel(false);
                self.running.insert(run, cancel_tx);
                let handle = self.tasks.spawn(execute(
                    Arc::clone(self.shared),
                    self.outbox.clone(),
                    Arc::from(spec),
                    cancel_rx,
                ));
                // Queued after the execution is spawned but before it first runs, so it still
                // precedes every event of the run; on the agent's one thread the execution then
                // starts the process before the spooler wakes, so `Received` and `Started`
                // usually reach the server in one batch.
                self.send(AgentEvent::Received(run));
                self.ids.insert(handle.id(), run);
            }
        }
    }

    /// Follows a run an earlier agent started, as a running execution.
    fn resume(&mut self, run: RunId, started: Option<StartedRun>) {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        self.running.insert(run, cancel_tx);
        let handle = self.tasks.spawn(resume(
            Arc::clone(self.shared),
            self.outbox.clone(),
            run,
            started,
            cancel_rx,
        ));
        self.ids.insert(handle.id(), run);
    }

    /// An execution task ended: forget its cancel switch; record a panic as a failure.
    fn joined(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    ) {
        let (id, panic) = match joined {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e.to_string())),
        };
        let Some(run) = self.ids.remove(&id) else {
            return;
        };
        self.running.remove(&run);
        if let Some(panic) = panic {
            tracing::error!(%run, error = %panic, "the execution of a run panicked");
            let result = failed(format!("the agent's execution of this run failed: {panic}"));
            if let Err(e) = self.shared.ledger().record_finished(run, result.clone()) {
                tracing::error!(%run, error = %e, "cannot record a result in the ledger");
            }
            self.send(AgentEvent::Finished { run, result });
        }
    }
}

/// A FAILED result with `message`, of a run that never started.
fn failed(message: String) -> TaskResult {
    TaskResult {
        state: TaskState::Failed,
        exit_code: None,
        pid: None,
        started_at: None,
        finished_at: now_ms(),
        message: Some(bounded_message(message)),
        outcome_unknown: false,
    }
}

/// A result's message, cut to [`MAX_RESULT_MESSAGE`] bytes: it is kept in the ledger and
/// reported in every registration until cleaned.
fn bounded_message(mut message: String) -> String {
    limits::bound(&mut message, MAX_RESULT_MESSAGE, "message");
    message
}

/// The result of a run whose execution was lost with the agent.
fn unknown_outcome() -> TaskResult {
    TaskResult {
        outcome_unknown: true,
        ..failed(UNKNOWN_OUTCOME.to_owned())
    }
}

/// Records when one execution's script starts and reports what it does as [`AgentEvent`]s.
struct RunSink {
    run: RunId,
    shared: Arc<Shared>,
    outbox: mpsc::UnboundedSender<AgentEvent>,
    seq: AtomicU64,
    /// When the process started; `i64::MIN` until then.
    started_at: AtomicI64,
}

impl RunSink {
    fn new(
        run: RunId,
        shared: Arc<Shared>,
        outbox: mpsc::UnboundedSender<AgentEvent>,
        started_at: Option<i64>,
    ) -> RunSink {
        RunSink {
            run,
            shared,
            outbox,
            seq: AtomicU64::new(0),
            started_at: AtomicI64::new(started_at.unwrap_or(i64::MIN)),
        }
    }

    fn started_at(&self) -> Option<i64> {
        Some(self.started_at.load(Ordering::Relaxed)).filter(|t| *t != i64::MIN)
    }
}

impl ExecSink for RunSink {
    fn started(&self, started: &StartedRun) {
        let run = self.run;
        self.started_at.store(started.started_at, Ordering::Relaxed);
        // Recorded before it is reported: a later agent must find the process.
        if let Err(e) = self.shared.ledger().record_started(run, *started) {
            tracing::error!(%run, error = %e, "cannot record a started process in the ledger");
        }
        let _ = self.outbox.send(AgentEvent::Started {
            run,
            pid: started.pid,
            at: started.started_at,
        });
    }

    fn line(&self, stream: LogStream, line: String) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let _ = self.outbox.send(AgentEvent::Log {
            run: self.run,
            stream,
            seq,
            at: now_ms(),
            line,
        });
    }
}

/// Runs one run to its end: prepares its files (if the executor needs them), runs it, records
/// the result in the ledger and then reports it.
async fn execute(
    shared: Arc<Shared>,
    outbox: mpsc::UnboundedSender<AgentEvent>,
    spec: Arc<TaskSpec>,
    cancel: watch::Receiver<bool>,
) {
    let run = spec.run;
    let env = exec_env(&shared.config, &spec);
    let sink = RunSink::new(run, Arc::clone(&shared), outbox.clone(), None);
    let needs_files = shared.executor.needs_files();
    // On this thread: a few small files into the page cache (the message limit bounds what a
    // spec carries), far cheaper than the two thread wake-ups a blocking pool costs per run.
    let prepared = if needs_files {
        prepare(&spec, &env)
    } else {
        Ok(())
    };
    let outcome = match prepared {
        Ok(()) => shared.executor.run(&spec, &env, &sink, cancel).await,
        Err(message) => ExecOutcome {
            state: TaskState::Failed,
            exit_code: None,
            pid: None,
            message: Some(message),
            outcome_unknown: false,
        },
    };
    if needs_files && outcome.state == TaskState::Succeeded && spec.command == REMOVE {
        forget_unit(&unit_record_path(
            &shared.config.root,
            &spec.cluster,
            &spec.service,
            &spec.component,
        ));
    }
    finish(&shared, &outbox, run, outcome, sink.started_at());
}

/// Follows a run an earlier agent started to its end (see [`Executor::resume`]), records the
/// result in the ledger and then reports it.
async fn resume(
    shared: Arc<Shared>,
    outbox: mpsc::UnboundedSender<AgentEvent>,
    run: RunId,
    started: Option<StartedRun>,
    cancel: watch::Receiver<bool>,
) {
    let dir = task_dir(&shared.config.root, run);
    let sink = RunSink::new(
        run,
        Arc::clone(&shared),
        outbox.clone(),
        started.map(|s| s.started_at),
    );
    let outcome = shared
        .executor
        .resume(
            run,
            &dir,
            started.as_ref(),
            shared.config.grace,
            &sink,
            cancel,
        )
        .await;
    if outcome.state == TaskState::Succeeded {
        // The spec is gone with the earlier agent; the context file says what the run was.
        if let Some(unit) = removed_unit(&shared.config.root, &dir) {
            forget_unit(&unit);
        }
    }
    let outcome = ExecOutcome {
        pid: outcome.pid.or(started.map(|s| s.pid)),
        ..outcome
    };
    finish(&shared, &outbox, run, outcome, sink.started_at());
}

/// Records how `run` ended in the ledger, then reports it.
fn finish(
    shared: &Shared,
    outbox: &mpsc::UnboundedSender<AgentEvent>,
    run: RunId,
    outcome: ExecOutcome,
    started_at: Option<i64>,
) {
    let result = TaskResult {
        state: outcome.state,
        exit_code: outcome.exit_code,
        pid: outcome.pid,
        started_at,
        finished_at: now_ms(),
        message: outcome.message.map(bounded_message),
        outcome_unknown: outcome.outcome_unknown,
    };
    if let Err(e) = shared.ledger().record_finished(run, result.clone()) {
        tracing::error!(%run, error = %e, "cannot record a result in the ledger");
    }
    let _ = outbox.send(AgentEvent::Finished { run, result });
}

/// The command whose success deletes the unit's record.
const REMOVE: &str = "remove";

/// `<root>/tasks/<task>.<attempt>`: the directory of one run.
fn task_dir(root: &Path, run: RunId) -> PathBuf {
    root.join("tasks")
        .join(format!("{}.{}", run.task, run.attempt))
}

/// `<root>/units/<cluster>/<service>/<component>.unit.json`: where a unit's [`UnitRecord`]
/// lives.
fn unit_record_path(root: &Path, cluster: &str, service: &str, component: &str) -> PathBuf {
    root.join("units")
        .join(cluster)
        .join(service)
        .join(format!("{component}.unit.json"))
}

/// Deletes a unit's record (its `remove` succeeded); one already gone is fine.
fn forget_unit(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "unit removed; record deleted"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete a unit record")
        }
    }
}

/// The record of the unit whose `remove` ran in `task_dir`, read from the run's context file;
/// `None` if the run was another command (or the file is unreadable).
fn removed_unit(root: &Path, task_dir: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(task_dir.join("context.json")).ok()?;
    let context: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let field = |name: &str| context.get(name).and_then(serde_json::Value::as_str);
    if field("command")? != REMOVE {
        return None;
    }
    let (cluster, service, component) = (field("cluster")?, field("service")?, field("component")?);
    [cluster, service, component]
        .iter()
        .all(|n| is_plain_name(n))
        .then(|| unit_record_path(root, cluster, service, component))
}

/// The prefix of the variables the agent sets for every run (`BIGMGR_UNIT_DIR`, …): a task's own
/// variables may not use it, so a script can trust where they point.
const RESERVED_ENV_PREFIX: &str = "BIGMGR_";

/// Where `spec` runs and with which variables.
fn exec_env(config: &AgentConfig, spec: &TaskSpec) -> ExecEnv {
    let root = &config.root;
    let unit_dir = root
        .join("units")
        .join(&spec.cluster)
        .join(&spec.service)
        .join(&spec.component);
    let task_dir = task_dir(root, spec.run);
    let script = root.join("scripts").join(&spec.service_def).join(format!(
        "{:016x}-{}",
        fnv1a(&spec.script.content),
        spec.script.name
    ));
    let context_file = task_dir.join("context.json");
    let host = if spec.host.is_empty() {
        &config.name
    } else {
        &spec.host
    };
    let address = if spec.address.is_empty() {
        &config.address
    } else {
        &spec.address
    };
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = [
        ("BIGMGR_COMMAND", spec.command.clone()),
        ("BIGMGR_RUN", spec.run.to_string()),
        ("BIGMGR_TASK", spec.run.task.to_string()),
        ("BIGMGR_ATTEMPT", spec.run.attempt.to_string()),
        ("BIGMGR_JOB", spec.job.to_string()),
        ("BIGMGR_CLUSTER", spec.cluster.clone()),
        ("BIGMGR_SERVICE", spec.service.clone()),
        ("BIGMGR_SERVICE_DEF", spec.service_def.clone()),
        ("BIGMGR_COMPONENT", spec.component.clone()),
        ("BIGMGR_HOST", host.clone()),
        ("BIGMGR_ADDRESS", address.clone()),
        ("BIGMGR_ROOT", path(root)),
        ("BIGMGR_UNIT_DIR", path(&unit_dir)),
        ("BIGMGR_TASK_DIR", path(&task_dir)),
        ("BIGMGR_CONTEXT", path(&context_file)),
        (STACKLIB_ENV, path(&stacklib_path(root))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    ExecEnv {
        root: root.clone(),
        unit_dir,
        task_dir,
        script,
        context_file,
        env,
        grace: config.grace,
    }
}

/// Writes the script and the stack library (each once per content), the unit's files, the
/// context file and the unit's record.
fn prepare(spec: &TaskSpec, env: &ExecEnv) -> std::result::Result<(), String> {
    for (what, name) in [
        ("cluster", &spec.cluster),
        ("service", &spec.service),
        ("service definition", &spec.service_def),
        ("component", &spec.component),
        ("script name", &spec.script.name),
    ] {
        if !is_plain_name(name) {
            return Err(format!(
                "refusing to run: the {what} name '{name}' is not a plain file name"
            ));
        }
    }
    for (name, value) in &spec.env {
        if !crate::name::is_env_name(name) {
            return Err(format!(
                "refusing to run: '{}' is not an environment variable name (letters, digits \
                 and '_', not starting with a digit)",
                name.escape_debug()
            ));
        }
        if name.starts_with(RESERVED_ENV_PREFIX) {
            return Err(format!(
                "refusing to run: the variable {name} is the agent's to set (names starting \
                 with {RESERVED_ENV_PREFIX} are reserved)"
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "refusing to run: the value of {name} holds a NUL byte, which no environment \
                 can carry"
            ));
        }
    }
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());

    if !env.script.exists() {
        let dir = env.script.parent().unwrap_or(&env.root);
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        write_atomic(&env.script, &spec.script.content, 0o755, false)
            .map_err(|e| io(&env.script, e))?;
    }
    let lib = stacklib_path(&env.root);
    write_stacklib(&lib).map_err(|e| io(&lib, e))?;
    std::fs::create_dir_all(&env.unit_dir).map_err(|e| io(&env.unit_dir, e))?;
    std::fs::create_dir_all(&env.task_dir).map_err(|e| io(&env.task_dir, e))?;

    let mut files = Vec::with_capacity(spec.files.len());
    for file in &spec.files {
        let rel = Path::new(&file.path);
        let plain = !file.path.is_empty()
            && rel
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(format!(
                "refusing to write file '{}': a file's path must be relative to the unit \
                 directory, without '..'",
                file.path
            ));
        }
        let full = env.unit_dir.join(rel);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        write_atomic(&full, file.content.as_bytes(), 0o644, false).map_err(|e| io(&full, e))?;
        files.push(serde_json::json!({
            "path": file.path,
            "full_path": full.to_string_lossy(),
        }));
    }

    let vars: serde_json::Map<String, serde_json::Value> = env
        .env
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let context = serde_json::json!({
        "run": spec.run.to_string(),
        "task": spec.run.task,
        "attempt": spec.run.attempt,
        "job": spec.job,
        "cluster": spec.cluster,
        "service": spec.service,
        "service_def": spec.service_def,
        "component": spec.component,
        "command": spec.command,
        "host": var(&env.env, "BIGMGR_HOST"),
        "address": var(&env.env, "BIGMGR_ADDRESS"),
        "root": env.root.to_string_lossy(),
        "unit_dir": env.unit_dir.to_string_lossy(),
        "task_dir": env.task_dir.to_string_lossy(),
        "files": files,
        "env": vars,
        "context": spec.context,
    });
    let bytes = serde_json::to_vec_pretty(&context)
        .map_err(|e| format!("cannot encode the context file: {e}"))?;
    // Owner-only: the context holds the unit's secret config values.
    write_atomic(&env.context_file, &bytes, 0o600, false).map_err(|e| io(&env.context_file, e))?;

    let record = UnitRecord {
        cluster: spec.cluster.clone(),
        service: spec.service.clone(),
        service_def: spec.service_def.clone(),
        component: spec.component.clone(),
        script: env.script.clone(),
        unit_dir: env.unit_dir.clone(),
        env: env.env.clone(),
        status: spec.status,
        // The server renders them into the context of every contextual task; a task without
        // them (a status run) keeps the ones recorded before.
        checks: match spec.context.get("checks") {
            Some(checks) => serde_json::from_value(checks.clone()).unwrap_or_default(),
            None => previous_checks(&env.root, spec),
        },
    };
    let bytes = serde_json::to_vec_pretty(&record)
        .map_err(|e| format!("cannot encode the unit record: {e}"))?;
    let path = unit_record_path(&env.root, &spec.cluster, &spec.service, &spec.component);
    write_atomic(&path, &bytes, 0o644, false).map_err(|e| io(&path, e))
}

/// The checks recorded for `spec`'s unit before, if any.
fn previous_checks(root: &Path, spec: &TaskSpec) -> Vec<crate::model::CheckSpec> {
    let path = unit_record_path(root, &spec.cluster, &spec.service, &spec.component);
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<UnitRecord>(&b).ok())
        .map(|r| r.checks)
        .unwrap_or_default()
}

/// The value of `key` in `env`, or "".
fn var<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// Whether `name` can be used as one path component.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The 64-bit FNV-1a hash: stable across builds, so a script keeps its file name. `const`, so
/// the stack library's name is computed when the agent is built.
pub(super) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        assert!(is_plain_name("zookeeper_server.sh"));
        for bad in ["", ".", "..", "a/b", "/etc"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
