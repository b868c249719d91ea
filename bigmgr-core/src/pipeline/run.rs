//! Running a checked pipeline over the metastore, exactly once (docs/pipelines.md, "How it
//! runs"): sources cut their input into batches recorded at the channels after them; every
//! replica of a non-blocking unit leases one batch at a time from its input channels, stages
//! it in a fresh directory, runs the unit's program on it and completes it together with its
//! outputs, which it broadcasts to every channel after the unit; a blocking unit waits until
//! everything before it is done, then leases its whole input and runs once; sinks copy what
//! reaches them, each file named by its batch. Re-running a batch (its lease lapsed) writes
//! the same names again, and only the lease's holder can complete it, so nothing is lost or
//! doubled downstream. A writer waits while a channel after it holds its limit of batches
//! waiting (backpressure), except a channel feeding a blocking unit, which holds all.
//!
//! Where programs run and where batches live is the [`Hosts`] seam: [`LocalHosts`] runs them
//! as processes of this machine with a directory per host (tests, single-machine use); the
//! agents' implementation is to come.

use super::{Graph, PipelineDef, Program, SinkDef, SourceDef, UnitKind};
use crate::model::{NewBatch, PipelineBatch, PipelineId, now_ms};
use crate::store::PipelineStore;
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where programs run and where batches live.
#[async_trait]
pub trait Hosts: Send + Sync + 'static {
    /// The directory of `host` under which this pipeline's batches live.
    fn root(&self, host: &str) -> PathBuf;
    /// Makes the files of the batch at `location` (`<host>:<dir>`) appear in `dest` on `host`.
    async fn stage(&self, location: &str, host: &str, dest: &Path) -> Result<()>;
    /// Runs `program <input> <output>` on `host`; Ok once it exited 0 within `timeout`.
    async fn run(
        &self,
        host: &str,
        program: &Path,
        input: &Path,
        output: &Path,
        timeout: Duration,
    ) -> Result<()>;
}

/// Hosts that are directories of this machine, programs its processes.
#[derive(Debug, Clone)]
pub struct LocalHosts {
    roots: BTreeMap<String, PathBuf>,
}

impl LocalHosts {
    /// Hosts by name, each with its directory.
    pub fn new(roots: BTreeMap<String, PathBuf>) -> Self {
        LocalHosts { roots }
    }
}

#[async_trait]
impl Hosts for LocalHosts {
    fn root(&self, host: &str) -> PathBuf {
        self.roots
            .get(host)
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/nonexistent"))
    }

    async fn stage(&self, location: &str, _host: &str, dest: &Path) -> Result<()> {
        let (_, dir) = location
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("'{location}' is no batch location")))?;
        copy_files(Path::new(dir), dest).await
    }

    async fn run(
        &self,
        _host: &str,
        program: &Path,
        input: &Path,
        output: &Path,
        timeout: Duration,
    ) -> Result<()> {
        let mut child = tokio::process::Command::new(program)
            .arg(input)
            .arg(output)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Invalid(format!("cannot run {}: {e}", program.display())))?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => Err(Error::Invalid(format!(
                "{} ended with {s}",
                program.display()
            ))),
            Ok(Err(e)) => Err(Error::Invalid(format!("{}: {e}", program.display()))),
            Err(_) => Err(Error::Invalid(format!(
                "{} took longer than {timeout:?}",
                program.display()
            ))),
        }
    }
}

/// Copies the files of `from` into `to` (made if missing), each under its own name.
async fn copy_files(from: &Path, to: &Path) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::Invalid(format!("{}: {e}", p.display()));
    tokio::fs::create_dir_all(to).await.map_err(|e| io(to, e))?;
    let mut entries = tokio::fs::read_dir(from).await.map_err(|e| io(from, e))?;
    while let Some(e) = entries.next_entry().await.map_err(|e| io(from, e))? {
        if e.file_type()
            .await
            .map_err(|er| io(&e.path(), er))?
            .is_file()
        {
            let dest = to.join(e.file_name());
            tokio::fs::copy(e.path(), &dest)
                .await
                .map_err(|er| io(&dest, er))?;
        }
    }
    Ok(())
}

