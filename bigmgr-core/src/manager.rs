//! The Manager: the composition root (`Manager::builder()…build()`) and the one facade every
//! frontend calls. It validates requests, plans jobs, persists them and hands them to the engine;
//! users, tokens, authorisation and audit are in `manager/auth.rs`.

use crate::engine::{Command, Control, Engine, EngineConfig, EngineParts, Logged, Update};
use crate::model::*;
use crate::name::check_name;
use crate::placement::Placement;
use crate::plan::{self, PlanInput};
use crate::sched::{FifoScheduler, Scheduler};
use crate::stack::{ServiceDef, StackProvider, StackRef};
use crate::store::{Fence, JobStore, SqlStore, Store};
use crate::transport::Transport;
use crate::view::{PlannedUnitView, ServiceCheckView};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

mod acting;
mod advice;
mod alerts;
mod assistant;
mod auth;
mod bootstrap;
mod checks;
mod configs;
mod events;
mod healing;
mod maintenance;
mod metrics;
mod notify;
mod overrides;
mod pipeline_runs;
mod pipelines;
mod placement;
mod reconcile;
mod relations;
mod replica;
pub use advice::AdviceScope;
pub use alerts::AlertSettings;
pub use assistant::{Conversation, MCP_THREAD, ToolOutput};
pub use checks::AlertOverride;
pub use overrides::{AlertDefinitionView, ChangeAlert};
pub use replica::ReplicaSettings;
pub use spec::SpecApplied;
mod snapshots;
mod spec;
mod units;
mod views;
mod watch;

pub use acting::Acting;
pub use auth::BOOTSTRAP_ADMIN;
pub use configs::ConfigChange;
pub use events::LOG_POLL;
pub use relations::Relate;
pub use watch::{MIN_GAP, WATCH_EVERY};

/// A checked service instance, ready to store: its units, why core chose each unit's host
/// (for a placement by count; `None` where it was named), and the cluster's hosts by name.
struct Prepared {
    new: NewService,
    units: Vec<NewUnit>,
    why: Vec<Option<String>>,
    hosts: HashMap<String, Host>,
}

/// A request to add a service instance to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddService {
    /// Its name in the cluster (`zk`): 1-63 letters, digits, `-`, `_` or `.`, starting with a
    /// letter or digit.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
    /// The stack (`bigtop`).
    pub stack: String,
    /// The stack version; `None` takes the newest.
    #[serde(default)]
    pub version: Option<String>,
    /// The service definition (`zookeeper`).
    pub service: String,
    /// Per component: its hosts (`["h1", "h2"]`), or a count core places by load (`3`, or
    /// `{"count": 3, "among": [...], "match": "worker-*"}`); a component left out gets no
    /// units.
    pub placement: BTreeMap<String, Placement>,
    /// Config values over the stack's defaults: config type (`zoo.cfg`) → property → value,
    /// each checked against the property's type.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>))]
    pub configs: ServiceConfigs,
    /// Host overrides: host name → config type → property → value (win over `configs`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>>))]
    pub host_overrides: HostOverrides,
}

/// Builds a [`Manager`]: a store, a transport and a stack provider are needed; the scheduler
/// defaults to [`FifoScheduler`].
#[derive(Default)]
pub struct ManagerBuilder {
    store: Option<Arc<dyn Store>>,
    store_url: Option<String>,
    /// The store opened from `store_url` (a replica needs its PostgreSQL side).
    sql: Option<SqlStore>,
    /// Set for a replica: its settings, id and fence.
    replica: Option<(replica::ReplicaSettings, String, Fence)>,
    /// How the built-in alerts are evaluated.
    alerts: AlertSettings,
    engine_jobs: Option<Arc<dyn JobStore>>,
    transport: Option<Arc<dyn Transport>>,
    stacks: Option<Arc<dyn StackProvider>>,
    scheduler: Option<Arc<dyn Scheduler>>,
    config: EngineConfig,
    ca_fingerprint: Option<String>,
    agent_ca: Option<Arc<crate::tls::AgentCa>>,
    agent_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// The store (default: [`SqlStore`] in memory, which forgets everything at exit).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The embedded SQLite store in the file at `path` (created with its directory's
    /// permissions if missing, migrated on open): what the server and Python's embedded engine
    /// run on, without naming a store type.
    pub fn sqlite(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.store_url = Some(crate::store::sqlite_url(path.as_ref()));
        self
    }

