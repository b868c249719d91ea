//! Hosts with their units, as frontends show them.

use crate::model::{Health, Host, HostFacts, HostId, HostMetrics, HostState, UnitId, UnitState};
use serde::{Deserialize, Serialize};

/// A host with its state, facts, metrics and units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: HostId,
    /// Its name.
    pub name: String,
    /// Its cluster's name.
    pub cluster: String,
    /// The address its services bind to and other hosts reach it at.
    pub address: String,
    /// An address its agent reported that differs from `address`: it takes effect only once
    /// an admin accepts it (`PATCH` the host with it).
    #[serde(default)]
    pub reported_address: Option<String>,
    /// WAITING (no agent has registered for it yet), ONLINE or LOST.
    pub state: HostState,
    /// The last heartbeat (ms since the epoch), if any.
    pub last_heartbeat: Option<i64>,
    /// What its agent reported when it registered.
    pub facts: Option<HostFacts>,
    /// From its latest heartbeat.
    pub metrics: Option<HostMetrics>,
    /// The units placed on it.
    pub units: Vec<HostUnitView>,
}

impl HostView {
    /// The view of `h`, of cluster `cluster`, with `units`.
    pub fn of(h: Host, cluster: &str, units: Vec<HostUnitView>) -> HostView {
        HostView {
            id: h.id,
            name: h.name,
            cluster: cluster.to_string(),
            address: h.address,
            reported_address: h.reported_address,
            state: h.state,
            last_heartbeat: h.last_heartbeat,
            facts: h.facts,
            metrics: h.metrics,
            units,
        }
    }
}

/// A unit as seen from its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostUnitView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: UnitId,
    /// Its service instance's name.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its state.
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    pub health: Option<Health>,
}
