//! Config versions, diffs, snapshots, relations and their events, as frontends show them
//! (services by name; a removed service as `#id`).

use crate::model::ConfigDiff;
use crate::model::{ConfigVersion, HostOverrides, JobId, RelationId};
use crate::model::{ServiceConfigs, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One config version of a service instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigVersionView {
    /// The service instance it belongs to.
    pub service: String,
    /// Its number, from 1.
    pub version: u32,
    /// Who made it.
    pub author: String,
    /// When (ms since the epoch).
    pub created_at: i64,
    /// Why.
    pub message: String,
    /// The service layer: config type → property → value (secrets read `********`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configs: ServiceConfigs,
    /// The host layer: host → config type → property → value.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub host_overrides: HostOverrides,
}

impl ConfigVersionView {
    /// The view of `v`, a version of service instance `service`.
    pub fn of(service: &str, v: ConfigVersion) -> ConfigVersionView {
        ConfigVersionView {
            service: service.to_string(),
            version: v.version,
            author: v.author,
            created_at: v.created_at,
            message: v.message,
            configs: v.configs,
            host_overrides: v.host_overrides,
        }
    }
}

/// One property that differs between two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigDiffView {
    /// The config type.
    pub config_type: String,
    /// The host, for a host override; null for the service layer.
    pub host: Option<String>,
    /// The property.
    pub property: String,
    /// Its value in `from` (null: not set).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub from: Option<serde_json::Value>,
    /// Its value in `to`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub to: Option<serde_json::Value>,
}

impl From<ConfigDiff> for ConfigDiffView {
    fn from(d: ConfigDiff) -> ConfigDiffView {
        ConfigDiffView {
            config_type: d.config_type,
            host: d.host,
            property: d.property,
            from: d.from,
            to: d.to,
        }
    }
}

/// A named set of config versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotView {
    /// Its name.
    pub name: String,
    /// Who took it.
    pub author: String,
    /// When.
    pub created_at: i64,
    /// Why.
    pub message: String,
    /// Service instance name → its config version then.
    pub versions: BTreeMap<String, u32>,
}

impl From<Snapshot> for SnapshotView {
    fn from(s: Snapshot) -> SnapshotView {
        SnapshotView {
            name: s.name,
            author: s.author,
            created_at: s.created_at,
            message: s.message,
            versions: s.entries.into_iter().map(|e| (e.name, e.version)).collect(),
        }
    }
}

/// A relation between two service instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelationView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: RelationId,
    /// The requiring service instance.
    pub requirer: String,
    /// Its endpoint.
    pub requirer_endpoint: String,
    /// The providing service instance.
    pub provider: String,
    /// Its endpoint.
    pub provider_endpoint: String,
    /// The interface they share.
    pub interface: String,
    /// Automatic reconfigure on changes.
    pub auto_reconfigure: bool,
    /// When it was made.
    pub created_at: i64,
}

/// An event on a relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelationEventView {
    /// When.
    pub at: i64,
    /// `joined`, `changed` or `broken`.
    pub kind: String,
    /// The service instance that received it.
    pub service: String,
    /// What changed.
    pub detail: String,
    /// The automatic reconfigure job it started.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub job: Option<JobId>,
}

/// One config file of a unit as it would be written now, secret values masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedFileView {
    /// Its path, relative to the unit directory.
    pub path: String,
    /// Its content.
    pub content: String,
}
