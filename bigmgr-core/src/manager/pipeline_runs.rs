//! Pipeline runs (docs/pipelines.md, "Running"): the store says which pipelines run — RUNNING,
//! PAUSED or DRAINING — and the server that runs the engine (the leader) runs each of them
//! here, over the agents' data side. Starting, pausing, resuming, stopping and scaling change
//! the store first and then the run, so a server that restarts (or a replica that takes the
//! lead) picks every run up where the metastore has it: it releases the leases the runs held
//! before and starts them again; sources record only what is new, and every batch already
//! processed stays processed.

use super::{Inner, Manager};
use crate::model::{Pipeline, PipelineId, PipelineState};
use crate::pipeline::run::{AgentHosts, Control, Forward, Run};
use crate::pipeline::{NodeKind, Program, UnitKind};
use crate::transport::data::ProgramRef;
use crate::view::{PipelineLogLine, PipelineNode, PipelineStatus, PipelineView, PushedBatch};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often the runs are compared with the store when nothing pokes them.
const EVERY: Duration = Duration::from_secs(1);

/// How long a stopped run's node tasks are waited for before its leases are released anyway
/// (a lease still taken after that expires with its lease time).
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The runs of this server.
#[derive(Default)]
pub(super) struct Runs {
    running: Mutex<HashMap<PipelineId, Running>>,
    /// The control of each pipeline's latest run here, for its log after it ended.
    latest: Mutex<HashMap<PipelineId, Arc<Control>>>,
    /// Wakes the loop that keeps the runs as the store says.
    poke: Arc<Notify>,
    /// Numbers the batches pushed without an id.
    pushes: std::sync::atomic::AtomicU64,
}

/// One run here.
struct Running {
    control: Arc<Control>,
    run: Arc<Run>,
    task: JoinHandle<()>,
}

impl Drop for Runs {
    fn drop(&mut self) {
        if let Ok(mut runs) = self.running.lock() {
            for (_, r) in runs.drain() {
                r.task.abort();
            }
        }
    }
}

impl Runs {
    fn control(&self, id: PipelineId) -> Option<Arc<Control>> {
        self.running
            .lock()
            .expect("not poisoned")
            .get(&id)
            .map(|r| r.control.clone())
    }
}

/// Keeps the runs as the store says, until the Manager is dropped.
pub(super) async fn serve(inner: Weak<Inner>, poke: Arc<Notify>) {
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            if let Err(e) = reconcile(&inner).await {
                tracing::warn!(error = %e, "cannot read the pipelines to run");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = poke.notified() => {}
        }
    }
}

