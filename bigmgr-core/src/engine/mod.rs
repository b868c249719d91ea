//! The job engine: one task that owns the running jobs, applies agent events to them, asks the
//! [`Scheduler`] what goes next, persists every decision in one batched [`JobStore::apply`] per
//! step, and only then sends messages to agents.
//!
//! Order matters for exactly-once: a task is QUEUED in the store before its `Run` is sent, a
//! result is stored before its `Clean` is sent. A restarted engine re-adopts in-flight tasks
//! from the agents' `Hello` reports and redelivers (same run id) only what no agent holds.

mod exec;
mod job;

use exec::StageExec;

use crate::model::*;
use crate::render::Topology;
use crate::sched::{JobRun, Scheduler};
use crate::stack::StackProvider;
use crate::store::{Applied, Batch, JobChange, JobStore, StageChange, TaskChange, TopologyStore};
use crate::transport::{AgentEvent, FromAgent, TaskResult, ToAgent, Transport};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Timings of the engine's own watchdogs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// A task sent but not acknowledged (RECEIVED) within this is sent again.
    pub delivery_timeout: Duration,
    /// How often a task is sent again before it fails as lost by transport (docs/design.md §6).
    pub max_redeliveries: u32,
    /// A task with no result this long after its timeout has passed fails.
    pub result_slack: Duration,
    /// A task in flight on a host that turned LOST waits this long for the host to come back
    /// (never longer than its own timeout), then fails with its outcome unknown: a lost
    /// heartbeat does not hold a job for a command's whole timeout (docs/engine.md).
    pub lost_grace: Duration,
    /// How often the watchdogs look.
    pub tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            delivery_timeout: Duration::from_secs(30),
            max_redeliveries: 3,
            result_slack: Duration::from_secs(30),
            lost_grace: Duration::from_secs(60),
            tick: Duration::from_millis(500),
        }
    }
}

/// A change the engine made, broadcast to whoever watches (waits, progress bars, event streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A job changed state.
    Job {
        /// The job.
        id: JobId,
        /// Its new state.
        state: JobState,
    },
    /// A task changed state.
    Task {
        /// Its job.
        job: JobId,
        /// The task.
        task: TaskId,
        /// Its new state.
        state: TaskState,
    },
    /// An agent (re)registered: its host's address or facts may have changed.
    Host {
        /// The host name.
        name: String,
    },
}

/// New log lines of a task are in the store: a follower of its job reads them now. Sent once per
/// task a step stored lines of, after the step's [`Update`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Logged {
    /// The task's job.
    pub(crate) job: JobId,
    /// The task.
    pub(crate) task: TaskId,
}

/// An operator's action on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop everything: pending tasks are cancelled, running scripts get SIGTERM.
    Cancel,
    /// No new dispatch; running tasks finish.
    Pause,
    /// Dispatch again after a pause.
    Resume,
    /// Run the failed and cancelled tasks of an ended job again.
    Retry,
}

/// What the [`crate::Manager`] sends the engine.
pub(crate) enum Command {
    /// A job was persisted QUEUED.
    Queued(Job),
    /// A job was persisted QUEUED, with its stages and tasks as `create_job` returned them:
    /// what `job_detail` would read back (the store conformance suite checks that they are
    /// the same), so the engine does not read a new job's tasks again to start it.
    Created(Box<JobDetail>),
    /// An operator's action; the reply is the job after it.
    Control {
        id: JobId,
        action: Control,
        reply: oneshot::Sender<Result<Job>>,
    },
}

/// Where a dispatched task is, for the watchdogs.
#[derive(Debug, Clone)]
struct Flight {
    sent_at: Instant,
    received: bool,
    started: Option<Instant>,
    redeliveries: u32,
    /// The transport refused the last send (no agent connected): the run is in no agent's
    /// hands and on no wire, so a cancel can end it at once.
    undelivered: bool,
}

