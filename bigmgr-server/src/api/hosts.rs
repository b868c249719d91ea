//! `/clusters/{cluster}/hosts`: hosts with their state, facts, metrics and units.

use super::error::{ApiResult, Json, Path};
use super::{AppState, PREFIX, created};
use axum::extract::State;
use axum::response::Response;
use bigmgr_core::Manager;
use bigmgr_core::model::{
    Cluster, Health, Host, HostFacts, HostId, HostMetrics, HostState, ServiceId, UnitId, UnitState,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The body of `POST /clusters/{cluster}/hosts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddHost {
    /// The host name, unique on the server; its agent must use the same `--name`.
    pub name: String,
    /// The address its services bind to.
    pub address: String,
}

/// A host as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    /// Its id.
    pub id: HostId,
    /// Its name.
    pub name: String,
    /// Its cluster's name.
    pub cluster: String,
    /// The address its services bind to.
    pub address: String,
    /// ONLINE or LOST.
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

/// A unit as seen from its host.
#[derive(Debug, Clone, Serialize)]
pub struct HostUnitView {
    /// Its id.
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

/// Views of `hosts` of `cluster`, each with its units.
async fn views(mgr: &Manager, cluster: &Cluster, hosts: Vec<Host>) -> ApiResult<Vec<HostView>> {
    let store = mgr.store();
    let services: HashMap<ServiceId, String> = store
        .list_services(cluster.id)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let mut units: HashMap<HostId, Vec<HostUnitView>> = HashMap::new();
    for u in store.list_units(cluster.id).await? {
        units.entry(u.host).or_default().push(HostUnitView {
            id: u.id,
            service: services.get(&u.service).cloned().unwrap_or_default(),
            component: u.component,
            state: u.state,
            health: u.health,
        });
    }
    Ok(hosts
        .into_iter()
        .map(|h| HostView {
            units: units.remove(&h.id).unwrap_or_default(),
            id: h.id,
            name: h.name,
            cluster: cluster.name.clone(),
            address: h.address,
            state: h.state,
            last_heartbeat: h.last_heartbeat,
            facts: h.facts,
            metrics: h.metrics,
        })
        .collect())
}

/// `GET /clusters/{cluster}/hosts`.
pub async fn list(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<HostView>>> {
    let c = s.mgr.cluster(&cluster).await?;
    let hosts = s.mgr.store().list_hosts(c.id).await?;
    Ok(Json(views(&s.mgr, &c, hosts).await?))
}

/// `GET /clusters/{cluster}/hosts/{host}`.
pub async fn get(
    State(s): State<AppState>,
    Path((cluster, host)): Path<(String, String)>,
) -> ApiResult<Json<HostView>> {
    let c = s.mgr.cluster(&cluster).await?;
    let h = s.mgr.host(&cluster, &host).await?;
    let view = views(&s.mgr, &c, vec![h]).await?.remove(0);
    Ok(Json(view))
}

/// `POST /clusters/{cluster}/hosts` → 201 with the host. An agent started later with the same
/// `--name` and a join token of the cluster claims it.
pub async fn add(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Json(body): Json<AddHost>,
) -> ApiResult<Response> {
    let c = s.mgr.cluster(&cluster).await?;
    let h = s.mgr.add_host(&cluster, &body.name, &body.address).await?;
    let location = format!("{PREFIX}/clusters/{cluster}/hosts/{}", h.name);
    let view = views(&s.mgr, &c, vec![h]).await?.remove(0);
    Ok(created(location, view))
}