    /// The [`SqlStore`] at `url` (`sqlite://…`, `sqlite::memory:` or `postgres://…`), opened
    /// and migrated when the Manager is built.
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = Some(url.into());
        self
    }

    /// Runs as one of several replicas on the PostgreSQL store named by
    /// [`ManagerBuilder::store_url`]: the engine runs only while this replica holds the
    /// engine's lease (see `manager/replica.rs`).
    pub fn replica(mut self, settings: ReplicaSettings) -> Self {
        let holder = replica::holder_id(&settings.url);
        let fence = Fence::new(&holder);
        self.replica = Some((settings, holder, fence));
        self
    }

    /// How the built-in alerts are evaluated (default [`AlertSettings::default`]).
    pub fn alerts(mut self, settings: AlertSettings) -> Self {
        self.alerts = settings;
        self
    }

    /// A store shared with others.
    pub fn store_arc(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The job store the engine reads its jobs from and writes their changes to (default: the
    /// store). For a decorator of the store — to count, delay or fail the engine's writes, as
    /// tests do — not for other data: everything else, `submit` and the job reads included,
    /// goes to the store.
    pub fn engine_jobs(mut self, jobs: Arc<dyn JobStore>) -> Self {
        self.engine_jobs = Some(jobs);
        self
    }

    /// The transport to agents, shared with whoever attaches agents to it.
    pub fn transport<T: Transport>(mut self, transport: Arc<T>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Where stacks come from.
    pub fn stacks(mut self, stacks: impl StackProvider) -> Self {
        self.stacks = Some(Arc::new(stacks));
        self
    }

    /// The scheduler (default [`FifoScheduler`]).
    pub fn scheduler(mut self, scheduler: impl Scheduler) -> Self {
        self.scheduler = Some(Arc::new(scheduler));
        self
    }

    /// The engine's watchdog timings.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The fingerprint of the CA agents pin when they join (`sha256:…`), when the server
    /// speaks TLS: join tokens are handed out with it.
    pub fn ca_fingerprint(mut self, fingerprint: Option<String>) -> Self {
        self.ca_fingerprint = fingerprint;
        self
    }

    /// The CA that signs agents' certificates, when the server speaks TLS and its listener
    /// verifies client certificates against it: [`ManagerBuilder::build_grpc`]'s transport
    /// then makes agents' sessions mutual TLS.
    pub fn agent_ca(mut self, ca: Option<Arc<crate::tls::AgentCa>>) -> Self {
        self.agent_ca = ca;
        self
    }

    /// Opens the store named by [`ManagerBuilder::sqlite`] or [`ManagerBuilder::store_url`]
    /// if one was, so that a transport
    /// can share it before the build.
    async fn open_store(&mut self) -> Result<Arc<dyn Store>> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let url = self.store_url.take();
        let sql = SqlStore::open(url.as_deref().unwrap_or("sqlite::memory:")).await?;
        if self.replica.is_some() && sql.engine() != crate::store::Engine::Postgres {
            return Err(Error::Invalid(
                "replicas share a PostgreSQL store: give --store postgres://…".into(),
            ));
        }
        let store: Arc<dyn Store> = Arc::new(sql.clone());
        self.sql = Some(sql);
        self.store = Some(store.clone());
        Ok(store)
    }

    /// Builds with the gRPC transport agents dial, admitting them through the same store, and
    /// returns it beside the Manager: its routes are served with the REST API
    /// ([`GrpcTransport::routes`](crate::grpc::GrpcTransport::routes)). A transport set on the
    /// builder is replaced.
    pub async fn build_grpc(
        mut self,
        settings: crate::grpc::GrpcSettings,
    ) -> Result<(Manager, Arc<crate::grpc::GrpcTransport>)> {
        let store = self.open_store().await?;
        // A replica's transport writes (registrations, heartbeats, LOST) are fenced too.
        let admission: Arc<dyn crate::store::AdmissionStore> = match (&self.replica, &self.sql) {
            (Some((_, _, fence)), Some(sql)) => Arc::new(sql.fenced(fence.clone())),
            _ => store,
        };
        let grpc = crate::grpc::GrpcTransport::new(admission, settings, self.agent_ca.take());
        let mgr = self.transport(Arc::clone(&grpc)).build().await?;
        Ok((mgr, grpc))
    }

    /// The directory of the `bigmgr-agent` executables that adding hosts over SSH copies:
    /// `bigmgr-agent` for this server's architecture, `bigmgr-agent-<arch>` for others
    /// ([`crate::bootstrap::AgentBinaries`]). Without one, such requests are refused.
    pub fn agent_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.agent_dir = Some(dir.into());
        self
    }

    /// Starts the engine: unfinished jobs of an earlier run are recovered, queued work goes on.
    /// Must be called inside a tokio runtime.
    pub async fn build(mut self) -> Result<Manager> {
        let need = |what: &str, how: &str| {
            Error::Invalid(format!(
                "the Manager needs a {what}: call .{how}(…) on the builder"
            ))
        };
        let store = self.open_store().await?;
        let transport = self
            .transport
            .ok_or_else(|| need("transport", "transport"))?;
        let stacks = self
            .stacks
            .ok_or_else(|| need("stack provider", "stacks"))?;
        // The built-in stack beside the provider's, and its bootstrap command run here.
        let stacks: Arc<dyn StackProvider> =
            Arc::new(crate::bootstrap::builtin::BuiltinStacks::new(stacks));
        let server_side = Arc::new(crate::bootstrap::runner::ServerSide::new(
            transport,
            store.clone(),
        ));
        let transport: Arc<dyn Transport> = server_side.clone();
        let scheduler = self.scheduler.unwrap_or_else(|| Arc::new(FifoScheduler));
        let events = transport.take_events()?;
        let (updates, _) = broadcast::channel(4096);
        let (logged, _) = broadcast::channel(4096);
        let metrics = crate::metrics::Metrics::new();
        let replica = match (self.replica.take(), &self.sql) {
            (Some(r), Some(sql)) => Some((r, sql.clone())),
            (Some(_), None) => {
                return Err(Error::Invalid(
                    "a replica opens its store itself: give .store_url(\"postgres://…\")".into(),
                ));
            }
            (None, _) => None,
        };
        let jobs: Arc<dyn JobStore> = match (self.engine_jobs, &replica) {
            (Some(jobs), _) => jobs,
            (None, Some(((_, _, fence), sql))) => replica::fenced_jobs(sql, fence),
            (None, None) => store.clone(),
        };
        let parts = EngineParts {
            jobs,
            topology: store.clone(),
            transport: transport.clone(),
            stacks: stacks.clone(),
            scheduler,
            config: self.config,
            updates: updates.clone(),
            logged: logged.clone(),
            metrics: metrics.clone(),
        };
        let (commands, rx) = mpsc::unbounded_channel();
        // Self-heal restarts, decided by the alert evaluation, submitted by the Manager.
        let (healer, heal_rx) = mpsc::unbounded_channel();
        let task = match replica {
            Some(((settings, holder, fence), sql)) => {
                tokio::spawn(replica::run(replica::Replica {
                    sql,
                    holder,
                    fence,
                    settings,
                    parts,
                    alerts: self.alerts.clone(),
                    healer,
                    commands: rx,
                    events,
                }))
            }
            None => {
                // A single server runs the job engine, and evaluates the alerts.
                metrics.families().leader.set(1);
                let mut engine = Engine::new(parts);
                engine.recover().await?;
                let alerts = alerts::start(
                    store.clone(),
                    stacks.clone(),
                    self.alerts.clone(),
                    metrics.clone(),
                    Some(healer),
                );
                let engine = engine.run(rx, events);
                tokio::spawn(async move {
                    // The evaluation stops with the engine (also when this task is aborted).
                    let _alerts = alerts;
                    engine.await;
                })
            }
        };
        let host_updates = updates.subscribe();
        let inner = Arc::new(Inner {
            store,
            transport,
            stacks,
            commands,
            updates,
            logged,
            engine: std::sync::Mutex::new(Some(task)),
            watcher: std::sync::Mutex::new(None),
            auth_lock: tokio::sync::Mutex::new(()),
            metrics,
            ca_fingerprint: self.ca_fingerprint,
            alert_settings: self.alerts.clone(),
            server_side,
            agent_dir: self.agent_dir,
            runs: Default::default(),
        });
        Manager::serve_pipeline_runs(&inner);
        let watcher = tokio::spawn(reconcile::watch_hosts(Arc::downgrade(&inner), host_updates));
        tokio::spawn(healing::serve(Arc::downgrade(&inner), heal_rx));
        if let Ok(mut w) = inner.watcher.lock() {
            *w = Some(watcher);
        }
        Ok(Manager { inner })
    }
}

