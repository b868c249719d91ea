//! Fixtures the unit tests share: a service definition, a host, a service instance and a unit
//! built with the defaults every test would write again.

use crate::model::*;
use crate::stack::{AlertDef, ComponentDef, ServiceDef};
use std::sync::Arc;

/// A service definition named `name` with these components and alerts, and nothing else.
pub(crate) fn service_def(
    name: &str,
    components: Vec<ComponentDef>,
    alerts: Vec<AlertDef>,
) -> Arc<ServiceDef> {
    Arc::new(ServiceDef {
        name: name.into(),
        version: "1".into(),
        description: String::new(),
        dir: "/".into(),
        components,
        configs: vec![],
        order: vec![],
        provides: vec![],
        requires: vec![],
        peers: vec![],
        ports: vec![],
        alerts,
        advice: vec![],
        software: vec![],
    })
}

/// Host `h<id>` of cluster 1 at 127.0.0.<id+1>, in `state`, last heard at 0.
pub(crate) fn host(id: i64, state: HostState) -> Host {
    Host {
        id: HostId(id),
        cluster: ClusterId(1),
        name: format!("h{id}"),
        address: format!("127.0.0.{}", id + 1),
        reported_address: None,
        state,
        last_heartbeat: Some(0),
        facts: None,
        metrics: None,
    }
}

/// Service instance `name` (of definition `def`) of cluster 1, at config version 1.
pub(crate) fn instance(id: i64, name: &str, def: &str) -> ServiceInstance {
    ServiceInstance {
        id: ServiceId(id),
        cluster: ClusterId(1),
        name: name.into(),
        stack: "s".into(),
        stack_version: "1".into(),
        service: def.into(),
        created_at: 0,
        configs: Default::default(),
        host_overrides: Default::default(),
        config_version: 1,
    }
}

/// A STARTED unit, healthy or not, at config version 1.
pub(crate) fn started_unit(
    id: i64,
    service: i64,
    component: &str,
    host: i64,
    healthy: bool,
) -> Unit {
    Unit {
        id: UnitId(id),
        service: ServiceId(service),
        component: component.into(),
        host: HostId(host),
        state: UnitState::Started,
        health: Some(Health {
            healthy,
            message: if healthy { "running" } else { "not running" }.into(),
            checked_at: 0,
        }),
        applied_version: Some(1),
        applied_hash: None,
    }
}
