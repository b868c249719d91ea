//! The plain data both backends answer with: shaped like the REST API's JSON views, so the
//! client deserialises them as they come, and the embedded engine fills them from core types.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// When it was created (ms since the epoch).
    #[serde(default)]
    pub created_at: i64,
}

/// A host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Its name.
    pub name: String,
    /// The address its services bind to.
    pub address: String,
    /// An address its agent reported that an admin has not accepted yet.
    #[serde(default)]
    pub reported_address: Option<String>,
    /// `WAITING` (no agent registered for it yet), `ONLINE` or `LOST`.
    pub state: String,
    /// Its last heartbeat (ms since the epoch).
    #[serde(default)]
    pub last_heartbeat: Option<i64>,
}

/// A unit: one component of a service on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    /// Its id.
    pub id: i64,
    /// Its service instance's name.
    #[serde(default)]
    pub service: String,
    /// The component.
    pub component: String,
    /// The host's name.
    pub host: String,
    /// `NEW`, `INSTALLED`, `STARTED`, `STOPPED`, `FAILED`, `REMOVED`.
    pub state: String,
    /// The config version its last configure applied.
    #[serde(default)]
    pub applied_version: Option<u32>,
    /// Its files differ from what they should be.
    #[serde(default)]
    pub stale: bool,
    /// Why, when stale.
    #[serde(default)]
    pub stale_reason: Option<String>,
}

/// A service instance with its units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Its id.
    pub id: i64,
    /// Its name in the cluster.
    pub name: String,
    /// The stack.
    pub stack: String,
    /// The stack version.
    pub stack_version: String,
    /// The service definition.
    pub service: String,
    /// The desired config version.
    #[serde(default)]
    pub config_version: u32,
    /// The service layer of its configs (secrets read `********`).
    #[serde(default)]
    pub configs: Value,
    /// Its host overrides (secrets read `********`).
    #[serde(default)]
    pub host_overrides: Value,
    /// Its units.
    #[serde(default)]
    pub units: Vec<UnitInfo>,
}

/// One task of a stage: one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Its id.
    pub id: i64,
    /// The host it runs on.
    pub host: String,
    /// `PENDING`, `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `CANCELED` …
    pub state: String,
    /// The current attempt, from 1.
    #[serde(default)]
    pub attempt: u32,
    /// The script's exit code, once finished.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it ended as it did.
    #[serde(default)]
    pub message: Option<String>,
}

/// A stage: one command on one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    /// Its id.
    pub id: i64,
    /// `START zk/zookeeper_server`.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Its tasks.
    #[serde(default)]
    pub tasks: Vec<TaskInfo>,
}

/// A job, with its stages when asked for one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Its id.
    pub id: i64,
    /// Its cluster's name.
    pub cluster: String,
    /// The command.
    pub command: String,
    /// `QUEUED`, `RUNNING`, `PAUSED`, `CANCELING`, `SUCCEEDED`, `FAILED`, `CANCELED`.
    pub state: String,
    /// When it was submitted.
    #[serde(default)]
    pub created_at: i64,
    /// When it first ran.
    #[serde(default)]
    pub started_at: Option<i64>,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<i64>,
    /// Its stages in a topological order (empty in lists).
    #[serde(default)]
    pub stages: Vec<StageInfo>,
}

impl JobInfo {
    /// True once it reached a final state.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELED")
    }
}

/// One line a task's script wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLineInfo {
    /// The attempt.
    pub attempt: u32,
    /// Its sequence number within the attempt.
    pub seq: u64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When (ms since the epoch).
    pub at: i64,
    /// The text.
    pub line: String,
}

/// One config version of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersionInfo {
    /// The service instance.
    #[serde(default)]
    pub service: String,
    /// Its number.
    pub version: u32,
    /// Who made it.
    pub author: String,
    /// When.
    pub created_at: i64,
    /// Why.
    pub message: String,
    /// The service layer.
    #[serde(default)]
    pub configs: Value,
    /// The host layer.
    #[serde(default)]
    pub host_overrides: Value,
}

/// A relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationInfo {
    /// Its id.
    pub id: i64,
    /// The requiring service.
    pub requirer: String,
    /// Its endpoint.
    pub requirer_endpoint: String,
    /// The providing service.
    pub provider: String,
    /// Its endpoint.
    pub provider_endpoint: String,
    /// The shared interface.
    pub interface: String,
    /// Automatic reconfigure on changes.
    pub auto_reconfigure: bool,
}

/// A stack version and its services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackInfo {
    /// The stack's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its services' names.
    pub services: Vec<String>,
}

/// One property that differs between two config versions of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDiffInfo {
    /// The config type.
    pub config_type: String,
    /// The host, for a host override; `None` for the service layer.
    #[serde(default)]
    pub host: Option<String>,
    /// The property.
    pub property: String,
    /// Its value in the earlier version (`None`: not set there).
    #[serde(default)]
    pub from: Option<Value>,
    /// Its value in the later version (`None`: not set there).
    #[serde(default)]
    pub to: Option<Value>,
}

/// A named set of config versions across a cluster's services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Its name, unique in the cluster.
    pub name: String,
    /// Who took it.
    pub author: String,
    /// When (ms since the epoch).
    pub created_at: i64,
    /// Why.
    #[serde(default)]
    pub message: String,
    /// Service instance name → its config version then.
    #[serde(default)]
    pub versions: BTreeMap<String, u32>,
}

/// An event on a relation: `joined`, `changed` or `broken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationEventInfo {
    /// When (ms since the epoch).
    pub at: i64,
    /// `joined`, `changed` or `broken`.
    pub kind: String,
    /// The service instance that received it.
    pub service: String,
    /// What changed.
    #[serde(default)]
    pub detail: String,
    /// The automatic reconfigure job it started, if any.
    #[serde(default)]
    pub job: Option<i64>,
}
