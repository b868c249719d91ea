//! OpenAPI schemas of the core types the API shows or reads as they are (states, facts,
//! metrics, health, targets, job options, `AddService`).
//!
//! `bigmgr-core` knows nothing of OpenAPI, so each type here mirrors one of core's, with the
//! same serde shape; the views name them with `#[schema(value_type = ...)]`. The tests in
//! `api::docs` serialize core values and check them against these schemas' shapes, and
//! schemathesis checks every answer against the document.

#![allow(dead_code)] // Mirrors only exist for their schemas; nothing builds them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Whether a host's agent is reachable (core's `HostState`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = HostState)]
pub enum HostStateSchema {
    /// Added by an operator; no agent has registered for it yet.
    Waiting,
    /// Connected and heartbeating.
    Online,
    /// No heartbeat for three intervals.
    Lost,
}

/// The state of a unit (core's `UnitState`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = UnitState)]
pub enum UnitStateSchema {
    /// Placed, nothing run yet.
    New,
    /// Installed and not running.
    Installed,
    /// Running.
    Started,
    /// Stopped after running.
    Stopped,
    /// The last command on it failed.
    Failed,
    /// Removed from its host.
    Removed,
}

/// The state of a job (core's `JobState`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = JobState)]
pub enum JobStateSchema {
    /// Waiting for its cluster's earlier jobs.
    Queued,
    /// Dispatching tasks.
    Running,
    /// No new dispatch; running tasks finish.
    Paused,
    /// Cancel asked; waiting for running tasks to stop.
    Canceling,
    /// Every stage succeeded.
    Succeeded,
    /// A stage failed.
    Failed,
    /// Cancelled by an operator.
    Canceled,
}

/// The state of a stage (core's `StageState`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = StageState)]
pub enum StageStateSchema {
    /// Not started.
    Pending,
    /// Some task dispatched.
    Running,
    /// Every task succeeded (or failures within the tolerance).
    Succeeded,
    /// More tasks failed than the tolerance allows.
    Failed,
    /// An upstream stage failed, or the job was cancelled.
    Canceled,
}

/// The state of a task (core's `TaskState`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = TaskState)]
pub enum TaskStateSchema {
    /// Not dispatched yet.
    Pending,
    /// Sent to its agent, not yet started.
    Queued,
    /// Its script runs.
    Running,
    /// Exit 0.
    Succeeded,
    /// Non-zero exit, or the script could not run.
    Failed,
    /// Ran past its timeout and was killed.
    TimedOut,
    /// Never ran, or was stopped, because of a cancel or an upstream failure.
    Canceled,
}

/// Which stream a log line came from (core's `LogStream`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = LogStream)]
pub enum LogStreamSchema {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Server components run daemons; client components only install files (core's `Category`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Category)]
pub enum CategorySchema {
    /// A daemon: start, stop, status apply.
    Server,
    /// Libraries and configs only.
    Client,
}

/// A host's facts, reported when its agent registers (core's `HostFacts`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HostFacts)]
pub struct HostFactsSchema {
    /// The operating system.
    pub os: String,
    /// Its version.
    pub os_version: String,
    /// The kernel version.
    pub kernel: String,
    /// The CPU architecture.
    pub arch: String,
    /// Logical CPUs.
    pub cores: u32,
    /// Physical memory, bytes.
    pub memory_bytes: u64,
    /// Size of the filesystem holding the agent's root, bytes.
    pub disk_total_bytes: u64,
    /// Free space on it, bytes.
    pub disk_free_bytes: u64,
}

/// A host's metrics from its latest heartbeat (core's `HostMetrics`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HostMetrics)]
pub struct HostMetricsSchema {
    /// When the agent took them (ms since the epoch).
    pub at: i64,
    /// CPU use over the interval, percent of all cores.
    pub cpu_percent: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Physical memory, bytes.
    pub memory_total_bytes: u64,
    /// Size of the filesystem holding the agent's root, bytes.
    pub disk_total_bytes: u64,
    /// Free space on it, bytes.
    pub disk_free_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes.
    #[schema(min_items = 3, max_items = 3)]
    pub load: Vec<f64>,
}

/// A unit's health from the last run of its `status` command (core's `Health`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Health)]
pub struct HealthSchema {
    /// `status` exited 0.
    pub healthy: bool,
    /// The last line `status` wrote, or why it could not run.
    pub message: String,
    /// When it ran (ms since the epoch).
    pub checked_at: i64,
}

/// One component of one service instance, as a job's target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ComponentTarget)]
pub struct ComponentTargetSchema {
    /// The service instance name.
    pub service: String,
    /// The component name.
    pub component: String,
}

/// What a job acts on (core's `Target`): `"cluster"`, `{"service": "zk"}`,
/// `{"component": {"service", "component"}}`, `{"hosts": [..]}` or `{"units": [..]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Target)]
pub enum TargetSchema {
    /// Every service instance of the cluster.
    Cluster,
    /// One service instance, by name.
    Service(String),
    /// One component of one service instance.
    Component(ComponentTargetSchema),
    /// Every unit on these hosts, by host name.
    Hosts(Vec<String>),
    /// These units, by id.
    Units(Vec<i64>),
}

/// How a job runs (core's `JobOptions`); every field may be left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = JobOptions)]
pub struct JobOptionsSchema {
    /// At most this many tasks of the job run at once; null is no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub parallelism: Option<u32>,
    /// Run each stage's tasks in batches of this size (rolling).
    #[schema(minimum = 1, maximum = 1000000)]
    pub batch_size: Option<u32>,
    /// How many failed tasks a stage tolerates and still succeeds.
    #[schema(minimum = 0, maximum = 1000000)]
    pub failure_tolerance: u32,
    /// Start a host's task of a stage as soon as that host's earlier tasks succeeded.
    pub pipelined: bool,
}

/// The body of `POST /clusters/{cluster}/services` (core's `AddService`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddService)]
pub struct AddServiceSchema {
    /// Its name in the cluster (`zk`): 1-63 letters, digits, `-`, `_` or `.`, starting with a
    /// letter or digit.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    pub name: String,
    /// The stack (`bigtop`).
    pub stack: String,
    /// The stack version; null or left out takes the newest.
    #[serde(default)]
    pub version: Option<String>,
    /// The service definition (`zookeeper`).
    pub service: String,
    /// Host names per component; a component left out gets no units.
    pub placement: BTreeMap<String, Vec<String>>,
    /// Config values over the stack's defaults: config type (`zoo.cfg`) → property → value of
    /// the property's type (see `GET /stacks`).
    #[serde(default)]
    pub configs: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Host overrides: host name → config type → property → value; they win over
    /// `configs` on that host.
    #[serde(default)]
    pub host_overrides: BTreeMap<String, BTreeMap<String, BTreeMap<String, serde_json::Value>>>,
}
