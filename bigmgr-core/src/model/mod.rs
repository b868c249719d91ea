//! The cluster model: clusters, hosts, service instances, units, jobs, stages and tasks; users,
//! API tokens and audit events.
//!
//! Times are milliseconds since the Unix epoch (`i64`), as stored.

mod alert;
mod assistant;
mod auth;
mod check;
mod config;
mod host;
mod ids;
mod pipeline;
mod state;

pub use alert::{
    Alert, AlertChange, AlertFilter, AlertOverride, AlertReport, AlertSubject, AlertTarget,
    DeliveryAttempt, HealingPolicy, Maintenance, Notification, TargetKind,
};
pub use assistant::{
    ChatMessage, ChatRole, NewChatMessage, NewProposal, NewThread, Proposal, ProposalResult,
    ProposalState, Provider, ProviderSettings, SuggestedAction, Thread, ToolCall,
};
pub use auth::{
    ApiToken, AuditEvent, AuditFilter, NewApiToken, NewAuditEvent, NewUser, Outcome, Role, User,
};
pub use check::{CANNOT_CHECK, CheckResult, CheckSpec, Probe};
pub use config::{
    ConfigDiff, ConfigVersion, HostOverrides, NewConfigVersion, NewRelation, NewRelationEvent,
    NewSnapshot, Relation, RelationEvent, RelationEventKind, Snapshot, SnapshotEntry, UnitStatus,
};
pub use host::{Health, HostFacts, HostMetrics, HostReport, UnitHealth};
pub use ids::{
    AlertChangeId, AlertId, AlertTargetId, ApiTokenId, AuditId, ClusterId, HostId, JobId,
    MaintenanceId, MessageId, NotificationId, PipelineId, ProposalId, RelationEventId, RelationId,
    RunId, ServiceId, SnapshotId, StageId, TaskId, ThreadId, UnitId, UserId,
};
pub use pipeline::{NewBatch, NewPipeline, Pipeline, PipelineBatch};
pub use state::{
    AlertState, BatchState, HostState, JobState, PipelineState, StageState, TaskState, UnitState,
};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A named set of hosts with its own config space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ClusterView))]
pub struct Cluster {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ClusterId,
    /// Its unique name.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// The name of host `id` among `hosts` (its id as text if none of them is it).
pub fn host_name(hosts: &[Host], id: HostId) -> String {
    hosts
        .iter()
        .find(|h| h.id == id)
        .map_or_else(|| id.to_string(), |h| h.name.clone())
}

/// A machine, known by its agent's host name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Its id.
    pub id: HostId,
    /// The cluster it belongs to.
    pub cluster: ClusterId,
    /// Its unique host name.
    pub name: String,
    /// The address its services bind to and other hosts reach it at (an IP address or a DNS
    /// name, see [`crate::address`]). Set by whoever added the host: an admin, or the agent
    /// that joined as a new host; changed only by an admin.
    pub address: String,
    /// An address the host's agent reported that differs from `address`, waiting for an admin
    /// to accept it (see `docs/security.md`); `None` when they agree.
    #[serde(default)]
    pub reported_address: Option<String>,
    /// Whether its agent is reachable.
    pub state: HostState,
    /// The last heartbeat, if any.
    pub last_heartbeat: Option<i64>,
    /// Facts its agent reported when it registered.
    pub facts: Option<HostFacts>,
    /// Metrics from its latest heartbeat.
    pub metrics: Option<HostMetrics>,
}

/// What is needed to add a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHost {
    /// The cluster to add it to.
    pub cluster: ClusterId,
    /// Its unique host name.
    pub name: String,
    /// The address its services bind to.
    pub address: String,
}

/// A service of a stack, added to a cluster under its own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// Its id.
    pub id: ServiceId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name in the cluster (`zk`, `cache` …), unique per cluster.
    pub name: String,
    /// The stack it comes from (`bigtop`).
    pub stack: String,
    /// The stack version (`1.0.0`).
    pub stack_version: String,
    /// The service definition in that stack (`zookeeper`).
    pub service: String,
    /// When it was added.
    pub created_at: i64,
    /// Its desired config values over the stack's defaults: config type → property → value
    /// (the service layer of version `config_version`).
    #[serde(default)]
    pub configs: ServiceConfigs,
    /// The host layer of version `config_version`: host name → config type → property → value.
    #[serde(default)]
    pub host_overrides: HostOverrides,
    /// The desired config version (1 when added; one more per change).
    #[serde(default)]
    pub config_version: u32,
}

/// Config values of a service instance: config type (`zoo.cfg`) → property → value.
pub type ServiceConfigs =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>;