/// One round: runs that should run here and do not are started, those that should not are
/// stopped, the others paused, resumed or drained as their state says.
async fn reconcile(inner: &Arc<Inner>) -> Result<()> {
    let leading = inner.metrics.families().leader.get() == 1;
    let mut wanted: HashMap<PipelineId, (String, Pipeline)> = HashMap::new();
    if leading {
        for c in inner.store.list_clusters().await? {
            for p in inner.store.list_pipelines(c.id).await? {
                if matches!(
                    p.state,
                    PipelineState::Running | PipelineState::Paused | PipelineState::Draining
                ) {
                    wanted.insert(p.id, (c.name.clone(), p));
                }
            }
        }
    }
    let mut stopped = Vec::new();
    {
        let mut runs = inner.runs.running.lock().expect("not poisoned");
        let ending: Vec<PipelineId> = runs
            .iter()
            .filter(|(id, r)| r.task.is_finished() || !wanted.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in ending {
            let Some(r) = runs.remove(&id) else { continue };
            // Said once what the run held is back in its channels (below), so a reader of the
            // log who sees the end sees the leases released.
            let ended = (!r.task.is_finished()).then(|| {
                let why = if leading {
                    "run ended: aborted"
                } else {
                    "run ended here: another server leads"
                };
                (r.control.clone(), why)
            });
            r.task.abort();
            stopped.push((id, r, ended));
        }
        for (id, (_, p)) in &wanted {
            if let Some(r) = runs.get(id) {
                let paused = p.state == PipelineState::Paused;
                if r.control.paused() != paused {
                    r.control.pause(paused);
                }
                if p.state == PipelineState::Draining && !r.control.draining() {
                    r.control.drain();
                }
            }
        }
    }
    for (id, r, ended) in stopped {
        // What the aborted run held goes back to the channels, once none of its tasks can take
        // another: the run's own task has ended, and with it every task of its nodes (each
        // holds the run, so the run is held here alone once they are all dropped).
        let _ = r.task.await;
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while Arc::strong_count(&r.run) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let released = inner.store.release_leases(id, None).await;
        if let Some((control, why)) = ended {
            control.say(why.into());
        }
        released?;
    }
    for (id, (cluster, p)) in wanted {
        if inner.runs.control(id).is_some() {
            continue;
        }
        if let Err(e) = start(inner, &cluster, p).await {
            tracing::warn!(pipeline = id.0, error = %e, "cannot start a pipeline run");
            inner
                .store
                .set_pipeline_state(
                    id,
                    &[
                        PipelineState::Running,
                        PipelineState::Paused,
                        PipelineState::Draining,
                    ],
                    PipelineState::Failed,
                    Some(&e.to_string()),
                )
                .await?;
        }
    }
    Ok(())
}

/// Starts the run of `p` (of cluster `cluster`) here.
async fn start(inner: &Arc<Inner>, cluster: &str, p: Pipeline) -> Result<()> {
    let parsed = crate::pipeline::parse(&p.definition).map_err(Error::Pipeline)?;
    let c = inner
        .store
        .cluster_by_name(cluster)
        .await?
        .ok_or_else(|| Error::not_found("cluster", cluster))?;
    let hosts: Vec<String> = inner
        .store
        .list_hosts(c.id)
        .await?
        .into_iter()
        .map(|h| h.name)
        .collect();
    let graph = parsed
        .check(&hosts.iter().cloned().collect::<BTreeSet<_>>())
        .map_err(Error::Pipeline)?;
    let mut programs = BTreeMap::new();
    for (name, u) in &parsed.def.units {
        if let Program::Stack {
            stack,
            service,
            program,
        } = &u.program
        {
            let found = inner.stacks.stack(stack, None).await?;
            let path = found.service(service)?.dir.join("scripts").join(program);
            let content = tokio::fs::read(&path)
                .await
                .map_err(|e| Error::Invalid(format!("unit {name}: {}: {e}", path.display())))?;
            programs.insert(
                name.clone(),
                ProgramRef::Carried {
                    name: format!("{name}-{program}"),
                    content,
                },
            );
        }
    }
    // Whatever an earlier run held (this server before a restart, another leader) is free.
    inner.store.release_leases(p.id, None).await?;
    let control = Control::new(p.replicas.clone());
    if p.state == PipelineState::Paused {
        control.pause(true);
    }
    if p.state == PipelineState::Draining {
        control.drain();
    }
    control.say(format!(
        "run started ({} hosts in the cluster)",
        hosts.len()
    ));
    let run = Arc::new(Run {
        pipeline: p.id,
        dir: format!("{cluster}/{}.{}", p.name, p.id.0),
        def: parsed.def,
        graph,
        store: inner.store.clone(),
        hosts: Arc::new(AgentHosts(inner.transport.clone())),
        cluster_hosts: hosts,
        programs,
        control: control.clone(),
        forward: Some(Arc::new(ToPipeline {
            inner: Arc::downgrade(inner),
            cluster: cluster.to_string(),
        })),
    });
    let store = inner.store.clone();
    let id = p.id;
    let said = control.clone();
    let running = run.clone();
    let poke = inner.runs.poke.clone();
    let task = tokio::spawn(async move {
        let ended = run.run().await;
        let (to, message) = match ended {
            Ok(()) if said.draining() => (PipelineState::Stopped, "drained".to_string()),
            Ok(()) => (
                PipelineState::Finished,
                "every batch was processed".to_string(),
            ),
            Err(e) => (PipelineState::Failed, e.to_string()),
        };
        said.say(format!("run ended: {message}"));
        let from = [
            PipelineState::Running,
            PipelineState::Paused,
            PipelineState::Draining,
        ];
        if let Err(e) = store
            .set_pipeline_state(id, &from, to, Some(&message))
            .await
        {
            tracing::warn!(pipeline = id.0, error = %e, "cannot record how a run ended");
        }
        poke.notify_one();
    });
    inner
        .runs
        .latest
        .lock()
        .expect("not poisoned")
        .insert(p.id, control.clone());
    inner.runs.running.lock().expect("not poisoned").insert(
        p.id,
        Running {
            control,
            run: running,
            task,
        },
    );
    Ok(())
}

/// Pipeline sinks push to the cluster's other pipelines through the Manager.
struct ToPipeline {
    inner: Weak<Inner>,
    cluster: String,
}

#[async_trait::async_trait]
impl Forward for ToPipeline {
    async fn push(
        &self,
        pipeline: &str,
        source: Option<&str>,
        batch: &str,
        data: Vec<u8>,
    ) -> Result<bool> {
        let inner = self
            .inner
            .upgrade()
            .ok_or_else(|| Error::Busy("the server is stopping".into()))?;
        let mgr = Manager { inner };
        let source = match source {
            Some(s) => s.to_string(),
            None => {
                let p = mgr.pipeline(&self.cluster, pipeline).await?;
                let def = crate::pipeline::parse(&p.definition).map_err(Error::Pipeline)?;
                let http: Vec<&String> = def
                    .def
                    .sources
                    .iter()
                    .filter(|(_, s)| matches!(s, crate::pipeline::SourceDef::Http { .. }))
                    .map(|(n, _)| n)
                    .collect();
                match http.as_slice() {
                    [one] => (*one).clone(),
                    _ => {
                        return Err(Error::Invalid(format!(
                            "pipeline {pipeline} has {} HTTP sources: name one with `source`",
                            http.len()
                        )));
                    }
                }
            }
        };
        let pushed = mgr
            .push_batch(&self.cluster, pipeline, &source, Some(batch), data)
            .await?;
        Ok(pushed.new)
    }
}

/// How long a push waits for a full channel to take it before answering busy.
const PUSH_WAIT: Duration = Duration::from_secs(10);

/// The longest batch id a push may name.
const MAX_BATCH_ID: usize = 128;

impl Manager {
    /// Pushes a batch (`data`, the batch's one file) to HTTP source `source` of a running
    /// pipeline (RUNNING or PAUSED, run by this server). `batch` names it so that a push
    /// retried after a lost answer is recorded once (letters, digits, `.`, `_`, `-`, at most
    /// 128); none: one is made. [`Error::Busy`] when a channel after the source stays full
    /// (backpressure) or its host is away: retry later.
    pub async fn push_batch(
        &self,
        cluster: &str,
        name: &str,
        source: &str,
        batch: Option<&str>,
        data: Vec<u8>,
    ) -> Result<PushedBatch> {
        let p = self.pipeline(cluster, name).await?;
        if let Some(b) = batch
            && (b.is_empty()
                || b.len() > MAX_BATCH_ID
                || !b
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                || b.starts_with('.'))
        {
            return Err(Error::invalid_field(
                "batch",
                format!(
                    "a batch id is 1 to {MAX_BATCH_ID} letters, digits, '.', '_' or '-', not \
                     starting with '.'"
                ),
            ));
        }
        if !matches!(p.state, PipelineState::Running | PipelineState::Paused) {
            return Err(Error::Conflict(format!(
                "pipeline {name} is {}: start it before pushing batches",
                p.state
            )));
        }
        let Some(run) = self.run_of(p.id).await else {
            return Err(Error::Busy(format!(
                "pipeline {name} is starting, or another server runs it; retry later"
            )));
        };
        let batch = match batch {
            Some(b) => b.to_string(),
            None => format!(
                "push-{}-{}",
                crate::model::now_ms(),
                self.inner
                    .runs
                    .pushes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        };
        let new = run.push(source, &batch, data, PUSH_WAIT).await?;
        Ok(PushedBatch { batch, new })
    }

    /// This server's run of a pipeline; one just started is waited for a moment (the loop
    /// that starts runs is woken); none on a server that does not lead.
    async fn run_of(&self, id: PipelineId) -> Option<Arc<Run>> {
        let leading = self.inner.metrics.families().leader.get() == 1;
        for _ in 0..if leading { 100 } else { 1 } {
            let run = self
                .inner
                .runs
                .running
                .lock()
                .expect("not poisoned")
                .get(&id)
                .map(|r| r.run.clone());
            if run.is_some() {
                return run;
            }
            self.inner.runs.poke.notify_one();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Forgets the last run of a removed pipeline (its log).
    pub(super) fn forget_run(&self, id: PipelineId) {
        self.inner
            .runs
            .latest
            .lock()
            .expect("not poisoned")
            .remove(&id);
    }

    /// The loop keeping this server's pipeline runs as the store says (started with the
    /// Manager).
    pub(super) fn serve_pipeline_runs(inner: &Arc<Inner>) {
        tokio::spawn(serve(Arc::downgrade(inner), inner.runs.poke.clone()));
    }

    /// Moves a pipeline from one of `from` to `to` with `message`, then has the runs follow;
    /// [`Error::Conflict`] naming its state if it is in none of `from`.
    async fn move_pipeline(
        &self,
        cluster: &str,
        name: &str,
        from: &[PipelineState],
        to: PipelineState,
        message: Option<&str>,
        what: &str,
    ) -> Result<Pipeline> {
        let p = self.pipeline(cluster, name).await?;
        if !self
            .inner
            .store
            .set_pipeline_state(p.id, from, to, message)
            .await?
        {
            let now = self.pipeline(cluster, name).await?;
            return Err(Error::Conflict(format!(
                "pipeline {name} is {}: it cannot be {what}",
                now.state
            )));
        }
        self.inner.runs.poke.notify_one();
        self.pipeline(cluster, name).await
    }

    /// Starts a pipeline that is not running (CREATED, STOPPED, FAILED or FINISHED): every
    /// batch already processed stays processed, so a pipeline started again processes only
    /// what is new (and what a failed run left).
    pub async fn start_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let from = [
            PipelineState::Created,
            PipelineState::Stopped,
            PipelineState::Failed,
            PipelineState::Finished,
        ];
        self.move_pipeline(
            cluster,
            name,
            &from,
            PipelineState::Running,
            None,
            "started",
        )
        .await
    }

    /// Pauses a running pipeline: no node takes a new batch; batches being processed finish.
    pub async fn pause_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let from = [PipelineState::Running];
        self.move_pipeline(cluster, name, &from, PipelineState::Paused, None, "paused")
            .await
    }

    /// Resumes a paused pipeline.
    pub async fn resume_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let from = [PipelineState::Paused];
        self.move_pipeline(
            cluster,
            name,
            &from,
            PipelineState::Running,
            None,
            "resumed",
        )
        .await
    }

    /// Stops a running pipeline: by draining (its sources take nothing more, what they took
    /// is processed, then it is STOPPED) or by aborting (STOPPED now; the batches being
    /// processed go back to their channels and their results are not taken).
    pub async fn stop_pipeline(&self, cluster: &str, name: &str, drain: bool) -> Result<Pipeline> {
        if drain {
            let from = [PipelineState::Running, PipelineState::Paused];
            self.move_pipeline(
                cluster,
                name,
                &from,
                PipelineState::Draining,
                None,
                "drained",
            )
            .await
        } else {
            let from = [
                PipelineState::Running,
                PipelineState::Paused,
                PipelineState::Draining,
            ];
            self.move_pipeline(
                cluster,
                name,
                &from,
                PipelineState::Stopped,
                Some("aborted"),
                "stopped",
            )
            .await
        }
    }

    /// Scales a non-blocking unit of a pipeline to `replicas` (1 to
    /// [`crate::pipeline::MAX_REPLICAS`]), running or not: more replicas start, those beyond
    /// stop after their batch; nothing is lost or processed twice.
    pub async fn scale_pipeline(
        &self,
        cluster: &str,
        name: &str,
        unit: &str,
        replicas: u32,
    ) -> Result<Pipeline> {
        let p = self.pipeline(cluster, name).await?;
        let parsed = crate::pipeline::parse(&p.definition).map_err(Error::Pipeline)?;
        let Some(u) = parsed.def.units.get(unit) else {
            return Err(Error::invalid_field(
                "unit",
                format!(
                    "pipeline {name} has no unit '{unit}' (its units: {})",
                    parsed
                        .def
                        .units
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if u.kind == UnitKind::Blocking {
            return Err(Error::invalid_field(
                "unit",
                format!("unit {unit} is blocking: it runs once, as one replica"),
            ));
        }
        let max = crate::pipeline::MAX_REPLICAS;
        if replicas == 0 || replicas > max {
            return Err(Error::invalid_field(
                "replicas",
                format!("give 1 to {max} replicas"),
            ));
        }
        let mut scaled = p.replicas.clone();
        scaled.insert(unit.to_string(), replicas);
        self.inner
            .store
            .set_pipeline_replicas(p.id, &scaled)
            .await?;
        if let Some(control) = self.inner.runs.control(p.id) {
            control.scale(unit, replicas);
        }
        self.pipeline(cluster, name).await
    }

    /// A pipeline's graph with, per node, its batches waiting, leased and processed (in all
    /// and in the last minute), from the metastore.
    pub async fn pipeline_status(&self, cluster: &str, name: &str) -> Result<PipelineStatus> {
        let p = self.pipeline(cluster, name).await?;
        let parsed = crate::pipeline::parse(&p.definition).map_err(Error::Pipeline)?;
        // The graph as defined, whatever became of its hosts since (a removed host is the
        // run's problem, not the status's).
        let named = parsed.def.sources.values().map(|s| s.host().to_string());
        let named = named
            .chain(
                parsed
                    .def
                    .units
                    .values()
                    .flat_map(|u| u.hosts.iter().cloned()),
            )
            .chain(parsed.def.sinks.values().filter_map(|s| match s {
                crate::pipeline::SinkDef::Dir { host, .. } => Some(host.clone()),
                crate::pipeline::SinkDef::Pipeline { .. } => None,
            }));
        let hosts: BTreeSet<String> = named.collect();
        let graph = parsed.check(&hosts).map_err(Error::Pipeline)?;
        let batches = self.inner.store.batches(p.id, None).await?;
        let minute_ago = crate::model::now_ms() - 60_000;
        // Per node holding batches: waiting, leased, processed, processed in the last minute.
        let mut at: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
        for b in &batches {
            let n = at.entry(b.node.as_str()).or_default();
            match b.state {
                crate::model::BatchState::Received if b.lease_holder.is_some() => n[1] += 1,
                crate::model::BatchState::Received => n[0] += 1,
                _ => {
                    n[2] += 1;
                    if b.updated_at >= minute_ago {
                        n[3] += 1;
                    }
                }
            }
        }
        let inputs = |node: &str| -> Vec<&str> {
            graph
                .edges
                .iter()
                .filter(|(_, to)| to == node)
                .map(|(from, _)| from.as_str())
                .collect()
        };
        let outputs = |node: &str| -> Vec<&str> {
            graph
                .edges
                .iter()
                .filter(|(from, _)| from == node)
                .map(|(_, to)| to.as_str())
                .collect()
        };
        let mut nodes = Vec::new();
        for (node, kind) in &graph.nodes {
            // A channel counts its own batches; a unit or sink those of its inputs; a source
            // what it recorded (at its first output).
            let counted: Vec<&str> = match kind {
                NodeKind::Channel => vec![node.as_str()],
                NodeKind::Unit | NodeKind::Sink => inputs(node),
                NodeKind::Source => outputs(node).into_iter().take(1).collect(),
            };
            let mut sum = [0u64; 4];
            for n in counted {
                if let Some(c) = at.get(n) {
                    for (s, v) in sum.iter_mut().zip(c) {
                        *s += v;
                    }
                }
            }
            let (kind_name, replicas, limit) = match kind {
                NodeKind::Source => ("source", None, None),
                NodeKind::Unit => {
                    let u = &parsed.def.units[node];
                    let r = p.replicas.get(node).copied().unwrap_or(u.replicas);
                    ("unit", Some(r), None)
                }
                NodeKind::Channel => {
                    let limit = parsed
                        .def
                        .channels
                        .get(node)
                        .and_then(|c| c.limit)
                        .unwrap_or(crate::pipeline::DEFAULT_CHANNEL_LIMIT);
                    ("channel", None, Some(limit))
                }
                NodeKind::Sink => ("sink", None, None),
            };
            let recorded = if *kind == NodeKind::Source {
                // A source has recorded its batches; it waits for nothing and leases nothing.
                let all = sum[0] + sum[1] + sum[2];
                sum = [0; 4];
                all
            } else {
                0
            };
            nodes.push(PipelineNode {
                name: node.clone(),
                kind: kind_name.into(),
                replicas,
                limit,
                waiting: sum[0],
                leased: sum[1],
                processed: sum[2],
                processed_last_minute: sum[3],
                recorded,
                // A channel feeding a blocking unit holds all of its input: always ready.
                ready: limit.is_none_or(|l| sum[0] + sum[1] < u64::from(l))
                    || outputs(node).iter().any(|r| {
                        parsed
                            .def
                            .units
                            .get(*r)
                            .is_some_and(|u| u.kind == UnitKind::Blocking)
                    }),
                blocking: parsed
                    .def
                    .units
                    .get(node)
                    .is_some_and(|u| u.kind == UnitKind::Blocking),
            });
        }
        Ok(PipelineStatus {
            pipeline: PipelineView::from(p.clone()),
            nodes,
            edges: graph.edges.iter().cloned().collect(),
            running_here: self.inner.runs.control(p.id).is_some(),
        })
    }

    /// The latest lines of a pipeline's run on this server (empty where another server runs
    /// it, or none ran since this one started).
    pub async fn pipeline_logs(&self, cluster: &str, name: &str) -> Result<Vec<PipelineLogLine>> {
        let p = self.pipeline(cluster, name).await?;
        let latest = self
            .inner
            .runs
            .latest
            .lock()
            .expect("not poisoned")
            .get(&p.id)
            .cloned();
        Ok(latest
            .map(|c| c.log())
            .unwrap_or_default()
            .into_iter()
            .map(|(at, line)| PipelineLogLine { at, line })
            .collect())
    }
}
