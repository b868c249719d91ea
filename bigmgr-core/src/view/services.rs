//! Service instances with their units, units with their staleness, and the stacks that can be
//! deployed, as frontends show them (secret values redacted).

use crate::model::UnitState;
use crate::model::UnitStatus;
use crate::model::{Health, HostOverrides, ServiceConfigs, ServiceId, ServiceInstance, UnitId};
use crate::stack::{Category, ConfigType, ServiceDef, Stack};
use serde::{Deserialize, Serialize};

/// A service instance with its units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ServiceId,
    /// Its name in the cluster.
    pub name: String,
    /// The stack.
    pub stack: String,
    /// The stack version.
    pub stack_version: String,
    /// The service definition.
    pub service: String,
    /// When it was added (ms since the epoch).
    pub created_at: i64,
    /// Its desired config version.
    pub config_version: u32,
    /// Its config values over the stack's defaults (secrets read `********`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configs: ServiceConfigs,
    /// Its host overrides (secrets read `********`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub host_overrides: HostOverrides,
    /// Its units.
    pub units: Vec<ServiceUnitView>,
}

impl ServiceView {
    /// The view of `s` (its layers already redacted) with its units' statuses.
    pub fn of(s: ServiceInstance, units: Vec<UnitStatus>) -> ServiceView {
        ServiceView {
            units: units
                .into_iter()
                .map(|u| ServiceUnitView {
                    id: u.unit.id,
                    component: u.unit.component,
                    host: u.host,
                    state: u.unit.state,
                    health: u.unit.health,
                    applied_version: u.unit.applied_version,
                    stale: u.stale,
                    stale_reason: u.stale_reason,
                })
                .collect(),
            id: s.id,
            name: s.name,
            stack: s.stack,
            stack_version: s.stack_version,
            service: s.service,
            created_at: s.created_at,
            config_version: s.config_version,
            configs: s.configs,
            host_overrides: s.host_overrides,
        }
    }
}

/// A unit as seen from its service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceUnitView {
    /// Its id (a job's `{"units": [...]}` target names these).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: UnitId,
    /// Its component.
    pub component: String,
    /// Its host's name.
    pub host: String,
    /// Its state.
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    pub health: Option<Health>,
    /// The config version its last successful configure applied.
    pub applied_version: Option<u32>,
    /// Its files differ from what it should have: a restart is required.
    pub stale: bool,
    /// Why, when stale.
    pub stale_reason: Option<String>,
}

/// A unit with its staleness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitStatusView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: UnitId,
    /// Its service instance.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its host.
    pub host: String,
    /// Its state.
    pub state: UnitState,
    /// The config version its last successful configure applied.
    pub applied_version: Option<u32>,
    /// The service's desired config version.
    pub desired_version: u32,
    /// Its files differ from what it should have: a restart is required.
    pub stale: bool,
    /// Why, when stale.
    pub stale_reason: Option<String>,
}

impl From<UnitStatus> for UnitStatusView {
    fn from(s: UnitStatus) -> UnitStatusView {
        UnitStatusView {
            id: s.unit.id,
            service: s.service,
            component: s.unit.component,
            host: s.host,
            state: s.unit.state,
            applied_version: s.unit.applied_version,
            desired_version: s.desired_version,
            stale: s.stale,
            stale_reason: s.stale_reason,
        }
    }
}

/// A stack version as `GET /stacks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackView {
    /// The stack name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its services (empty if it failed to load).
    pub services: Vec<StackServiceView>,
    /// Why it failed to load, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StackView {
    /// The view of a loaded stack.
    pub fn of(stack: &Stack) -> StackView {
        StackView {
            name: stack.name.clone(),
            version: stack.version.clone(),
            services: stack
                .services
                .values()
                .map(|d| StackServiceView::of(d))
                .collect(),
            error: None,
        }
    }
}

/// A service definition of a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackServiceView {
    /// Its name, as `AddService.service` names it.
    pub name: String,
    /// The software version its scripts deploy.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Its components.
    pub components: Vec<StackComponentView>,
    /// Its config types, with their properties' schemas.
    pub configs: Vec<StackConfigView>,
}

impl StackServiceView {
    /// The view of a service definition.
    pub fn of(d: &ServiceDef) -> StackServiceView {
        StackServiceView {
            name: d.name.clone(),
            version: d.version.clone(),
            description: d.description.clone(),
            components: d
                .components
                .iter()
                .map(|c| StackComponentView {
                    name: c.name.clone(),
                    category: c.category,
                    cardinality: c.cardinality.to_string(),
                    commands: c.commands.keys().cloned().collect(),
                })
                .collect(),
            configs: d.configs.iter().map(StackConfigView::from).collect(),
        }
    }
}

/// A config type of a service definition: one rendered file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackConfigView {
    /// Its name (`zoo.cfg`).
    pub name: String,
    /// Where it is written, relative to the unit directory.
    pub path: String,
    /// Its properties.
    pub properties: Vec<StackPropertyView>,
}

/// One config property's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackPropertyView {
    /// Its name, as templates see it.
    pub name: String,
    /// `string`, `int`, `float`, `bool`, `port` or `address`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its default (never shown for secret properties).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub default: Option<serde_json::Value>,
    /// What it means.
    pub description: String,
    /// A value is needed.
    pub required: bool,
    /// Its value is a secret: never shown.
    pub secret: bool,
}

impl From<&ConfigType> for StackConfigView {
    fn from(c: &ConfigType) -> StackConfigView {
        StackConfigView {
            name: c.name.clone(),
            path: c.path.clone(),
            properties: c
                .properties
                .iter()
                .map(|p| StackPropertyView {
                    name: p.name.clone(),
                    kind: serde_json::to_value(p.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    default: if p.secret { None } else { p.default.clone() },
                    description: p.description.clone(),
                    required: p.required,
                    secret: p.secret,
                })
                .collect(),
        }
    }
}

/// A component of a service definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackComponentView {
    /// Its name, as a placement names it.
    pub name: String,
    /// `server` or `client`.
    pub category: Category,
    /// How many units it needs (`1`, `3`, `1+`, `0+`, `1-2`).
    pub cardinality: String,
    /// The commands it supports.
    pub commands: Vec<String>,
}

/// A unit a service instance would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedUnitView {
    /// Its component.
    pub component: String,
    /// Its host's name.
    pub host: String,
    /// Why core chose the host, for a placement by count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What adding a service instance would create, once every check of adding it passed; nothing
/// is written (`POST /clusters/{cluster}/services?dry_run=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceCheckView {
    /// The instance's name.
    pub name: String,
    /// The stack.
    pub stack: String,
    /// The stack version (the newest when none was asked for).
    pub stack_version: String,
    /// The service definition.
    pub service: String,
    /// Its units, component by component in the stack's order.
    pub units: Vec<PlannedUnitView>,
}
