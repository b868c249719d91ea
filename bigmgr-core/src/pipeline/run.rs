//! Running a checked pipeline over the metastore, exactly once (docs/pipelines.md, "How it
//! runs"): sources cut their input into batches recorded at the channels after them; every
//! replica of a non-blocking unit leases one batch at a time from its input channels, has it
//! staged in a fresh directory on its host and the unit's program run on it, and completes it
//! together with its outputs, which it broadcasts to every channel after the unit; a blocking
//! unit waits until everything before it is done, then leases its whole input and runs once;
//! sinks receive what reaches them, each batch under its id; a batch every reader processed is
//! CLEAN and its data removed from its host. Re-running a batch (its lease
//! lapsed or was released) writes the same names again, and only the lease's holder can
//! complete it, so nothing is lost or doubled downstream. A writer waits while a channel
//! after it holds its limit of batches waiting (backpressure), except a channel feeding a
//! blocking unit, which holds all.
//!
//! The work on the hosts is the agents' data side ([`crate::agent::data`]), reached through
//! the [`Hosts`] seam: [`AgentHosts`] asks the agents over the transport, [`LocalHosts`] does
//! it in this process with a directory per host (tests, one machine). Data between units on
//! one host never leaves it; a batch for another host is fetched from its host and carried.
//! A channel whose readers all run on one host (its home) gets each batch written there when
//! it is produced, so a batch already processed does not wait for the host that made it.
//!
//! A replica whose host goes away (its request fails in the transport) releases its lease at
//! once, so another replica takes the batch, and waits for its host to come back; a program
//! that fails stops the run, naming its unit and batch. A [`Control`] pauses the run, drains
//! it (sources take nothing more) and scales units while it runs.

use super::{Graph, PipelineDef, Program, SinkDef, SourceDef, UnitKind};
use crate::agent::data::batch_dir;
use crate::model::{NewBatch, PipelineBatch, PipelineId, now_ms};
use crate::store::PipelineStore;
use crate::transport::Transport;
use crate::transport::data::{
    BatchData, Carried, DataAnswer, DataFile, DataOp, DataRequest, ProgramRef,
};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the data side of each host is.
#[async_trait]
pub trait Hosts: Send + Sync + 'static {
    /// Does `request` on `host`: [`Error::Transport`] when the host cannot be reached (the
    /// run waits for it), [`Error::Invalid`] when the work failed.
    async fn data(&self, host: &str, request: DataRequest) -> Result<DataAnswer>;
    /// Whether `host` can be asked now.
    fn available(&self, host: &str) -> bool;
}

/// Hosts that are directories of this machine, their data side done in this process.
#[derive(Debug, Clone)]
pub struct LocalHosts {
    roots: BTreeMap<String, PathBuf>,
}

impl LocalHosts {
    /// Hosts by name, each with its directory (an agent's root).
    pub fn new(roots: BTreeMap<String, PathBuf>) -> Self {
        LocalHosts { roots }
    }
}

#[async_trait]
impl Hosts for LocalHosts {
    async fn data(&self, host: &str, request: DataRequest) -> Result<DataAnswer> {
        let root = self
            .roots
            .get(host)
            .ok_or_else(|| Error::Transport(format!("no directory for host {host}")))?;
        crate::agent::data::serve(root, request)
            .await
            .map_err(Error::Invalid)
    }

    fn available(&self, host: &str) -> bool {
        self.roots.contains_key(host)
    }
}

/// Hosts reached through their agents ([`Transport::data`]).
pub struct AgentHosts(pub Arc<dyn Transport>);

/// How long an agent has to answer a request beyond its program's timeout: an agent that
/// does not answer at all is treated as away, so the batch goes to another replica.
const ANSWER_GRACE: Duration = Duration::from_secs(60);

#[async_trait]
impl Hosts for AgentHosts {
    async fn data(&self, host: &str, request: DataRequest) -> Result<DataAnswer> {
        let within = match &request.op {
            DataOp::Process { timeout, .. } => *timeout + ANSWER_GRACE,
            _ => ANSWER_GRACE,
        };
        tokio::time::timeout(within, self.0.data(host, request))
            .await
            .map_err(|_| {
                Error::Transport(format!(
                    "the agent of host {host} did not answer within {within:?}"
                ))
            })?
    }

    fn available(&self, host: &str) -> bool {
        self.0.connected(host)
    }
}

/// Where a pipeline sink's batches go: another pipeline's HTTP source (the Manager's push).
#[async_trait]
pub trait Forward: Send + Sync + 'static {
    /// Pushes `data` as batch `batch` to HTTP source `source` (none: its only one) of
    /// `pipeline`; true if new, false if it was pushed before. [`Error::Busy`] or
    /// [`Error::Conflict`] (that pipeline is not running) mean: try again later.
    async fn push(
        &self,
        pipeline: &str,
        source: Option<&str>,
        batch: &str,
        data: Vec<u8>,
    ) -> Result<bool>;
}