struct Inner {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    stacks: Arc<dyn StackProvider>,
    commands: mpsc::UnboundedSender<Command>,
    updates: broadcast::Sender<Update>,
    /// Which tasks have new log lines stored (see [`Logged`]).
    logged: broadcast::Sender<Logged>,
    engine: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Reconfigures relations when hosts re-register (see `reconcile::watch_hosts`).
    watcher: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Serialises user and token changes whose checks span several reads (the last admin).
    auth_lock: tokio::sync::Mutex<()>,
    /// What it measures of itself (`GET /metrics`).
    metrics: crate::metrics::Metrics,
    /// The CA agents pin, when the server speaks TLS.
    ca_fingerprint: Option<String>,
    /// How the built-in alerts are evaluated (what their definitions say).
    alert_settings: AlertSettings,
    /// Runs the built-in `bootstrap` command; holds the SSH orders of bootstraps.
    server_side: Arc<crate::bootstrap::runner::ServerSide>,
    /// Where the `bigmgr-agent` executables that bootstrap copies are.
    agent_dir: Option<std::path::PathBuf>,
    /// The pipelines this server runs.
    runs: pipeline_runs::Runs,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop the engine where it is: everything it decided is stored or not at all, and a
        // new Manager on the same store takes over from there.
        for slot in [&self.engine, &self.watcher] {
            if let Ok(mut e) = slot.lock()
                && let Some(task) = e.take()
            {
                task.abort();
            }
        }
    }
}