/// A job the engine runs, with what it needs to build task specs.
struct Active {
    run: JobRun,
    cluster: Arc<str>,
    exec: Vec<std::result::Result<Arc<StageExec>, String>>,
    /// The cluster as templates see it when the job was loaded: renders files and contexts.
    topology: std::result::Result<Arc<Topology>, String>,
    hosts: HashMap<HostId, Arc<Host>>,
    pos: HashMap<TaskId, usize>,
    flights: HashMap<usize, Flight>,
    auto_retries: HashMap<usize, u32>,
    /// Per task, how often it was run again after its run was lost with its host.
    lost_reruns: HashMap<usize, u32>,
}

/// What an engine is made of: the Manager wires these together and hands them over.
#[derive(Clone)]
pub(crate) struct EngineParts {
    /// Its jobs: read to load them, written through [`JobStore::apply`] once per step.
    pub(crate) jobs: Arc<dyn JobStore>,
    /// What loading a job reads besides the job: its cluster's hosts and services and, for
    /// stages that render configs, the cluster as templates see it. Only read.
    pub(crate) topology: Arc<dyn TopologyStore>,
    /// How tasks reach agents.
    pub(crate) transport: Arc<dyn Transport>,
    /// Where stage scripts and templates come from.
    pub(crate) stacks: Arc<dyn StackProvider>,
    /// Which jobs run, and which of their tasks go next.
    pub(crate) scheduler: Arc<dyn Scheduler>,
    /// Its timings and limits.
    pub(crate) config: EngineConfig,
    /// Where it publishes job, task and host updates.
    pub(crate) updates: broadcast::Sender<Update>,
    /// Where it tells which tasks have new log lines stored.
    pub(crate) logged: broadcast::Sender<Logged>,
    /// Where it reports task durations, dispatch latency and store batch times.
    pub(crate) metrics: crate::metrics::Metrics,
}

/// The engine's state; lives in one tokio task.
pub(crate) struct Engine {
    parts: EngineParts,
    active: BTreeMap<JobId, Active>,
    queued: BTreeMap<JobId, Job>,
    /// The stages and tasks of queued jobs this engine was handed as they were created
    /// ([`Command::Created`]); taken when the job is loaded.
    created: HashMap<JobId, JobDetail>,
    task_job: HashMap<TaskId, JobId>,
    /// Hosts the transport reported LOST, with when: their in-flight tasks fail once
    /// `lost_grace` has passed since then, or their timeout, with no slack for a result on its
    /// way.
    lost: HashMap<Arc<str>, Instant>,
    /// Per host, the highest event sequence number received this step: acknowledged through
    /// [`Transport::stored`] once this step's changes are stored.
    acks: HashMap<Arc<str>, u64>,
    // Collected during one step, flushed at its end.
    batch: Batch,
    outbox: Vec<(Arc<str>, ToAgent)>,
    clean: HashMap<Arc<str>, Vec<RunId>>,
    published: Vec<Update>,
    replies: Vec<(oneshot::Sender<Result<Job>>, Result<JobId>)>,
    ended: Vec<JobId>,
}