/// What is needed to add a service instance; its units come alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name in the cluster.
    pub name: String,
    /// The stack.
    pub stack: String,
    /// The stack version.
    pub stack_version: String,
    /// The service definition.
    pub service: String,
    /// Its config values over the stack's defaults (checked against the stack first).
    pub configs: ServiceConfigs,
    /// Its host layer.
    pub host_overrides: HostOverrides,
    /// Who adds it: the author of config version 1 (message "initial configs").
    pub author: String,
}

/// One component placed on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Its id.
    pub id: UnitId,
    /// Its service instance.
    pub service: ServiceId,
    /// The component name (`zookeeper_server`).
    pub component: String,
    /// The host it is placed on.
    pub host: HostId,
    /// Its state, following the results of its tasks.
    pub state: UnitState,
    /// Its health from the latest heartbeat that reported it.
    pub health: Option<Health>,
    /// The config version its files were last rendered from by a successful `configure`.
    #[serde(default)]
    pub applied_version: Option<u32>,
    /// A hash of the files that `configure` wrote (configs and relation data together).
    #[serde(default)]
    pub applied_hash: Option<String>,
}

/// A unit to place, when adding a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUnit {
    /// The component name.
    pub component: String,
    /// The host.
    pub host: HostId,
}

/// What a job acts on: `"cluster"`, `{"service": "zk"}`,
/// `{"component": {"service", "component"}}`, `{"hosts": [..]}` or `{"units": [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every service instance of the cluster.
    Cluster,
    /// One service instance, by name.
    Service(String),
    /// One component of one service instance.
    Component {
        /// The service instance name.
        service: String,
        /// The component name.
        component: String,
    },
    /// Every unit on these hosts, by host name.
    Hosts(Vec<String>),
    /// These units, by id.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<i64>))]
    Units(Vec<UnitId>),
}

/// How a job runs: parallelism, batches and pipelining; every field may be left out. Read from
/// a JSON object only (serde would otherwise take a struct from an array too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct JobOptions {
    /// At most this many tasks of the job run at once; null is no limit.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub parallelism: Option<u32>,
    /// Run each stage's tasks in batches of this size, one batch after the other (rolling).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub batch_size: Option<u32>,
    /// How many failed tasks a stage tolerates and still succeeds.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1000000, required = false)
    )]
    pub failure_tolerance: u32,
    /// Start a host's task of a stage as soon as that host's tasks of the stages before it
    /// succeeded, instead of waiting for the whole stage before.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub pipelined: bool,
    /// Why it runs, as the job list shows it: an operator's note, or what submitted it on its
    /// own (`self-heal: zookeeper_server on h2 down for 40 s`). At most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(required = false, max_length = 500))]
    pub reason: Option<String>,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for JobOptions {
    type Error = serde_json::Error;

    fn try_from(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, Self::Error> {
        /// The fields, every one optional, no others.
        #[derive(Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Fields {
            parallelism: Option<u32>,
            batch_size: Option<u32>,
            failure_tolerance: u32,
            pipelined: bool,
            reason: Option<String>,
        }
        impl Default for Fields {
            fn default() -> Fields {
                let d = JobOptions::default();
                Fields {
                    parallelism: d.parallelism,
                    batch_size: d.batch_size,
                    failure_tolerance: d.failure_tolerance,
                    pipelined: d.pipelined,
                    reason: d.reason,
                }
            }
        }
        let f: Fields = serde_json::from_value(serde_json::Value::Object(map))?;
        Ok(JobOptions {
            parallelism: f.parallelism,
            batch_size: f.batch_size,
            failure_tolerance: f.failure_tolerance,
            pipelined: f.pipelined,
            reason: f.reason,
        })
    }
}

/// An operator's intent: one command on one target of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The cluster name.
    pub cluster: String,
    /// What to act on.
    pub target: Target,
    /// `install`, `configure`, `start`, `stop`, `restart`, `status`, `check`, `remove`, `deploy`
    /// (install → configure → start → check), or a custom command the stack declares.
    pub command: String,
    /// Parallelism, batches, pipelining.
    #[serde(default)]
    pub options: JobOptions,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// The command asked for.
    pub command: String,
    /// The target asked for.
    pub target: Target,
    /// How it runs.
    pub options: JobOptions,
    /// Its state.
    pub state: JobState,
    /// When it was submitted.
    pub created_at: i64,
    /// When it first ran.
    pub started_at: Option<i64>,
    /// When it reached a final state.
    pub finished_at: Option<i64>,
}

/// A stage as stored: one command on one component of one service instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Its id.
    pub id: StageId,
    /// Its job.
    pub job: JobId,
    /// Its position in the job (0-based, a topological order).
    pub seq: u32,
    /// A readable name: `START zk/zookeeper_server`.
    pub name: String,
    /// The service instance.
    pub service: ServiceId,
    /// The component.
    pub component: String,
    /// The command its tasks run.
    pub command: String,
    /// The stages that must finish before it (DAG edges).
    pub after: Vec<StageId>,
    /// Its state.
    pub state: StageState,
}