/// The facade of bigmgr: clusters, hosts, services, jobs. Cheap to clone; the engine stops when
/// the last clone is dropped (or at [`Manager::shutdown`]).
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// A builder.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// The stack provider.
    pub fn stacks(&self) -> &Arc<dyn StackProvider> {
        &self.inner.stacks
    }

    /// Every change the engine makes, as it makes it.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.inner.updates.subscribe()
    }

    /// Every task the engine stores new log lines of, as it stores them.
    pub(crate) fn subscribe_logs(&self) -> broadcast::Receiver<Logged> {
        self.inner.logged.subscribe()
    }

    /// Stops the engine and waits until it has stopped.
    pub async fn shutdown(self) {
        let task = self.inner.engine.lock().ok().and_then(|mut e| e.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    // ---- clusters and hosts ----

    /// Creates a cluster.
    pub async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        check_name("cluster", name)?;
        self.inner.store.create_cluster(name).await
    }

    /// The cluster of that name.
    pub async fn cluster(&self, name: &str) -> Result<Cluster> {
        self.inner
            .store
            .cluster_by_name(name)
            .await?
            .ok_or_else(|| Error::not_found("cluster", name))
    }

    /// Every cluster.
    pub async fn clusters(&self) -> Result<Vec<Cluster>> {
        self.inner.store.list_clusters().await
    }

    /// Deletes a cluster, with its join tokens. Refused ([`Error::Conflict`]) while it has
    /// hosts, services or jobs: remove those first.
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let c = self.cluster(name).await?;
        self.inner.store.delete_cluster(c.id).await
    }

    /// Adds a host to a cluster; a host name is unique across clusters.
    pub async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<Host> {
        check_name("host", name)?;
        crate::address::check_address(address)
            .map_err(|e| Error::Invalid(format!("address: {e}")))?;
        let cluster = self.cluster(cluster).await?;
        if let Some(h) = self.inner.store.host_by_name(name).await? {
            let owner = if h.cluster == cluster.id {
                "this cluster".to_string()
            } else {
                format!("cluster {}", h.cluster)
            };
            return Err(Error::AlreadyExists {
                kind: "host",
                name: format!("{name} (in {owner})"),
            });
        }
        let mut host = self
            .inner
            .store
            .add_host(NewHost {
                cluster: cluster.id,
                name: name.into(),
                address: address.into(),
            })
            .await?;
        // An in-process agent attached before its host was added: nothing to wait for.
        if self.inner.transport.connected(name) {
            let now = crate::model::now_ms();
            self.inner
                .store
                .set_host_state(host.id, HostState::Online, Some(now))
                .await?;
            host.state = HostState::Online;
            host.last_heartbeat = Some(now);
        }
        Ok(host)
    }

    /// Sets a host's address — for one, to accept the address its agent reported (the host's
    /// `reported_address`; an agent never changes it itself, see [`crate::join::admit`]).
    /// Checked like every address; the relations of the host's units tell their other sides
    /// `changed`, and started units whose files change are reconfigured by automatic jobs.
    pub async fn set_host_address(&self, cluster: &str, name: &str, address: &str) -> Result<Host> {
        crate::address::check_address(address)
            .map_err(|e| Error::Invalid(format!("address: {e}")))?;
        let c = self.cluster(cluster).await?;
        let h = self.host(cluster, name).await?;
        if h.address != address || h.reported_address.is_some() {
            self.inner.store.set_host_address(h.id, address).await?;
        }
        if h.address != address {
            tracing::info!(cluster, host = name, from = %h.address, to = address, "host address changed");
            let hosts = std::collections::HashSet::from([name.to_string()]);
            self.hosts_changed(&c, &hosts, &format!("moved to address {address}"))
                .await?;
        }
        self.host(cluster, name).await
    }

    /// The service instance `name` of cluster `c`, or not found.
    pub(crate) async fn service_named(&self, c: &Cluster, name: &str) -> Result<ServiceInstance> {
        let found = self.inner.store.service_by_name(c.id, name).await?;
        found.ok_or_else(|| Error::not_found("service", format!("{name} (in cluster {})", c.name)))
    }

    /// The hosts of cluster `c` by name.
    pub(crate) async fn hosts_by_name(&self, c: ClusterId) -> Result<HashMap<String, Host>> {
        let hosts = self.inner.store.list_hosts(c).await?;
        Ok(hosts.into_iter().map(|h| (h.name.clone(), h)).collect())
    }

    /// The fingerprint of the CA agents pin (`sha256:…`), when the server speaks TLS.
    pub fn ca_fingerprint(&self) -> Option<&str> {
        self.inner.ca_fingerprint.as_deref()
    }

    /// The hosts of a cluster.
    pub async fn hosts(&self, cluster: &str) -> Result<Vec<Host>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_hosts(c.id).await
    }

    /// One host of a cluster.
    pub async fn host(&self, cluster: &str, name: &str) -> Result<Host> {
        let c = self.cluster(cluster).await?;
        self.host_of(&c, name).await
    }

    /// One host of cluster `c`.
    pub(crate) async fn host_of(&self, c: &Cluster, name: &str) -> Result<Host> {
        self.inner
            .store
            .host_by_name(name)
            .await?
            .filter(|h| h.cluster == c.id)
            .ok_or_else(|| Error::not_found("host", name))
    }

    /// Removes a host from a cluster. Refused ([`Error::Conflict`]) while a unit of a service
    /// instance is placed on it: remove those services first. The name can be used again; the
    /// host's agent is refused from then on; tasks that ran on it stay in their jobs.
    pub async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        let h = self.host(cluster, name).await?;
        // The unit that says the host was added over SSH goes with it.
        let store = &self.inner.store;
        if let Some(agent) = store
            .service_by_name(h.cluster, crate::bootstrap::builtin::INSTANCE)
            .await?
            .filter(|s| crate::bootstrap::builtin::is_builtin(&s.stack))
        {
            for u in store.list_units(h.cluster).await? {
                if u.service == agent.id && u.host == h.id {
                    store.remove_unit(u.id).await?;
                }
            }
        }
        self.inner.store.remove_host(h.id).await?;
        // Its agent's credential is gone: end its session too, so it is refused at once.
        self.inner.transport.forget(name);
        Ok(())
    }

    /// Creates a join token for a cluster: an agent that presents it joins the cluster as a new
    /// host and gets its own credential. The token is returned once; only its hash is kept.
    pub async fn create_join_token(&self, cluster: &str) -> Result<String> {
        let c = self.cluster(cluster).await?;
        crate::join::create_join_token(self.inner.store.as_ref(), c.id).await
    }

    // ---- stacks and services ----

    /// Every stack the provider offers.
    pub async fn list_stacks(&self) -> Result<Vec<StackRef>> {
        self.inner.stacks.list().await
    }

    /// Adds a service instance with its units. Checks that the stack and service exist, that
    /// every component and host named exists, and that every component's cardinality holds;
    /// nothing is written unless all of that holds.
    pub async fn add_service(
        &self,
        cluster: &str,
        req: AddService,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        self.add_service_by(cluster, req, "system").await
    }

    /// [`Manager::add_service`], naming who adds it (the author of config version 1).
    pub async fn add_service_by(
        &self,
        cluster: &str,
        req: AddService,
        author: &str,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        let p = self.prepare_service(cluster, req, author).await?;
        self.inner.store.add_service(p.new, p.units).await
    }

    /// Every check of [`Manager::add_service`], nothing written (a dry run): what it would
    /// create.
    pub async fn check_service(&self, cluster: &str, req: AddService) -> Result<ServiceCheckView> {
        let Prepared {
            new,
            units,
            why,
            hosts,
        } = self.prepare_service(cluster, req, "system").await?;
        let names: HashMap<HostId, &str> =
            hosts.values().map(|h| (h.id, h.name.as_str())).collect();
        Ok(ServiceCheckView {
            name: new.name,
            stack: new.stack,
            stack_version: new.stack_version,
            service: new.service,
            units: units
                .into_iter()
                .zip(why)
                .map(|(u, why)| PlannedUnitView {
                    host: names.get(&u.host).copied().unwrap_or_default().to_string(),
                    component: u.component,
                    why,
                })
                .collect(),
        })
    }

    /// Checks adding a service instance (see [`Manager::add_service`]) and returns what to
    /// store, with the cluster's hosts by name.
    async fn prepare_service(
        &self,
        cluster: &str,
        req: AddService,
        author: &str,
    ) -> Result<Prepared> {
        check_name("service", &req.name)
            .map_err(|e| Error::invalid_field("name", e.to_string()))?;
        if crate::bootstrap::builtin::is_builtin(&req.stack) {
            return Err(Error::invalid_field(
                "stack",
                format!(
                    "stack {} is built in: hosts get its agent by being added over SSH (POST \
                     /clusters/{{cluster}}/hosts/bootstrap), not as a service",
                    req.stack
                ),
            ));
        }
        let c = self.cluster(cluster).await?;
        let stack = self
            .inner
            .stacks
            .stack(&req.stack, req.version.as_deref())
            .await?;
        let def = stack.service(&req.service)?.clone();
        for comp in req.placement.keys() {
            def.component(comp)?;
        }
        let hosts = self.hosts_by_name(c.id).await?;
        for comp in &def.components {
            let n = req.placement.get(&comp.name).map_or(0, Placement::count);
            if !comp.cardinality.allows(n) {
                return Err(Error::Cardinality {
                    service: def.name.clone(),
                    component: comp.name.clone(),
                    expected: comp.cardinality.to_string(),
                    got: n,
                });
            }
        }
        // Counts are placed by load, spreading units (a new service has none yet).
        let mut candidates = None;
        let mut units = Vec::new();
        let mut why = Vec::new();
        for comp in &def.components {
            let Some(p) = req.placement.get(&comp.name) else {
                continue;
            };
            if p.rule().is_some() && candidates.is_none() {
                candidates = Some(self.candidates(&c).await?);
            }
            let placed =
                crate::placement::place(p, &[], candidates.as_deref_mut().unwrap_or_default())
                    .map_err(|e| Error::invalid_field(format!("placement.{}", comp.name), e))?;
            let mut seen = HashSet::new();
            for (n, reason) in placed {
                let h = hosts.get(&n).ok_or_else(|| {
                    Error::not_found("host", format!("{n} (in cluster {})", c.name))
                })?;
                if !seen.insert(n.clone()) {
                    return Err(Error::invalid_field(
                        format!("placement.{}", comp.name),
                        format!(
                            "host {n} is named twice for component {}; a component has at most one unit per host",
                            comp.name
                        ),
                    ));
                }
                units.push(NewUnit {
                    component: comp.name.clone(),
                    host: h.id,
                });
                why.push(reason);
            }
        }
        if self
            .inner
            .store
            .service_by_name(c.id, &req.name)
            .await?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                kind: "service",
                name: format!("{} (in cluster {})", req.name, c.name),
            });
        }
        crate::stack::check_configs(&def, &req.configs)?;
        configs::check_host_overrides(&def, &req.host_overrides, &hosts)?;
        crate::stack::software::check_layers(&def.software, &req.configs, &req.host_overrides)?;
        // Render every unit's config files now, as its configure task will: a template naming
        // a variable nobody sets fails here, before anything is written or run.
        let probe = ServiceInstance {
            id: ServiceId(-1),
            cluster: c.id,
            name: req.name.clone(),
            stack: stack.name.clone(),
            stack_version: stack.version.clone(),
            service: def.name.clone(),
            created_at: 0,
            configs: req.configs.clone(),
            host_overrides: req.host_overrides.clone(),
            config_version: 1,
        };
        let probe_units: Vec<Unit> = units
            .iter()
            .enumerate()
            .map(|(i, u)| Unit {
                id: UnitId(-1 - i as i64),
                service: probe.id,
                component: u.component.clone(),
                host: u.host,
                state: UnitState::New,
                health: None,
                applied_version: None,
                applied_hash: None,
            })
            .collect();
        let topo = crate::render::Topology::new(
            &c.name,
            vec![(probe, def.clone())],
            probe_units.clone(),
            hosts.values().cloned().collect(),
            Vec::new(),
        )?;
        configs::check_renders(&topo, &def.name, probe_units.iter())?;
        let new = NewService {
            cluster: c.id,
            name: req.name,
            stack: stack.name.clone(),
            stack_version: stack.version.clone(),
            service: def.name.clone(),
            configs: req.configs,
            host_overrides: req.host_overrides,
            author: author.to_string(),
        };
        Ok(Prepared {
            new,
            units,
            why,
            hosts,
        })
    }

    /// Removes a service instance with its units. Refused ([`Error::Conflict`]) while a unit of
    /// it is STARTED (stop it first) or a job that touches it is unfinished. The name can be
    /// used again; finished jobs keep their stages of it.
    pub async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        let c = self.cluster(cluster).await?;
        let s = self.service_named(&c, name).await?;
        let events = self
            .relation_events_for(
                &c,
                s.id,
                RelationEventKind::Broken,
                &format!("service {name} removed"),
            )
            .await?;
        self.inner.store.remove_service(s.id).await?;
        self.reconcile(&c, events, true).await?;
        Ok(())
    }

    /// The service instances of a cluster.
    pub async fn services(&self, cluster: &str) -> Result<Vec<ServiceInstance>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_services(c.id).await
    }

    /// The units of a cluster.
    pub async fn units(&self, cluster: &str) -> Result<Vec<Unit>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_units(c.id).await
    }

    // ---- jobs ----

    /// Plans a job without submitting it (a dry run): the stages it would have.
    pub async fn plan(&self, req: &JobRequest) -> Result<NewJob> {
        let c = self.cluster(&req.cluster).await?;
        let store = &self.inner.store;
        let instances = store.list_services(c.id).await?;
        let units = store.list_units(c.id).await?;
        let hosts = store.list_hosts(c.id).await?;
        let mut services: Vec<(ServiceInstance, Arc<ServiceDef>)> = Vec::new();
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        for inst in instances {
            let stack = self
                .inner
                .stacks
                .stack(&inst.stack, Some(&inst.stack_version))
                .await?;
            if seen.insert((stack.name.clone(), stack.version.clone())) {
                rules.extend(stack.order_rules().cloned());
            }
            let def = stack.service(&inst.service)?.clone();
            services.push((inst, def));
        }
        let input = PlanInput {
            cluster: &c,
            services: &services,
            units: &units,
            hosts: &hosts,
            rules: &rules,
        };
        plan::plan(&input, &req.target, &req.command, &req.options)
    }

    /// Plans, persists (QUEUED, in one transaction) and queues a job.
    pub async fn submit(&self, req: JobRequest) -> Result<Job> {
        let planned = self.plan(&req).await?;
        let detail = self.inner.store.create_job(&planned).await?;
        let job = detail.job.clone();
        self.inner
            .commands
            .send(Command::Created(Box::new(detail)))
            .map_err(|_| Error::Transport("the engine has stopped".into()))?;
        Ok(job)
    }

    /// A job with its stages and tasks.
    pub async fn job(&self, id: JobId) -> Result<JobDetail> {
        self.inner
            .store
            .job_detail(id)
            .await?
            .ok_or_else(|| Error::not_found("job", id))
    }

    /// A job without its stages, or not found.
    pub(crate) async fn job_row(&self, id: JobId) -> Result<Job> {
        let job = self.inner.store.get_job(id).await?;
        job.ok_or_else(|| Error::not_found("job", id))
    }

    /// Jobs matching a filter.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.inner.store.list_jobs(filter).await
    }

    /// A task's log, every attempt or one.
    pub async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>> {
        self.inner.store.task_log(task, attempt).await
    }

    /// The log of task `task` of job `job`, every attempt or one; [`Error::NotFound`] if the
    /// job has no such task (a task id is only meaningful with its job).
    pub async fn job_task_log(
        &self,
        job: JobId,
        task: TaskId,
        attempt: Option<u32>,
    ) -> Result<Vec<LogLine>> {
        let detail = self.job(job).await?;
        if !detail.tasks.iter().any(|t| t.id == task) {
            return Err(Error::not_found(
                "task",
                format!("{task} (in job {job}; the job lists its tasks)"),
            ));
        }
        self.task_log(task, attempt).await
    }

    async fn control(&self, id: JobId, action: Control) -> Result<Job> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Control { id, action, reply })
            .map_err(|_| Error::Transport("the engine has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Transport("the engine stopped before answering".into()))?
    }

    /// Cancels a job: pending tasks end CANCELED, running scripts get SIGTERM (then SIGKILL).
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.control(id, Control::Cancel).await
    }

    /// Pauses a running job: nothing new is dispatched; running tasks finish.
    pub async fn pause(&self, id: JobId) -> Result<Job> {
        self.control(id, Control::Pause).await
    }

    /// Resumes a paused job.
    pub async fn resume(&self, id: JobId) -> Result<Job> {
        self.control(id, Control::Resume).await
    }

    /// Retries a failed or cancelled job: only its failed and cancelled tasks run again.
    pub async fn retry(&self, id: JobId) -> Result<Job> {
        self.control(id, Control::Retry).await
    }

    /// Waits until a job reaches a final state and returns it.
    pub async fn wait(&self, id: JobId) -> Result<Job> {
        let mut rx = self.subscribe();
        loop {
            let job = self.job_row(id).await?;
            if job.state.is_final() {
                return Ok(job);
            }
            loop {
                match rx.recv().await {
                    Ok(Update::Job { id: j, state }) if j == id && state.is_final() => break,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Error::Transport("the engine has stopped".into()));
                    }
                }
            }
        }
    }
}