impl Engine {
    pub(crate) fn new(parts: EngineParts) -> Engine {
        Engine {
            parts,
            active: BTreeMap::new(),
            queued: BTreeMap::new(),
            created: HashMap::new(),
            task_job: HashMap::new(),
            lost: HashMap::new(),
            acks: HashMap::new(),
            batch: Batch::default(),
            outbox: Vec::new(),
            clean: HashMap::new(),
            published: Vec::new(),
            replies: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Loads the unfinished jobs of an earlier run: QUEUED ones wait their turn, the others are
    /// adopted with their in-flight tasks (confirmed or redelivered when their agents say Hello).
    pub(crate) async fn recover(&mut self) -> Result<()> {
        let filter = JobFilter {
            states: JobState::UNFINISHED.to_vec(),
            ..JobFilter::default()
        };
        for job in self.parts.jobs.list_jobs(&filter).await? {
            if job.state == JobState::Queued {
                self.queued.insert(job.id, job);
            } else {
                self.load(job.id).await?;
                if let Some(a) = self.active.get_mut(&job.id) {
                    // In flight before the restart: not known to be received until a Hello says so.
                    let now = Instant::now();
                    for (i, t) in a.run.tasks.iter().enumerate() {
                        if matches!(t.task.state, TaskState::Queued | TaskState::Running) {
                            a.flights.insert(
                                i,
                                Flight {
                                    sent_at: now,
                                    received: false,
                                    started: (t.task.state == TaskState::Running).then_some(now),
                                    redeliveries: 0,
                                    undelivered: false,
                                },
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs until the command channel closes.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::UnboundedReceiver<FromAgent>,
    ) {
        let mut tick = tokio::time::interval(self.parts.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.step_or_resync().await;
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                _ = tick.tick() => self.watchdog(),
            }
            // Take whatever else is waiting, so one store transaction covers many events.
            for _ in 0..8192 {
                match events.try_recv() {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => break,
                }
            }
            while let Ok(cmd) = commands.try_recv() {
                self.on_command(cmd).await;
            }
            self.step_or_resync().await;
        }
        tracing::debug!("engine stopped");
    }

    /// Runs a step; if the store failed, forgets everything not stored — unsent messages
    /// included, so nothing is dispatched that the store does not show as QUEUED — and reloads
    /// the unfinished jobs from the store. Agents hold on to results until they are cleaned.
    async fn step_or_resync(&mut self) {
        let Err(e) = self.step().await else { return };
        tracing::error!(error = %e, "engine step failed; reloading jobs from the store");
        self.batch = Batch::default();
        self.outbox.clear();
        self.clean.clear();
        self.published.clear();
        self.ended.clear();
        for (reply, _) in self.replies.drain(..) {
            let _ = reply.send(Err(Error::Store(format!(
                "the engine could not store the change: {e}"
            ))));
        }
        self.active.clear();
        self.queued.clear();
        self.created.clear();
        self.task_job.clear();
        let mut wait = Duration::from_millis(100);
        while let Err(e) = self.recover().await {
            tracing::error!(error = %e, "cannot reload jobs from the store; trying again");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Loads a job into the active set: from the store, or as it was created if this engine
    /// was handed it then.
    async fn load(&mut self, id: JobId) -> Result<()> {
        let detail = match self.created.remove(&id) {
            Some(detail) => detail,
            None => self
                .parts
                .jobs
                .job_detail(id)
                .await?
                .ok_or_else(|| Error::not_found("job", id))?,
        };
        let cluster = self
            .parts
            .topology
            .list_clusters()
            .await?
            .into_iter()
            .find(|c| c.id == detail.job.cluster)
            .ok_or_else(|| Error::not_found("cluster", detail.job.cluster))?;
        let hosts: HashMap<HostId, Arc<Host>> = self
            .parts
            .topology
            .list_hosts(cluster.id)
            .await?
            .into_iter()
            .map(|h| (h.id, Arc::new(h)))
            .collect();
        let services = self.parts.topology.list_services(cluster.id).await?;
        let exec = exec::resolve(self.parts.stacks.as_ref(), &services, &detail.stages).await;
        // Only services with configs or relation endpoints need the cluster as templates see
        // it; a job of none of them skips loading it.
        let topology = if exec.iter().any(|e| e.as_ref().is_ok_and(|x| x.contextual)) {
            Topology::load(
                self.parts.topology.as_ref(),
                self.parts.stacks.as_ref(),
                &cluster,
            )
            .await
            .map(Arc::new)
            .map_err(|e| e.to_string())
        } else {
            Err("no stage of this job renders configs".to_string())
        };
        let run = JobRun::new(detail);
        let pos: HashMap<TaskId, usize> = run
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task.id, i))
            .collect();
        for t in pos.keys() {
            self.task_job.insert(*t, id);
        }
        self.active.insert(
            id,
            Active {
                run,
                cluster: cluster.name.into(),
                exec,
                topology,
                hosts,
                pos,
                flights: HashMap::new(),
                auto_retries: HashMap::new(),
                lost_reruns: HashMap::new(),
            },
        );
        Ok(())
    }

    fn unload(&mut self, id: JobId) {
        if let Some(a) = self.active.remove(&id) {
            for t in a.pos.keys() {
                self.task_job.remove(t);
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Queued(job) => {
                self.queued.insert(job.id, job);
            }
            Command::Created(detail) => {
                self.queued.insert(detail.job.id, detail.job.clone());
                self.created.insert(detail.job.id, *detail);
            }
            Command::Control { id, action, reply } => {
                let outcome = self.control(id, action).await.map(|()| id);
                self.replies.push((reply, outcome));
            }
        }
    }

    /// Applies an operator's action; its changes join this step's batch.
    async fn control(&mut self, id: JobId, action: Control) -> Result<()> {
        let job = match self.active.get(&id) {
            Some(a) => a.run.job.clone(),
            None => self
                .parts
                .jobs
                .get_job(id)
                .await?
                .ok_or_else(|| Error::not_found("job", id))?,
        };
        let refuse = |what: &str| {
            Err(Error::Conflict(format!(
                "job {id} is {}; {what}",
                job.state
            )))
        };
        match action {
            Control::Cancel => {
                if job.state.is_final() {
                    return refuse("only a queued, running or paused job can be cancelled");
                }
                if job.state == JobState::Canceling {
                    return Ok(());
                }
                if job.state == JobState::Queued {
                    self.queued.remove(&id);
                    self.load(id).await?;
                }
                self.cancel_job(id);
                Ok(())
            }
            Control::Pause => {
                if job.state != JobState::Running {
                    return refuse("only a running job can be paused");
                }
                self.set_job_state(id, JobState::Paused);
                Ok(())
            }
            Control::Resume => {
                if job.state != JobState::Paused {
                    return refuse("only a paused job can be resumed");
                }
                self.set_job_state(id, JobState::Running);
                Ok(())
            }
            Control::Retry => {
                if !matches!(job.state, JobState::Failed | JobState::Canceled) {
                    return refuse("only a failed or cancelled job can be retried");
                }
                self.retry_job(id).await
            }
        }
    }

    fn set_job_state(&mut self, id: JobId, to: JobState) {
        let Some(a) = self.active.get_mut(&id) else {
            return;
        };
        let from = a.run.job.state;
        if from == to {
            return;
        }
        let at = now_ms();
        a.run.job.state = to;
        if to == JobState::Running && a.run.job.started_at.is_none() {
            a.run.job.started_at = Some(at);
        }
        a.run.job.finished_at = to.is_final().then_some(at);
        self.batch.jobs.push(JobChange { id, from, to, at });
        self.published.push(Update::Job { id, state: to });
    }

    /// Cancels a loaded job: pending tasks end CANCELED, in-flight ones are told to stop.
    fn cancel_job(&mut self, id: JobId) {
        let Some(a) = self.active.get_mut(&id) else {
            return;
        };
        for i in 0..a.run.tasks.len() {
            match a.run.tasks[i].task.state {
                TaskState::Pending => job::set_task(
                    a,
                    &mut self.batch,
                    &mut self.published,
                    i,
                    TaskState::Canceled,
                    None,
                ),
                TaskState::Queued
                    if a.flights
                        .get(&i)
                        .is_some_and(|f| f.undelivered && !f.received) =>
                {
                    a.flights.remove(&i);
                    job::set_task(
                        a,
                        &mut self.batch,
                        &mut self.published,
                        i,
                        TaskState::Canceled,
                        Some("canceled before any agent received it".into()),
                    );
                }
                TaskState::Queued | TaskState::Running => {
                    let t = &a.run.tasks[i].task;
                    if let Some(h) = a.hosts.get(&t.host) {
                        self.outbox
                            .push((h.name.as_str().into(), ToAgent::Cancel(t.run_id())));
                    }
                }
                _ => {}
            }
        }
        self.set_job_state(id, JobState::Canceling);
    }

    /// Resets an ended job's failed and cancelled tasks (new attempts) and queues it again.
    async fn retry_job(&mut self, id: JobId) -> Result<()> {
        self.load(id).await?;
        let Some(a) = self.active.get_mut(&id) else {
            return Ok(());
        };
        for i in 0..a.run.tasks.len() {
            if a.run.tasks[i].task.state.is_retryable() {
                job::new_attempt(a, &mut self.batch, &mut self.published, i);
            }
        }
        for st in &mut a.run.stages {
            if st.stage.state != StageState::Succeeded {
                self.batch.stages.push(StageChange {
                    id: st.stage.id,
                    from: st.stage.state,
                    to: StageState::Pending,
                });
                st.stage.state = StageState::Pending;
            }
        }
        let job = a.run.job.clone();
        let at = now_ms();
        self.batch.jobs.push(JobChange {
            id,
            from: job.state,
            to: JobState::Queued,
            at,
        });
        self.published.push(Update::Job {
            id,
            state: JobState::Queued,
        });
        self.unload(id);
        self.queued.insert(
            id,
            Job {
                state: JobState::Queued,
                finished_at: None,
                ..job
            },
        );
        Ok(())
    }

    fn on_event(&mut self, ev: FromAgent) {
        let host: Arc<str> = ev.host.as_str().into();
        if ev.seq > 0 {
            let upto = self.acks.entry(host.clone()).or_default();
            *upto = (*upto).max(ev.seq);
        }
        match ev.event {
            AgentEvent::Hello { running, finished } => {
                self.lost.remove(&host);
                let _ = self.parts.updates.send(Update::Host {
                    name: host.to_string(),
                });
                for (run, result) in finished {
                    self.on_finished(&host, run, result);
                }
                self.on_hello(&host, &running);
            }
            AgentEvent::Received(run) => {
                if let Some((a, i)) = find(&self.task_job, &mut self.active, run)
                    && let Some(f) = a.flights.get_mut(&i)
                {
                    f.received = true;
                }
            }
            AgentEvent::Started { run, pid, at } => {
                let Some((a, i)) = find(&self.task_job, &mut self.active, run) else {
                    return;
                };
                let t = &mut a.run.tasks[i].task;
                if t.state != TaskState::Queued {
                    return;
                }
                let job = t.job;
                t.pid = Some(pid);
                t.started_at = Some(at);
                self.batch.tasks.push(TaskChange {
                    id: run.task,
                    from: TaskState::Queued,
                    to: TaskState::Running,
                    attempt_is: Some(run.attempt),
                    pid: Some(pid),
                    started_at: Some(at),
                    ..TaskChange::default()
                });
                a.run.set_task_state(i, TaskState::Running);
                self.published.push(Update::Task {
                    job,
                    task: run.task,
                    state: TaskState::Running,
                });
                if let Some(f) = a.flights.get_mut(&i) {
                    f.received = true;
                    let now = Instant::now();
                    f.started = Some(now);
                    self.parts
                        .metrics
                        .observe_dispatch(now.saturating_duration_since(f.sent_at));
                }
            }
            AgentEvent::Log {
                run,
                stream,
                seq,
                at,
                line,
            } => {
                self.batch.logs.push(LogLine {
                    task: run.task,
                    attempt: run.attempt,
                    seq,
                    stream,
                    at,
                    line,
                });
            }
            AgentEvent::Finished { run, result } => self.on_finished(&host, run, result),
            AgentEvent::Presence(HostState::Lost) => {
                tracing::warn!(%host, "host lost: no heartbeat for three intervals");
                self.lost.entry(host).or_insert_with(Instant::now);
            }
            AgentEvent::Presence(HostState::Online) => {
                self.lost.remove(&host);
            }
            // Transports never report a host back to waiting for its first agent.
            AgentEvent::Presence(HostState::Waiting) => {}
        }
    }

    /// A run's result: stored (if the task still waits for it), then cleaned on the agent.
    fn on_finished(&mut self, host: &Arc<str>, run: RunId, result: TaskResult) {
        self.clean.entry(host.clone()).or_default().push(run);
        let Some((a, i)) = find(&self.task_job, &mut self.active, run) else {
            return;
        };
        if !matches!(
            a.run.tasks[i].task.state,
            TaskState::Queued | TaskState::Running
        ) {
            return;
        }
        a.flights.remove(&i);
        if let Some(started) = result.started_at.or(a.run.tasks[i].task.started_at) {
            let ran = u64::try_from(result.finished_at - started).unwrap_or(0);
            let command = &a.run.stages[a.run.tasks[i].stage].stage.command;
            self.parts
                .metrics
                .observe_task(command, std::time::Duration::from_millis(ran));
        }
        job::finish_task(a, &mut self.batch, &mut self.published, i, &result);
    }

    /// An agent (re)connected: in-flight tasks of its host it does not hold are sent again.
    fn on_hello(&mut self, host: &Arc<str>, running: &[RunId]) {
        let running: HashSet<RunId> = running.iter().copied().collect();
        let ids: Vec<JobId> = self.active.keys().copied().collect();
        for id in ids {
            let Some(a) = self.active.get_mut(&id) else {
                continue;
            };
            let mine: Vec<usize> = a
                .flights
                .keys()
                .copied()
                .filter(|&i| {
                    a.hosts
                        .get(&a.run.tasks[i].task.host)
                        .is_some_and(|h| *h.name == **host)
                        && !a.exec[a.run.tasks[i].stage]
                            .as_ref()
                            .is_ok_and(|e| e.server_side)
                })
                .collect();
            let mut lost = Vec::new();
            for i in mine {
                if running.contains(&a.run.tasks[i].task.run_id()) {
                    if let Some(f) = a.flights.get_mut(&i) {
                        f.received = true;
                    }
                } else {
                    lost.push(i);
                }
            }
            for i in lost {
                self.redeliver(id, i, "its agent reconnected without it");
            }
        }
    }

    /// Sends an in-flight task again (same run id), or gives up after `max_redeliveries`.
    fn redeliver(&mut self, id: JobId, i: usize, why: &str) {
        let max = self.parts.config.max_redeliveries;
        let Some(a) = self.active.get_mut(&id) else {
            return;
        };
        let canceling = a.run.job.state == JobState::Canceling;
        let Some(f) = a.flights.get_mut(&i) else {
            return;
        };
        if canceling || f.redeliveries >= max {
            let host = a
                .hosts
                .get(&a.run.tasks[i].task.host)
                .map(|h| h.name.clone())
                .unwrap_or_default();
            let (to, message) = if canceling {
                (
                    TaskState::Canceled,
                    format!("cancelled before host {host} received it"),
                )
            } else {
                (
                    TaskState::Failed,
                    format!("lost in transport to host {host} after {max} redeliveries ({why})"),
                )
            };
            a.flights.remove(&i);
            job::set_task(
                a,
                &mut self.batch,
                &mut self.published,
                i,
                to,
                Some(message),
            );
            return;
        }
        f.redeliveries += 1;
        f.sent_at = Instant::now();
        f.received = false;
        f.undelivered = false;
        tracing::warn!(job = %id, task = %a.run.tasks[i].task.id, why, "redelivering task");
        match job::spec(a, i) {
            Ok((host, spec)) => self.outbox.push((host, ToAgent::Run(Box::new(spec)))),
            Err(why) => {
                tracing::error!(task = %a.run.tasks[i].task.id, why, "cannot rebuild the task to redeliver it")
            }
        }
    }

    /// Redelivers unacknowledged tasks and fails those whose results are overdue.
    fn watchdog(&mut self) {
        let now = Instant::now();
        let mut late: Vec<(JobId, usize, bool)> = Vec::new();
        for (id, a) in &self.active {
            for (&i, f) in &a.flights {
                let exec = a.exec[a.run.tasks[i].stage].as_ref().ok();
                let timeout = exec.map(|e| e.timeout).unwrap_or_default();
                // A lost host sends nothing: its task is over once its timeout passed, or once
                // the host has been lost for the grace period, whichever comes first (unless
                // the server runs the task itself).
                let lost_since = a
                    .hosts
                    .get(&a.run.tasks[i].task.host)
                    .filter(|_| !exec.is_some_and(|e| e.server_side))
                    .and_then(|h| self.lost.get(h.name.as_str()));
                let slack = if lost_since.is_some() {
                    Duration::ZERO
                } else {
                    self.parts.config.result_slack
                };
                let gave_up = lost_since.is_some_and(|since| {
                    now.duration_since((*since).max(f.sent_at)) > self.parts.config.lost_grace
                });
                if gave_up {
                    late.push((*id, i, true));
                } else if !f.received
                    && now.duration_since(f.sent_at) > self.parts.config.delivery_timeout
                {
                    late.push((*id, i, false));
                } else if now.duration_since(f.started.unwrap_or(f.sent_at)) > timeout + slack {
                    late.push((*id, i, true));
                }
            }
        }
        for (id, i, overdue) in late {
            if overdue {
                let Some(a) = self.active.get_mut(&id) else {
                    continue;
                };
                a.flights.remove(&i);
                let host = a
                    .hosts
                    .get(&a.run.tasks[i].task.host)
                    .map(|h| h.name.clone())
                    .unwrap_or_default();
                let msg = if let Some(since) = self.lost.get(host.as_str()) {
                    format!(
                        "host {host} is LOST (no heartbeat for {:.0?}); the task's outcome is \
                         unknown: retry the job once the host is back",
                        since.elapsed()
                    )
                } else {
                    format!("no result from host {host} within the task's timeout")
                };
                job::set_task(
                    a,
                    &mut self.batch,
                    &mut self.published,
                    i,
                    TaskState::Failed,
                    Some(msg),
                );
            } else {
                self.redeliver(id, i, "no acknowledgement in time");
            }
        }
    }

    /// One step: admit jobs, advance every active job, persist, then send and publish.
    async fn step(&mut self) -> Result<()> {
        loop {
            self.admit().await?;
            let ids: Vec<JobId> = self.active.keys().copied().collect();
            for id in ids {
                self.advance(id);
            }
            let ended = self.flush().await?;
            if ended == 0 || self.queued.is_empty() {
                return Ok(());
            }
            // A job ended and others wait: its cluster may take the next one now.
        }
    }

    async fn admit(&mut self) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        // Admitted jobs are loaded from the store: it must hold this step's changes first
        // (a retried job's reset tasks, say).
        self.flush().await?;
        let busy: HashSet<ClusterId> = self.active.values().map(|a| a.run.job.cluster).collect();
        let queued: Vec<&Job> = self.queued.values().collect();
        let admitted = self.parts.scheduler.admit(&queued, &busy);
        for id in admitted {
            if self.queued.remove(&id).is_none() {
                continue;
            }
            if let Err(e) = self.load(id).await {
                tracing::error!(job = %id, error = %e, "could not load job");
                continue;
            }
            self.set_job_state(id, JobState::Running);
        }
        Ok(())
    }

    /// Derives stage and job states of one job and dispatches what the scheduler picks.
    fn advance(&mut self, id: JobId) {
        let Some(a) = self.active.get_mut(&id) else {
            return;
        };
        job::derive(a, &mut self.batch, &mut self.published, &mut self.outbox);
        if a.run.job.state == JobState::Running {
            let picked = self.parts.scheduler.ready(&a.run);
            let now = Instant::now();
            for i in picked {
                if let Some((host, spec)) =
                    job::dispatch(a, &mut self.batch, &mut self.published, i)
                {
                    a.flights.insert(
                        i,
                        Flight {
                            sent_at: now,
                            received: false,
                            started: None,
                            redeliveries: 0,
                            undelivered: false,
                        },
                    );
                    self.outbox.push((host, ToAgent::Run(Box::new(spec))));
                }
            }
            job::derive(a, &mut self.batch, &mut self.published, &mut self.outbox);
        }
        if let Some(to) = job::outcome(&a.run) {
            self.set_job_state(id, to);
            self.ended.push(id);
        }
    }

    /// Persists the step's batch, then unloads ended jobs, sends, replies and publishes.
    /// Returns how many jobs ended.
    async fn flush(&mut self) -> Result<usize> {
        let batch = std::mem::take(&mut self.batch);
        // The events behind this batch: acknowledged once it is stored, dropped if it is not
        // (their agents send them again on their next session).
        let acks = std::mem::take(&mut self.acks);
        // The tasks with new lines, told once they are stored. A line of a job not loaded here
        // (a stale event) is followed by no one.
        let logged: BTreeMap<TaskId, JobId> = batch
            .logs
            .iter()
            .filter_map(|l| Some((l.task, *self.task_job.get(&l.task)?)))
            .collect();
        if !batch.is_empty() {
            let start = Instant::now();
            let applied = match self.parts.jobs.apply(&batch).await {
                Ok(applied) => {
                    self.parts.metrics.observe_store_apply(start.elapsed());
                    applied
                }
                Err(e) if !batch.logs.is_empty() => {
                    apply_logs_apart(self.parts.jobs.as_ref(), batch, e).await?
                }
                Err(e) => return Err(e),
            };
            let missed = applied.tasks.iter().filter(|ok| !**ok).count()
                + applied.stages.iter().filter(|ok| !**ok).count()
                + applied.jobs.iter().filter(|ok| !**ok).count();
            if missed > 0 {
                tracing::warn!(
                    missed,
                    "some state changes found another state in the store (another engine?)"
                );
            }
        }
        // A host told that its events are stored is told in the same message which of its
        // runs' results are, for it to forget.
        let mut clean = std::mem::take(&mut self.clean);
        for (host, seq) in acks {
            match clean.remove(&host) {
                Some(runs) => {
                    if let Err(e) = self
                        .parts
                        .transport
                        .stored_and_clean(&host, seq, runs)
                        .await
                    {
                        tracing::debug!(%host, error = %e, "clean not sent; the agent will report again");
                    }
                }
                None => self.parts.transport.stored(&host, seq),
            }
        }
        let ended = std::mem::take(&mut self.ended);
        for id in &ended {
            self.unload(*id);
        }
        for (host, msg) in std::mem::take(&mut self.outbox) {
            let run = match &msg {
                ToAgent::Run(spec) => Some(spec.run),
                _ => None,
            };
            if let Err(e) = self.parts.transport.send(&host, msg).await {
                tracing::debug!(%host, error = %e, "send failed; the watchdog will redeliver");
                if let Some((a, i)) = run.and_then(|r| find(&self.task_job, &mut self.active, r))
                    && let Some(f) = a.flights.get_mut(&i)
                {
                    f.undelivered = true;
                }
            }
        }
        for (host, runs) in clean {
            if let Err(e) = self.parts.transport.send(&host, ToAgent::Clean(runs)).await {
                tracing::debug!(%host, error = %e, "clean not sent; the agent will report again");
            }
        }
        for (reply, outcome) in std::mem::take(&mut self.replies) {
            let job = match outcome {
                Ok(id) => self
                    .parts
                    .jobs
                    .get_job(id)
                    .await
                    .and_then(|j| j.ok_or_else(|| Error::not_found("job", id))),
                Err(e) => Err(e),
            };
            let _ = reply.send(job);
        }
        for u in std::mem::take(&mut self.published) {
            let _ = self.parts.updates.send(u);
        }
        for (task, job) in logged {
            let _ = self.parts.logged.send(Logged { job, task });
        }
        Ok(ended.len())
    }
}

/// Applies a batch that failed as a whole (with `failed`) again, its log lines apart: the
/// batch without them, then each task's lines on their own, dropping with a warning the lines
/// of a task the store refuses ([`Error::Invalid`]: it holds no such task, as an agent's stale
/// or forged event may name). Such a line would otherwise fail every step it lands in, with the
/// events of every other host in it, each time its agent sends it again. Any other error is
/// the store's, and fails the step as before.
async fn apply_logs_apart(
    store: &dyn JobStore,
    mut batch: Batch,
    failed: Error,
) -> Result<Applied> {
    tracing::debug!(error = %failed, "a batch with log lines failed; applying them apart");
    let logs = std::mem::take(&mut batch.logs);
    let applied = if batch.is_empty() {
        Applied::default()
    } else {
        store.apply(&batch).await?
    };
    let mut by_task: BTreeMap<TaskId, Vec<LogLine>> = BTreeMap::new();
    for line in logs {
        by_task.entry(line.task).or_default().push(line);
    }
    for (task, logs) in by_task {
        let lines = logs.len();
        let one = Batch {
            logs,
            ..Batch::default()
        };
        match store.apply(&one).await {
            Ok(_) => {}
            Err(Error::Invalid(reason)) => {
                tracing::warn!(%task, lines, %reason, "dropping log lines the store cannot take");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

/// The active job and index of a run's task, if its job is loaded and the run is the task's
/// current attempt. A function of the two maps, not of the engine, so callers can still write
/// to the engine's other fields.
fn find<'a>(
    task_job: &HashMap<TaskId, JobId>,
    active: &'a mut BTreeMap<JobId, Active>,
    run: RunId,
) -> Option<(&'a mut Active, usize)> {
    let a = active.get_mut(task_job.get(&run.task)?)?;
    let i = *a.pos.get(&run.task)?;
    (a.run.tasks[i].task.attempt == run.attempt).then_some((a, i))
}
