//! Versioned configs, snapshots and relations as stored.

use super::{
    ClusterId, JobId, RelationEventId, RelationId, ServiceConfigs, ServiceId, SnapshotId, Unit,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The host layer of a service's configs: host name → config type → property → value. A host's
/// values win over the service's, which win over the stack's defaults.
pub type HostOverrides = BTreeMap<String, ServiceConfigs>;

/// One immutable version of a service instance's configs (service layer and host layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// The service instance.
    pub service: ServiceId,
    /// Its number, from 1, one more per change.
    pub version: u32,
    /// Who made the change.
    pub author: String,
    /// When (milliseconds since the epoch).
    pub created_at: i64,
    /// Why, in the author's words.
    pub message: String,
    /// The service layer.
    pub configs: ServiceConfigs,
    /// The host layer.
    pub host_overrides: HostOverrides,
}

/// What a new config version holds; the store numbers and stamps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewConfigVersion {
    /// Who makes the change.
    pub author: String,
    /// Why.
    pub message: String,
    /// The service layer.
    pub configs: ServiceConfigs,
    /// The host layer.
    pub host_overrides: HostOverrides,
}

/// One service's version within a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// The service instance.
    pub service: ServiceId,
    /// Its name when the snapshot was taken.
    pub name: String,
    /// Its config version then.
    pub version: u32,
}

/// A named set of config versions across a cluster's services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its id.
    pub id: SnapshotId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name, unique in the cluster.
    pub name: String,
    /// Who took it.
    pub author: String,
    /// When.
    pub created_at: i64,
    /// Why.
    pub message: String,
    /// Each service's version, by service id ascending.
    pub entries: Vec<SnapshotEntry>,
}

/// What a new snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name, unique in the cluster.
    pub name: String,
    /// Who takes it.
    pub author: String,
    /// Why.
    pub message: String,
    /// Each service's version.
    pub entries: Vec<SnapshotEntry>,
}

/// A relation: a requirer endpoint of one service instance joined to a provider endpoint of
/// another, sharing an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    /// Its id.
    pub id: RelationId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// The requiring service instance.
    pub requirer: ServiceId,
    /// Its `[[requires]]` endpoint.
    pub requirer_endpoint: String,
    /// The providing service instance.
    pub provider: ServiceId,
    /// Its `[[provides]]` endpoint.
    pub provider_endpoint: String,
    /// The interface both endpoints declare.
    pub interface: String,
    /// Reconfigure the other side's stale units by an automatic job when units change.
    pub auto_reconfigure: bool,
    /// When it was made.
    pub created_at: i64,
}

/// What a new relation holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelation {
    /// Its cluster.
    pub cluster: ClusterId,
    /// The requiring service instance.
    pub requirer: ServiceId,
    /// Its endpoint.
    pub requirer_endpoint: String,
    /// The providing service instance.
    pub provider: ServiceId,
    /// Its endpoint.
    pub provider_endpoint: String,
    /// The shared interface.
    pub interface: String,
    /// See [`Relation::auto_reconfigure`].
    pub auto_reconfigure: bool,
}

/// What happened on a relation, from one side's point of view (Juju's hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationEventKind {
    /// The relation was made, or a unit appeared on the other side.
    Joined,
    /// A unit on the other side changed (moved, new address, new exported values).
    Changed,
    /// A unit on the other side went away, or the relation was removed.
    Broken,
}

impl RelationEventKind {
    /// Its name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RelationEventKind::Joined => "joined",
            RelationEventKind::Changed => "changed",
            RelationEventKind::Broken => "broken",
        }
    }
}

impl std::str::FromStr for RelationEventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "joined" => Ok(RelationEventKind::Joined),
            "changed" => Ok(RelationEventKind::Changed),
            "broken" => Ok(RelationEventKind::Broken),
            _ => Err(format!("unknown relation event kind '{s}'")),
        }
    }
}

/// A relation event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationEvent {
    /// Its id (ascending in the order events were added).
    pub id: RelationEventId,
    /// The relation.
    pub relation: RelationId,
    /// When.
    pub at: i64,
    /// What happened.
    pub kind: RelationEventKind,
    /// The service instance that received it (whose configs re-render).
    pub service: ServiceId,
    /// What changed, for operators (`node_exporter/h4 at 127.0.0.5`).
    pub detail: String,
    /// The automatic reconfigure job it started, if any.
    pub job: Option<JobId>,
}

/// What a new relation event holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelationEvent {
    /// The relation.
    pub relation: RelationId,
    /// What happened.
    pub kind: RelationEventKind,
    /// The receiving service instance.
    pub service: ServiceId,
    /// What changed.
    pub detail: String,
    /// The reconfigure job, if one was started.
    pub job: Option<JobId>,
}

/// One property that differs between two config versions. Secret values read as `********`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDiff {
    /// The config type.
    pub config_type: String,
    /// The host, for a host-layer value; `None` for the service layer.
    pub host: Option<String>,
    /// The property.
    pub property: String,
    /// Its value in the first version (`None`: not set there).
    pub from: Option<Value>,
    /// Its value in the second version.
    pub to: Option<Value>,
}

/// A unit with where it is and whether its configs are current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    /// The unit.
    pub unit: Unit,
    /// Its service instance's name.
    pub service: String,
    /// Its host's name.
    pub host: String,
    /// The service's desired config version.
    pub desired_version: u32,
    /// Its files differ from what it should have.
    pub stale: bool,
    /// Why, when stale ("restart required: …").
    pub stale_reason: Option<String>,
}