/// What steers a run from outside while it runs: pause, drain, scale; and what it says.
#[derive(Debug, Default)]
pub struct Control {
    paused: AtomicBool,
    draining: AtomicBool,
    /// Replicas per unit, over the definition's.
    replicas: Mutex<BTreeMap<String, u32>>,
    /// The latest things the run said, with when (ms since epoch).
    log: Mutex<VecDeque<(i64, String)>>,
    /// Backpressure: batches on their way into each channel (a writer found it ready and
    /// has not recorded its output yet), and the gate that makes checking and reserving one.
    reserved: Arc<Mutex<BTreeMap<String, u64>>>,
    gate: tokio::sync::Mutex<()>,
}

/// Places reserved in channels by a writer found ready, given back when dropped (once its
/// output is recorded, or it recorded none).
struct Reservation {
    reserved: Arc<Mutex<BTreeMap<String, u64>>>,
    channels: Vec<String>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().expect("not poisoned");
        for ch in &self.channels {
            if let Some(n) = r.get_mut(ch) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// How many lines a run's log keeps.
const LOG_LINES: usize = 1000;

impl Control {
    /// A control with the units scaled to `replicas` (over the definition's).
    pub fn new(replicas: BTreeMap<String, u32>) -> Arc<Control> {
        Arc::new(Control {
            replicas: Mutex::new(replicas),
            ..Control::default()
        })
    }

    /// Pauses (no node takes a new batch; those being processed finish) or resumes.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        self.say(if paused { "paused" } else { "resumed" }.into());
    }

    /// Whether it is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Drains: sources take nothing more; what they took is processed, then the run ends.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.say("draining: the sources take nothing more".into());
    }

    /// Whether it drains.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Runs `replicas` replicas of `unit` from now on: more start, those beyond stop after
    /// their batch.
    pub fn scale(&self, unit: &str, replicas: u32) {
        self.replicas
            .lock()
            .expect("not poisoned")
            .insert(unit.to_string(), replicas);
        self.say(format!("unit {unit} scaled to {replicas} replicas"));
    }

    fn target(&self, unit: &str, defined: u32) -> u32 {
        self.replicas
            .lock()
            .expect("not poisoned")
            .get(unit)
            .copied()
            .unwrap_or(defined)
    }

    /// Adds a line to the run's log.
    pub fn say(&self, line: String) {
        let mut log = self.log.lock().expect("not poisoned");
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back((now_ms(), line));
    }

    /// The run's latest log lines, oldest first, with when.
    pub fn log(&self) -> Vec<(i64, String)> {
        self.log
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect()
    }