/// A task as stored: one stage on one unit (so one host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Its job.
    pub job: JobId,
    /// Its stage.
    pub stage: StageId,
    /// Its unit.
    pub unit: UnitId,
    /// The unit's host.
    pub host: HostId,
    /// The current attempt, from 1; a retry adds one.
    pub attempt: u32,
    /// Its state.
    pub state: TaskState,
    /// The script's exit code, once finished.
    pub exit_code: Option<i32>,
    /// The pid of the script's process, while and after it runs.
    pub pid: Option<u32>,
    /// When the current attempt started running.
    pub started_at: Option<i64>,
    /// When the current attempt finished.
    pub finished_at: Option<i64>,
    /// Why it ended as it did, where there is more to say than the state.
    pub message: Option<String>,
}

impl Task {
    /// The id of the current attempt, as delivered to the agent.
    pub fn run_id(&self) -> RunId {
        RunId {
            task: self.id,
            attempt: self.attempt,
        }
    }
}

/// A planned job, persisted whole in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The cluster.
    pub cluster: ClusterId,
    /// The command asked for.
    pub command: String,
    /// The target asked for.
    pub target: Target,
    /// How it runs.
    pub options: JobOptions,
    /// The stages in a topological order.
    pub stages: Vec<NewStage>,
}

/// A planned stage; `after` holds indexes into [`NewJob::stages`], each smaller than its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStage {
    /// A readable name.
    pub name: String,
    /// The service instance.
    pub service: ServiceId,
    /// The component.
    pub component: String,
    /// The command.
    pub command: String,
    /// Indexes of the stages it waits for.
    pub after: Vec<usize>,
    /// Its tasks: one per unit, in host order.
    pub tasks: Vec<NewTask>,
}

/// A planned task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// The unit.
    pub unit: UnitId,
    /// The unit's host.
    pub host: HostId,
}

/// A job with its stages and tasks, as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    pub job: Job,
    /// Its stages, by `seq`.
    pub stages: Vec<Stage>,
    /// Its tasks, by id.
    pub tasks: Vec<Task>,
}

impl JobDetail {
    /// Each stage with its task count and its slowest task's run time, in stage order.
    pub fn stage_summaries(&self) -> impl Iterator<Item = StageSummary<'_>> {
        self.stages.iter().map(|stage| {
            let tasks = self.tasks.iter().filter(|t| t.stage == stage.id);
            let slowest_ms = tasks
                .clone()
                .filter_map(|t| Some(t.finished_at? - t.started_at?))
                .max()
                .unwrap_or(0);
            StageSummary {
                stage,
                tasks: tasks.count(),
                slowest_ms,
            }
        })
    }
}

/// One line of a job's summary: a stage, how many tasks it has and how long the slowest ran.
/// Displays as `START hello/hello_server   SUCCEEDED  3 task(s), slowest 12 ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSummary<'a> {
    /// The stage.
    pub stage: &'a Stage,
    /// How many tasks it has.
    pub tasks: usize,
    /// The longest a finished task ran, in ms (0 before any finished).
    pub slowest_ms: i64,
}

impl std::fmt::Display for StageSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<34} {:<10} {} task(s), slowest {} ms",
            self.stage.name,
            self.stage.state.to_string(),
            self.tasks,
            self.slowest_ms
        )
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One line a task's script wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The task.
    pub task: TaskId,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// The line's number within the attempt's output, from 0 (both streams share the count).
    pub seq: u64,
    /// Which stream.
    pub stream: LogStream,
    /// When it was read.
    pub at: i64,
    /// The text, without its newline.
    pub line: String,
}

/// How many jobs and tasks are in each state (for metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Jobs per state.
    pub jobs: Vec<(JobState, u64)>,
    /// Tasks per state.
    pub tasks: Vec<(TaskState, u64)>,
}

/// A task as seen from its host: the task with what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTask {
    /// The task.
    pub task: Task,
    /// Its job's command.
    pub command: String,
    /// Its stage's command (what the task ran: `install`, `start` …).
    pub stage_command: String,
    /// Its stage's service instance.
    pub service: ServiceId,
    /// Its stage's component.
    pub component: String,
}

/// Filters for listing jobs, which come in ascending id order (descending with
/// `newest_first`); `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this cluster's jobs.
    pub cluster: Option<ClusterId>,
    /// Only jobs in one of these states (empty: any).
    pub states: Vec<JobState>,
    /// Only jobs after this one in the list's order (for paging): ids above it, or below it
    /// with `newest_first`.
    pub after: Option<JobId>,
    /// At most this many.
    pub limit: Option<u32>,
    /// Newest first (descending ids), as operators read a job list.
    pub newest_first: bool,
}