/// A batch id as a file or directory name (`/` → `~`).
fn file_name(batch: &str) -> String {
    batch.replace('/', "~")
}

/// One run of a pipeline; see the module docs.
pub struct Run {
    /// The pipeline in the store.
    pub pipeline: PipelineId,
    /// Its definition.
    pub def: PipelineDef,
    /// Its checked graph.
    pub graph: Graph,
    /// The metastore.
    pub store: Arc<dyn PipelineStore>,
    /// Where programs run.
    pub hosts: Arc<dyn Hosts>,
    /// The cluster's hosts, for units placed on any.
    pub cluster_hosts: Vec<String>,
    /// Programs by path are used as given; a stack's program is resolved by the caller.
    pub programs: BTreeMap<String, PathBuf>,
}

/// How often an idle replica looks for a batch again.
const IDLE: Duration = Duration::from_millis(20);
/// How long a sink holds a batch it copies.
const SINK_LEASE: Duration = Duration::from_secs(600);

impl Run {
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

    /// The program of unit `name`: its path, or what the caller resolved for a stack's.
    fn program(&self, name: &str) -> Result<PathBuf> {
        match &self.def.units[name].program {
            Program::Path(p) => Ok(PathBuf::from(p)),
            Program::Stack { .. } => self.programs.get(name).cloned().ok_or_else(|| {
                Error::Invalid(format!("unit {name}: its stack program was not resolved"))
            }),
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
        for (name, u) in &self.def.units {
            let hosts = if u.hosts.is_empty() {
                self.cluster_hosts.clone()
            } else {
                u.hosts.clone()
            };
            if hosts.is_empty() {
                return Err(Error::Invalid(format!("unit {name} has no host to run on")));
            }
            let live = Arc::new(std::sync::atomic::AtomicU32::new(u.replicas));
            for k in 0..u.replicas {
                let host = hosts[k as usize % hosts.len()].clone();
                let (run, done, name, live) =
                    (self.clone(), done.clone(), name.clone(), live.clone());
                let blocking = u.kind == UnitKind::Blocking;
                tasks.spawn(async move {
                    let holder = format!("{name}#{k}@{host}");
                    if blocking {
                        run.blocking(&name, &host, &holder, &done).await?;
                    } else {
                        run.replica(&name, &host, &holder, &done).await?;
                    }
                    if live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                        done.mark(&name);
                    }
                    Ok(())
                });
            }
        }
        for name in self.def.sinks.keys() {
            let (run, done, name) = (self.clone(), done.clone(), name.clone());
            tasks.spawn(async move {
                run.sink(&name, &done).await?;
                done.mark(&name);
                Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let result =
                joined.map_err(|e| Error::Invalid(format!("a pipeline node failed: {e}")))?;
            if let Err(e) = result {
                tasks.abort_all();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Cuts a source's input into batches and records each at every channel after it.
    async fn source(&self, name: &str) -> Result<()> {
        let SourceDef::Dir {
            host,
            path,
            records,
            watch: false,
        } = &self.def.sources[name]
        else {
            return Err(Error::Invalid(format!(
                "source {name}: only directory sources that do not watch run yet"
            )));
        };
        let io = |p: &Path, e: std::io::Error| Error::Invalid(format!("{}: {e}", p.display()));
        let mut files = Vec::new();
        let mut entries = tokio::fs::read_dir(path)
            .await
            .map_err(|e| io(Path::new(path), e))?;
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(|e| io(Path::new(path), e))?
        {
            if e.file_type()
                .await
                .map_err(|er| io(&e.path(), er))?
                .is_file()
            {
                files.push(e.path());
            }
        }
        files.sort();
        let readers = self.readers(name);
        let base = self.hosts.root(host).join(name);
        for f in files {
            let text = tokio::fs::read_to_string(&f).await.map_err(|e| io(&f, e))?;
            let lines: Vec<&str> = text.lines().collect();
            let stem = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (i, chunk) in lines.chunks(*records as usize).enumerate() {
                let batch = format!("{stem}:{i}");
                let dir = base.join(file_name(&batch));
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| io(&dir, e))?;
                let mut body = chunk.join("\n");
                body.push('\n');
                let part = dir.join("part");
                tokio::fs::write(&part, body)
                    .await
                    .map_err(|e| io(&part, e))?;
                let location = format!("{host}:{}", dir.display());
                let out: Vec<NewBatch> = readers
                    .iter()
                    .map(|r| NewBatch {
                        node: r.clone(),
                        batch: batch.clone(),
                        location: location.clone(),
                    })
                    .collect();
                self.ready(name).await?;
                self.store.receive_batches(self.pipeline, &out).await?;
            }
        }
        Ok(())
    }

    /// Waits until every channel `writer` writes to is ready: its backlog under its limit
    /// (backpressure). A channel feeding a blocking unit is always ready: that unit takes its
    /// whole input at once, so the channel holds all of it.
    async fn ready(&self, writer: &str) -> Result<()> {
        loop {
            let mut ready = true;
            for ch in self.readers(writer) {
                let blocking = self.readers(&ch).iter().any(|r| {
                    self.def
                        .units
                        .get(r)
                        .is_some_and(|u| u.kind == UnitKind::Blocking)
                });
                if blocking {
                    continue;
                }
                let limit = self
                    .def
                    .channels
                    .get(&ch)
                    .and_then(|c| c.limit)
                    .unwrap_or(super::DEFAULT_CHANNEL_LIMIT);
                if self.store.backlog(self.pipeline, &ch).await? >= u64::from(limit) {
                    ready = false;
                    break;
                }
            }
            if ready {
                return Ok(());
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
        let t = match &self.def.units[name].timeout {
            Some(t) => crate::duration::parse_duration(t).map_err(Error::Invalid)?,
            None => Duration::from_secs(600),
        };
        Ok(t + Duration::from_secs(30))
    }

    /// One replica of a non-blocking unit.
    async fn replica(&self, name: &str, host: &str, holder: &str, done: &Done) -> Result<()> {
        let inputs = self.writers(name);
        let lease = self.lease(name)?;
        let program = self.program(name)?;
        loop {
            self.ready(name).await?;
            let leased = self.lease_each(&inputs, holder, lease).await?;
            if leased.is_empty() {
                if self.all_drained(&inputs, done).await? {
                    return Ok(());
                }
                tokio::time::sleep(IDLE).await;
            }
            for (ch, b) in leased {
                self.process(name, host, holder, &program, lease, &ch, &[b])
                    .await?;
            }
        }
    }

    /// A blocking unit: once all before it is done, its whole input, once.
    async fn blocking(&self, name: &str, host: &str, holder: &str, done: &Done) -> Result<()> {
        let inputs = self.writers(name);
        let lease = self.lease(name)?;
        let program = self.program(name)?;
        loop {
            if inputs
                .iter()
                .all(|ch| self.writers(ch).iter().all(|w| done.has(w)))
            {
                break;
            }
            tokio::time::sleep(IDLE).await;
        }
        for ch in &inputs {
            let mut batches = Vec::new();
            loop {
                let leased = self
                    .lease_each(std::slice::from_ref(ch), holder, lease)
                    .await?;
                if leased.is_empty() {
                    break;
                }
                batches.extend(leased.into_iter().map(|(_, b)| b));
            }
            if !batches.is_empty() {
                self.process(name, host, holder, &program, lease, ch, &batches)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs unit `name`'s program on `batches` (leased from channel `ch`) and completes them
    /// with the output, broadcast to every channel after the unit.
    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        name: &str,
        host: &str,
        holder: &str,
        program: &Path,
        timeout: Duration,
        ch: &str,
        batches: &[PipelineBatch],
    ) -> Result<()> {
        let id = if batches.len() == 1 {
            format!("{}/{name}", batches[0].batch)
        } else {
            format!("{name}:all")
        };
        let work = self.hosts.root(host).join(name).join(file_name(&id));
        let (input, output) = (work.join("in"), work.join("out"));
        // A batch processed again starts from nothing: the same names, written anew.
        let _ = tokio::fs::remove_dir_all(&work).await;
        for b in batches {
            let dest = if batches.len() == 1 {
                input.clone()
            } else {
                input.join(file_name(&b.batch))
            };
            self.hosts.stage(&b.location, host, &dest).await?;
        }
        if batches.len() > 1 {
            // A blocking unit reads one directory: its batches' files side by side.
            flatten(&input).await?;
        }
        tokio::fs::create_dir_all(&output)
            .await
            .map_err(|e| Error::Invalid(format!("{}: {e}", output.display())))?;
        self.hosts
            .run(host, program, &input, &output, timeout)
            .await
            .map_err(|e| Error::Invalid(format!("unit {name}, batch {id}: {e}")))?;
        let location = format!("{host}:{}", output.display());
        let outputs: Vec<NewBatch> = self
            .readers(name)
            .into_iter()
            .map(|r| NewBatch {
                node: r,
                batch: id.clone(),
                location: location.clone(),
            })
            .collect();
        let ids: Vec<String> = batches.iter().map(|b| b.batch.clone()).collect();
        let completed = self
            .store
            .complete_batches(self.pipeline, ch, &ids, holder, &outputs)
            .await?;
        if !completed {
            // The lease lapsed and another replica took the batch: its result counts, not
            // this one (the same names, so nothing downstream doubles).
            tracing::warn!(unit = name, batch = id, "lease lost before completing");
        }
        Ok(())
    }

    /// A sink: copies each batch reaching it into its directory, named by the batch.
    async fn sink(&self, name: &str, done: &Done) -> Result<()> {
        let SinkDef::Dir { host, path, .. } = &self.def.sinks[name] else {
            return Err(Error::Invalid(format!(
                "sink {name}: only directory sinks run yet"
            )));
        };
        let inputs = self.writers(name);
        let holder = format!("{name}@{host}");
        loop {
            let leased = self.lease_each(&inputs, &holder, SINK_LEASE).await?;
            if leased.is_empty() {
                if self.all_drained(&inputs, done).await? {
                    return Ok(());
                }
                tokio::time::sleep(IDLE).await;
            }
            for (ch, b) in leased {
                let dest = Path::new(path).join(file_name(&b.batch));
                let _ = tokio::fs::remove_dir_all(&dest).await;
                self.hosts.stage(&b.location, host, &dest).await?;
                self.store
                    .complete_batch(self.pipeline, &ch, &b.batch, &holder, &[])
                    .await?;
            }
        }
    }

    /// A batch of each of `inputs` that has one waiting, leased to `holder` for `lease`.
    async fn lease_each(
        &self,
        inputs: &[String],
        holder: &str,
        lease: Duration,
    ) -> Result<Vec<(String, PipelineBatch)>> {
        let mut leased = Vec::new();
        for ch in inputs {
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

/// Moves the files of `dir`'s subdirectories up into `dir`, each prefixed by its directory.
async fn flatten(dir: &Path) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::Invalid(format!("{}: {e}", p.display()));
    let mut subdirs = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| io(dir, e))?;
    while let Some(e) = entries.next_entry().await.map_err(|e| io(dir, e))? {
        if e.file_type()
            .await
            .map_err(|er| io(&e.path(), er))?
            .is_dir()
        {
            subdirs.push(e.path());
        }
    }
    for sub in subdirs {
        let prefix = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = tokio::fs::read_dir(&sub).await.map_err(|e| io(&sub, e))?;
        while let Some(f) = files.next_entry().await.map_err(|e| io(&sub, e))? {
            let to = dir.join(format!("{prefix}~{}", f.file_name().to_string_lossy()));
            tokio::fs::rename(f.path(), &to)
                .await
                .map_err(|e| io(&to, e))?;
        }
        tokio::fs::remove_dir(&sub).await.map_err(|e| io(&sub, e))?;
    }
    Ok(())
}

/// The nodes that are done.
#[derive(Debug, Default)]
struct Done(std::sync::Mutex<BTreeSet<String>>);

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