    async fn unpaused(&self) {
        while self.paused() {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// One run of a pipeline; see the module docs.
pub struct Run {
    /// The pipeline in the store.
    pub pipeline: PipelineId,
    /// `<cluster>/<pipeline>`: its directory on the hosts.
    pub dir: String,
    /// Its definition.
    pub def: PipelineDef,
    /// Its checked graph.
    pub graph: Graph,
    /// The metastore.
    pub store: Arc<dyn PipelineStore>,
    /// Where the data side of each host is.
    pub hosts: Arc<dyn Hosts>,
    /// The cluster's hosts, for units placed on any.
    pub cluster_hosts: Vec<String>,
    /// The programs of units taking one from a stack, resolved by the caller.
    pub programs: BTreeMap<String, ProgramRef>,
    /// What steers it.
    pub control: Arc<Control>,
    /// Where its pipeline sinks push (none: a pipeline sink fails the run).
    pub forward: Option<Arc<dyn Forward>>,
}

/// How often an idle replica looks for a batch again.
const IDLE: Duration = Duration::from_millis(20);
/// How often a node whose host is away looks again.
const AWAY: Duration = Duration::from_millis(250);
/// How long a file stays unchanged before a watching source takes it.
const WATCH_SETTLE: Duration = Duration::from_secs(2);
/// How often a watching source looks at its directory again.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long a sink holds a batch it receives.
const SINK_LEASE: Duration = Duration::from_secs(600);

/// How a step on a host ended when it did not fail the run.
enum Step {
    /// Done.
    Done,
    /// A host it needed was away: its leases were released, to try again later.
    Away,
}

impl Run {
    /// A run of pipeline `pipeline` (`dir`: `<cluster>/<pipeline>`) with no stack programs and
    /// a fresh control.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pipeline: PipelineId,
        dir: String,
        def: PipelineDef,
        graph: Graph,
        store: Arc<dyn PipelineStore>,
        hosts: Arc<dyn Hosts>,
        cluster_hosts: Vec<String>,
    ) -> Run {
        Run {
            pipeline,
            dir,
            def,
            graph,
            store,
            hosts,
            cluster_hosts,
            programs: BTreeMap::new(),
            control: Arc::new(Control::default()),
            forward: None,
        }
    }

    fn readers(&self, node: &str) -> Vec<String> {
        self.graph
            .edges
            .iter()
            .filter(|(a, _)| a == node)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn writers(&self, node: &str) -> Vec<String> {
        self.graph
            .edges
            .iter()
            .filter(|(_, b)| b == node)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The hosts a unit's replicas run on, in turn.
    fn unit_hosts(&self, unit: &str) -> Vec<String> {
        let u = &self.def.units[unit];
        if u.hosts.is_empty() {
            self.cluster_hosts.clone()
        } else {
            u.hosts.clone()
        }
    }

    /// The one host every reader of channel `ch` runs on, if there is one: its home.
    fn home(&self, ch: &str) -> Option<String> {
        let mut hosts = BTreeSet::new();
        for r in self.readers(ch) {
            if self.def.units.contains_key(&r) {
                hosts.extend(self.unit_hosts(&r));
            } else if let Some(SinkDef::Dir { host, .. }) = self.def.sinks.get(&r) {
                hosts.insert(host.clone());
            } else {
                return None;
            }
        }
        let mut one = hosts.into_iter();
        match (one.next(), one.next()) {
            (Some(h), None) => Some(h),
            _ => None,
        }
    }

    /// The program of unit `name`: its path, or what the caller resolved for a stack's.
    fn program(&self, name: &str) -> Result<ProgramRef> {
        match &self.def.units[name].program {
            Program::Path(p) => Ok(ProgramRef::Path(p.clone())),
            Program::Stack { .. } => self.programs.get(name).cloned().ok_or_else(|| {
                Error::Invalid(format!("unit {name}: its stack program was not resolved"))
            }),
        }
    }

    fn request(&self, op: DataOp) -> DataRequest {
        DataRequest {
            pipeline: self.dir.clone(),
            op,
        }
    }

    /// Runs every node until all are done; the first error stops the run.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let done = Arc::new(Done::default());
        let mut tasks = tokio::task::JoinSet::new();
        for name in self.def.sources.keys() {
            let (run, done, name) = (self.clone(), done.clone(), name.clone());
            tasks.spawn(async move {
                run.source(&name).await?;
                done.mark(&name);
                Ok::<(), Error>(())
            });
        }
        // Replicas by unit: which run now (a replica stops itself when scaled below it).
        let running: Arc<Mutex<BTreeMap<String, BTreeSet<u32>>>> = Arc::default();
        for name in self.def.units.keys() {
            if self.unit_hosts(name).is_empty() {
                return Err(Error::Invalid(format!("unit {name} has no host to run on")));
            }
            running
                .lock()
                .expect("not poisoned")
                .insert(name.clone(), BTreeSet::new());
        }
        for name in self.def.sinks.keys() {
            let (run, done, name) = (self.clone(), done.clone(), name.clone());
            tasks.spawn(async move {
                run.sink(&name, &done).await?;
                done.mark(&name);
                Ok(())
            });
        }
        loop {
            // Start the replicas each unit should have and does not (at first, and on scaling).
            for (name, u) in &self.def.units {
                if done.has(name) {
                    continue;
                }
                let want = if u.kind == UnitKind::Blocking {
                    1
                } else {
                    self.control.target(name, u.replicas)
                };
                let hosts = self.unit_hosts(name);
                for k in 0..want {
                    if !running
                        .lock()
                        .expect("not poisoned")
                        .get_mut(name)
                        .is_some_and(|r| r.insert(k))
                    {
                        continue;
                    }
                    let host = hosts[k as usize % hosts.len()].clone();
                    let (run, done, name, running) =
                        (self.clone(), done.clone(), name.clone(), running.clone());
                    let blocking = u.kind == UnitKind::Blocking;
                    tasks.spawn(async move {
                        let holder = format!("{name}#{k}@{host}");
                        let drained = if blocking {
                            run.blocking(&name, &host, &holder, &done).await
                        } else {
                            run.replica(&name, k, &host, &holder, &done).await
                        };
                        if let Some(r) = running.lock().expect("not poisoned").get_mut(&name) {
                            r.remove(&k);
                        }
                        if drained? {
                            done.mark(&name);
                        }
                        Ok(())
                    });
                }
            }
            match tokio::time::timeout(IDLE * 5, tasks.join_next()).await {
                Err(_) => continue,
                Ok(None) => return Ok(()),
                Ok(Some(joined)) => {
                    let result = joined
                        .map_err(|e| Error::Invalid(format!("a pipeline node failed: {e}")))?;
                    if let Err(e) = result {
                        tasks.abort_all();
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Cuts a source's input into batches on its host and records each at every channel
    /// after it.
    async fn source(&self, name: &str) -> Result<()> {
        let (host, path, records, watch) = match &self.def.sources[name] {
            SourceDef::Dir {
                host,
                path,
                records,
                watch,
            } => (host, path, records, *watch),
            SourceDef::Http { .. } => {
                // Its batches are pushed ([`Run::push`]); it ends when the run drains.
                while !self.control.draining() {
                    tokio::time::sleep(IDLE * 5).await;
                }
                return Ok(());
            }
        };
        // A source that watches takes a file once it has been left alone for WATCH_SETTLE,
        // and each file once per run; it ends when the run drains.
        let mut taken: BTreeSet<String> = BTreeSet::new();
        loop {
            let settle = if watch { WATCH_SETTLE } else { Duration::ZERO };
            let cut = self.cut(name, host, path, *records, settle, &taken).await?;
            let Some(cut) = cut else { return Ok(()) };
            if !self.record_cut(name, host, cut, &mut taken).await? || !watch {
                return Ok(());
            }
            tokio::time::sleep(WATCH_EVERY).await;
            if self.control.draining() {
                return Ok(());
            }
        }
    }

    /// One cut of a directory source's files (but those `taken`): `None` if the run drains
    /// while its host is away.
    async fn cut(
        &self,
        name: &str,
        host: &str,
        path: &str,
        records: u32,
        settle: Duration,
        taken: &BTreeSet<String>,
    ) -> Result<Option<DataAnswer>> {
        let op = DataOp::Cut {
            source: name.to_string(),
            path: path.to_string(),
            records,
            settle,
            skip: taken.iter().cloned().collect(),
        };
        loop {
            match self.hosts.data(host, self.request(op.clone())).await {
                Ok(answer) => return Ok(Some(answer)),
                Err(Error::Transport(why)) => {
                    if self.control.draining() {
                        return Ok(None);
                    }
                    tracing::info!(source = name, host, %why, "waiting for the source's host");
                    tokio::time::sleep(AWAY).await;
                }
                Err(e) => return Err(Error::Invalid(format!("source {name}: {e}"))),
            }
        }
    }

    /// Records the batches of a cut at every channel after source `name`, adding their files
    /// to `taken`; false if the run drains before all are recorded.
    async fn record_cut(
        &self,
        name: &str,
        host: &str,
        cut: DataAnswer,
        taken: &mut BTreeSet<String>,
    ) -> Result<bool> {
        let readers = self.readers(name);
        let mut files = BTreeSet::new();
        for (batch, dir) in cut.batches {
            if let Some((file, _)) = batch.rsplit_once(':') {
                files.insert(file.to_string());
            }
            let location = format!("{host}:{dir}");
            let out: Vec<NewBatch> = readers
                .iter()
                .map(|r| NewBatch {
                    node: r.clone(),
                    batch: batch.clone(),
                    location: location.clone(),
                })
                .collect();
            self.control.unpaused().await;
            let _place = self.ready(name).await?;
            if self.control.draining() {
                return Ok(false);
            }
            if self.store.receive_batches(self.pipeline, &out).await? == 0 {
                // Recorded by an earlier run (this one was started again): cut again, its
                // data goes again if every reader is done with it.
                if self.store.clean_location(self.pipeline, &location).await? {
                    self.remove(&location).await;
                }
            }
        }
        taken.extend(files);
        Ok(true)
    }

    /// Records a batch pushed to HTTP source `source` (docs/pipelines.md): its `data` goes
    /// to the source's host as the batch's one file, then the batch is recorded at every
    /// channel after the source. True if it is new; false if a batch of that id was pushed
    /// before (nothing is written twice). [`Error::Busy`] when a channel after the source
    /// stays full for `wait` (backpressure) or the source's host is away: retry later.
    pub async fn push(
        &self,
        source: &str,
        batch: &str,
        data: Vec<u8>,
        wait: Duration,
    ) -> Result<bool> {
        let Some(SourceDef::Http { host }) = self.def.sources.get(source) else {
            return Err(Error::invalid_field(
                "source",
                format!("pipeline {} has no HTTP source '{source}'", self.def.name),
            ));
        };
        if self.control.draining() {
            return Err(Error::Conflict(format!(
                "pipeline {} is draining: its sources take nothing more",
                self.def.name
            )));
        }
        let place = tokio::time::timeout(wait, self.ready(source))
            .await
            .map_err(|_| {
                Error::Busy(format!(
                    "a channel after source {source} holds its limit of batches waiting; \
                     retry later"
                ))
            })??;
        let name = batch_dir(batch);
        let op = DataOp::Deliver {
            input: BatchData {
                name: name.clone(),
                data: Carried::Files(vec![crate::transport::data::DataFile {
                    name: "part".into(),
                    content: data,
                }]),
            },
            dest: source.to_string(),
        };
        let location = format!("{host}:{source}/{name}");
        let readers = self.readers(source);
        for r in &readers {
            if self.store.batch(self.pipeline, r, batch).await?.is_some() {
                return Ok(false);
            }
        }
        match self.hosts.data(host, self.request(op)).await {
            Ok(_) => {}
            Err(Error::Transport(why)) => {
                return Err(Error::Busy(format!(
                    "the host of source {source} ({host}) is away ({why}); retry later"
                )));
            }
            Err(e) => return Err(e),
        }
        let out: Vec<NewBatch> = readers
            .into_iter()
            .map(|r| NewBatch {
                node: r,
                batch: batch.to_string(),
                location: location.clone(),
            })
            .collect();
        let new = self.store.receive_batches(self.pipeline, &out).await? > 0;
        drop(place);
        Ok(new)
    }

    /// Waits until every channel `writer` writes to is ready — its batches waiting, plus those
    /// on their way into it, under its limit (backpressure) — and reserves a place in each
    /// until the returned reservation is dropped, so writers checking at once never overfill a
    /// channel together. A channel feeding a blocking unit is always ready: that unit takes its
    /// whole input at once, so the channel holds all of it.
    async fn ready(&self, writer: &str) -> Result<Reservation> {
        let mut limited = Vec::new();
        for ch in self.readers(writer) {
            let blocking = self.readers(&ch).iter().any(|r| {
                self.def
                    .units
                    .get(r)
                    .is_some_and(|u| u.kind == UnitKind::Blocking)
            });
            if !blocking {
                let limit = self
                    .def
                    .channels
                    .get(&ch)
                    .and_then(|c| c.limit)
                    .unwrap_or(super::DEFAULT_CHANNEL_LIMIT);
                limited.push((ch, u64::from(limit)));
            }
        }
        let reserved = self.control.reserved.clone();
        loop {
            {
                let _gate = self.control.gate.lock().await;
                // On their way first, then waiting: a writer recording its output between the
                // two reads is counted twice (the check errs on the safe side), never not at all.
                let on_way: Vec<u64> = {
                    let r = reserved.lock().expect("not poisoned");
                    limited
                        .iter()
                        .map(|(ch, _)| r.get(ch).copied().unwrap_or(0))
                        .collect()
                };
                let mut ready = true;
                for ((ch, limit), on_way) in limited.iter().zip(on_way) {
                    if self.store.backlog(self.pipeline, ch).await? + on_way >= *limit {
                        ready = false;
                        break;
                    }
                }
                if ready {
                    let mut r = reserved.lock().expect("not poisoned");
                    for (ch, _) in &limited {
                        *r.entry(ch.clone()).or_default() += 1;
                    }
                    return Ok(Reservation {
                        reserved: reserved.clone(),
                        channels: limited.into_iter().map(|(ch, _)| ch).collect(),
                    });
                }
            }
            tokio::time::sleep(IDLE).await;
        }
    }

    /// Whether every writer of channel `node` is done and nothing waits in it.
    async fn drained(&self, node: &str, done: &Done) -> Result<bool> {
        Ok(self.writers(node).iter().all(|w| done.has(w))
            && self.store.backlog(self.pipeline, node).await? == 0)
    }

    /// Lease time for one batch of unit `name`: its timeout and a margin.
    fn lease(&self, name: &str) -> Result<Duration> {
        Ok(self.timeout(name)? + Duration::from_secs(30))
    }

    /// What one run of unit `name`'s program may use.
    fn limits(&self, name: &str) -> Result<crate::transport::data::Limits> {
        let r = &self.def.units[name].resources;
        Ok(crate::transport::data::Limits {
            memory_kib: r.memory_kib().map_err(Error::Invalid)?,
            cpu_seconds: r.cpu_seconds().map_err(Error::Invalid)?,
        })
    }

    fn timeout(&self, name: &str) -> Result<Duration> {
        match &self.def.units[name].timeout {
            Some(t) => crate::duration::parse_duration(t).map_err(Error::Invalid),
            None => Ok(Duration::from_secs(600)),
        }
    }

    /// One replica (number `k`) of a non-blocking unit: true once its input is drained, false
    /// if it stopped because the unit was scaled below it.
    async fn replica(
        &self,
        name: &str,
        k: u32,
        host: &str,
        holder: &str,
        done: &Done,
    ) -> Result<bool> {
        let inputs = self.writers(name);
        let lease = self.lease(name)?;
        let defined = self.def.units[name].replicas;
        loop {
            if k >= self.control.target(name, defined) {
                return Ok(false);
            }
            self.control.unpaused().await;
            if !self.hosts.available(host) {
                if self.all_drained(&inputs, done).await? {
                    return Ok(true);
                }
                tokio::time::sleep(AWAY).await;
                continue;
            }
            // One batch at a time, each with its place reserved downstream.
            let place = self.ready(name).await?;
            let mut leased = self.lease_each(&inputs, holder, lease, 1).await?;
            let Some((ch, b)) = leased.pop() else {
                drop(place);
                if self.all_drained(&inputs, done).await? {
                    return Ok(true);
                }
                tokio::time::sleep(IDLE).await;
                continue;
            };
            let step = self.process(name, host, holder, &ch, &[b]).await?;
            drop(place);
            if let Step::Away = step {
                tokio::time::sleep(AWAY).await;
            }
        }
    }

    /// A blocking unit: once all before it is done, its whole input, once. True once done.
    async fn blocking(&self, name: &str, host: &str, holder: &str, done: &Done) -> Result<bool> {
        let inputs = self.writers(name);
        let lease = self.lease(name)?;
        while !inputs
            .iter()
            .all(|ch| self.writers(ch).iter().all(|w| done.has(w)))
        {
            tokio::time::sleep(IDLE).await;
        }
        'inputs: for ch in &inputs {
            loop {
                self.control.unpaused().await;
                if !self.hosts.available(host) {
                    tokio::time::sleep(AWAY).await;
                    continue;
                }
                let mut batches = Vec::new();
                loop {
                    let leased = self
                        .lease_each(std::slice::from_ref(ch), holder, lease, 1)
                        .await?;
                    if leased.is_empty() {
                        break;
                    }
                    batches.extend(leased.into_iter().map(|(_, b)| b));
                }
                if batches.is_empty() {
                    continue 'inputs;
                }
                match self.process(name, host, holder, ch, &batches).await? {
                    Step::Done => continue 'inputs,
                    Step::Away => tokio::time::sleep(AWAY).await,
                }
            }
        }
        Ok(true)
    }

    /// The batch at `location` as `host` gets it: where it is, on that host; carried from its
    /// own host otherwise. `None` if its host is away.
    async fn carry(&self, name: String, location: &str, host: &str) -> Result<Option<BatchData>> {
        let (from, dir) = split_location(location)?;
        if from == host {
            return Ok(Some(BatchData {
                name,
                data: Carried::Local(dir.to_string()),
            }));
        }
        Ok(self.fetch(location).await?.map(|files| BatchData {
            name,
            data: Carried::Files(files),
        }))
    }

    /// The files of the batch at `location`, from its host; `None` if that host is away.
    async fn fetch(&self, location: &str) -> Result<Option<Vec<DataFile>>> {
        let (from, dir) = split_location(location)?;
        let op = DataOp::Fetch { dir: dir.into() };
        match self.hosts.data(from, self.request(op)).await {
            Ok(a) => Ok(Some(a.files)),
            Err(Error::Transport(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives up the leases of `holder` (a host it needed is away).
    async fn away(&self, holder: &str, why: &str) -> Result<Step> {
        let released = self
            .store
            .release_leases(self.pipeline, Some(holder))
            .await?;
        self.control.say(format!(
            "{holder}: {why}; {released} batch(es) released to other replicas"
        ));
        Ok(Step::Away)
    }

    /// Runs unit `name`'s program on `batches` (leased from channel `ch`) on `host` and
    /// completes them with the output, broadcast to every channel after the unit.
    async fn process(
        &self,
        name: &str,
        host: &str,
        holder: &str,
        ch: &str,
        batches: &[PipelineBatch],
    ) -> Result<Step> {
        let id = if batches.len() == 1 {
            format!("{}/{name}", batches[0].batch)
        } else {
            format!("{name}:all")
        };
        let mut inputs = Vec::new();
        for b in batches {
            match self.carry(batch_dir(&b.batch), &b.location, host).await? {
                Some(input) => inputs.push(input),
                None => {
                    return self
                        .away(holder, &format!("the host of batch {} is away", b.batch))
                        .await;
                }
            }
        }
        let op = DataOp::Process {
            unit: name.to_string(),
            work: batch_dir(&id),
            inputs,
            program: self.program(name)?,
            timeout: self.timeout(name)?,
            limits: self.limits(name)?,
        };
        let started = std::time::Instant::now();
        let output = match self.hosts.data(host, self.request(op)).await {
            Ok(a) => a.output,
            Err(Error::Transport(why)) => return self.away(holder, &why).await,
            Err(e) => return Err(Error::Invalid(format!("unit {name}, batch {id}: {e}"))),
        };
        let mut outputs = Vec::new();
        let mut carried: Option<BatchData> = None;
        for r in self.readers(name) {
            let location = match self.home(&r).filter(|h| h != host) {
                None => format!("{host}:{output}"),
                Some(home) => {
                    // Written to the channel's home now, so it does not wait for this host.
                    if carried.is_none() {
                        let Some(files) = self.fetch(&format!("{host}:{output}")).await? else {
                            return self.away(holder, "the unit's host went away").await;
                        };
                        carried = Some(BatchData {
                            name: batch_dir(&id),
                            data: Carried::Files(files),
                        });
                    }
                    let input = carried.clone().expect("carried above");
                    let op = DataOp::Deliver {
                        input,
                        dest: r.clone(),
                    };
                    match self.hosts.data(&home, self.request(op)).await {
                        Ok(_) => {}
                        Err(Error::Transport(why)) => return self.away(holder, &why).await,
                        Err(e) => return Err(e),
                    }
                    format!("{home}:{r}/{}", batch_dir(&id))
                }
            };
            outputs.push(NewBatch {
                node: r,
                batch: id.clone(),
                location,
            });
        }
        let ids: Vec<String> = batches.iter().map(|b| b.batch.clone()).collect();
        let completed = self
            .store
            .complete_batches(self.pipeline, ch, &ids, holder, &outputs)
            .await?;
        if completed {
            self.control.say(format!(
                "{holder}: batch {id} processed in {} ms",
                started.elapsed().as_millis()
            ));
            self.clean(batches).await?;
            let here = format!("{host}:{output}");
            if !outputs.iter().any(|o| o.location == here) {
                // Every reader has its copy at its channel's home: nothing reads it here.
                self.remove(&here).await;
            }
        } else {
            // The lease lapsed and another replica took the batch: its result counts, not
            // this one (the same names, so nothing downstream doubles).
            tracing::warn!(unit = name, batch = id, "lease lost before completing");
        }
        Ok(Step::Done)
    }

    /// A sink: each batch reaching it goes into its directory, named by the batch.
    async fn sink(&self, name: &str, done: &Done) -> Result<()> {
        let (host, path) = match &self.def.sinks[name] {
            SinkDef::Dir { host, path, .. } => (host, path),
            SinkDef::Pipeline {
                pipeline, source, ..
            } => return self.forward(name, pipeline, source.as_deref(), done).await,
        };
        let inputs = self.writers(name);
        let holder = format!("{name}@{host}");
        loop {
            self.control.unpaused().await;
            if !self.hosts.available(host) {
                tokio::time::sleep(AWAY).await;
                continue;
            }
            let leased = self
                .lease_each(&inputs, &holder, SINK_LEASE, usize::MAX)
                .await?;
            if leased.is_empty() {
                if self.all_drained(&inputs, done).await? {
                    return Ok(());
                }
                tokio::time::sleep(IDLE).await;
            }
            for (ch, b) in leased {
                let Some(input) = self.carry(batch_dir(&b.batch), &b.location, host).await? else {
                    self.away(&holder, &format!("the host of batch {} is away", b.batch))
                        .await?;
                    tokio::time::sleep(AWAY).await;
                    break;
                };
                let op = DataOp::Deliver {
                    input,
                    dest: path.clone(),
                };
                match self.hosts.data(host, self.request(op)).await {
                    Ok(_) => {}
                    Err(Error::Transport(why)) => {
                        self.away(&holder, &why).await?;
                        tokio::time::sleep(AWAY).await;
                        break;
                    }
                    Err(e) => return Err(Error::Invalid(format!("sink {name}: {e}"))),
                }
                let completed = self
                    .store
                    .complete_batch(self.pipeline, &ch, &b.batch, &holder, &[])
                    .await?;
                if completed {
                    self.clean(std::slice::from_ref(&b)).await?;
                }
            }
        }
    }

    /// A pipeline sink: each batch reaching it is pushed to `pipeline`'s HTTP source, its
    /// files one after the other as the pushed batch's one file, under an id made from its
    /// own (so a push repeated after a crash is recorded once). While that pipeline does not
    /// run or is full, the batch waits.
    async fn forward(
        &self,
        name: &str,
        pipeline: &str,
        source: Option<&str>,
        done: &Done,
    ) -> Result<()> {
        let forward = self.forward.clone().ok_or_else(|| {
            Error::Invalid(format!("sink {name}: pipeline sinks need a Manager's run"))
        })?;
        let inputs = self.writers(name);
        let holder = format!("{name}@{pipeline}");
        loop {
            self.control.unpaused().await;
            let leased = self.lease_each(&inputs, &holder, SINK_LEASE, 1).await?;
            let Some((ch, b)) = leased.into_iter().next() else {
                if self.all_drained(&inputs, done).await? {
                    return Ok(());
                }
                tokio::time::sleep(IDLE).await;
                continue;
            };
            let files = match self.fetch(&b.location).await {
                Ok(Some(files)) => files,
                Ok(None) => {
                    self.away(&holder, &format!("the host of batch {} is away", b.batch))
                        .await?;
                    tokio::time::sleep(AWAY).await;
                    continue;
                }
                Err(e) => return Err(Error::Invalid(format!("sink {name}: {e}"))),
            };
            let data: Vec<u8> = files.into_iter().flat_map(|f| f.content).collect();
            let id = forwarded_id(&self.def.name, &b.batch);
            match forward.push(pipeline, source, &id, data).await {
                Ok(_) => {}
                Err(Error::Busy(why) | Error::Conflict(why)) => {
                    let released = self
                        .store
                        .release_leases(self.pipeline, Some(&holder))
                        .await?;
                    self.control.say(format!(
                        "{holder}: {why}; {released} batch(es) wait to be pushed again"
                    ));
                    tokio::time::sleep(AWAY * 4).await;
                    continue;
                }
                Err(e) => return Err(Error::Invalid(format!("sink {name}: {e}"))),
            }
            let completed = self
                .store
                .complete_batch(self.pipeline, &ch, &b.batch, &holder, &[])
                .await?;
            if completed {
                self.clean(std::slice::from_ref(&b)).await?;
            }
        }
    }

    /// Deletes the data of `batches`, just processed, once nothing waits for it (a batch
    /// broadcast to several channels waits for each): the metastore marks it CLEAN, then its
    /// host removes it. Data on a host that is away stays there, needed by nothing.
    async fn clean(&self, batches: &[PipelineBatch]) -> Result<()> {
        for b in batches {
            if self
                .store
                .clean_location(self.pipeline, &b.location)
                .await?
            {
                self.remove(&b.location).await;
            }
        }
        Ok(())
    }

    /// Removes the data at `location` (`<host>:<dir>`); a unit's output goes with its whole
    /// work directory (its staged input too).
    async fn remove(&self, location: &str) {
        let Ok((host, dir)) = split_location(location) else {
            return;
        };
        let dir = dir.strip_suffix("/out").unwrap_or(dir);
        let op = DataOp::Remove { dir: dir.into() };
        if let Err(e) = self.hosts.data(host, self.request(op)).await {
            tracing::info!(location, error = %e, "a clean batch's data stays where it is");
        }
    }

    /// A batch of each of `inputs` that has one waiting (of the first `most` of them that
    /// do), leased to `holder` for `lease`.
    async fn lease_each(
        &self,
        inputs: &[String],
        holder: &str,
        lease: Duration,
        most: usize,
    ) -> Result<Vec<(String, PipelineBatch)>> {
        let mut leased = Vec::new();
        for ch in inputs {
            if leased.len() >= most {
                break;
            }
            let now = now_ms();
            let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
            if let Some(b) = self
                .store
                .lease_batch(self.pipeline, ch, holder, now, until)
                .await?
            {
                leased.push((ch.clone(), b));
            }
        }
        Ok(leased)
    }

    /// Whether every channel of `inputs` is drained (see [`Run::drained`]).
    async fn all_drained(&self, inputs: &[String], done: &Done) -> Result<bool> {
        for ch in inputs {
            if !self.drained(ch, done).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A batch location's host and directory (`<host>:<dir>`).
fn split_location(location: &str) -> Result<(&str, &str)> {
    location
        .split_once(':')
        .ok_or_else(|| Error::Invalid(format!("'{location}' is no batch location")))
}

/// The id under which pipeline `pipeline` pushes its batch `batch` to another pipeline: the
/// same however often it is pushed, and a valid push id (`<pipeline>-<hash>`).
fn forwarded_id(pipeline: &str, batch: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(batch.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{pipeline}-{hex}")
}

/// The nodes that are done.
#[derive(Debug, Default)]
struct Done(Mutex<BTreeSet<String>>);

impl Done {
    fn mark(&self, node: &str) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(node.to_string());
    }

    /// Whether a source, unit or sink is done (a channel is done once drained: see
    /// [`Run::drained`]).
    fn has(&self, node: &str) -> bool {
        self.0.lock().expect("not poisoned").contains(node)
    }
}
