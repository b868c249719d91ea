//! `/stacks` and `/clusters/{cluster}/services`: what can be deployed, and the service
//! instances of a cluster with their units.

use super::error::{ApiResult, Json, Path};
use super::{AppState, PREFIX, created};
use axum::extract::State;
use axum::response::Response;
use bigmgr_core::Manager;
use bigmgr_core::manager::AddService;
use bigmgr_core::model::{Cluster, Health, HostId, ServiceId, ServiceInstance, UnitId, UnitState};
use bigmgr_core::stack::Category;
use serde::Serialize;
use std::collections::HashMap;

/// A stack version as `GET /stacks` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StackView {
    /// The stack name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its services (empty if it failed to load).
    pub services: Vec<StackServiceView>,
    /// Why it failed to load, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A service definition of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackServiceView {
    /// Its name, as `AddService.service` names it.
    pub name: String,
    /// The software version its scripts deploy.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Its components.
    pub components: Vec<StackComponentView>,
}

/// A component of a service definition.
#[derive(Debug, Clone, Serialize)]
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

/// A service instance with its units.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Its id.
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
    /// Its units.
    pub units: Vec<ServiceUnitView>,
}

/// A unit as seen from its service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceUnitView {
    /// Its id (a job's `{"units": [...]}` target names these).
    pub id: UnitId,
    /// Its component.
    pub component: String,
    /// Its host's name.
    pub host: String,
    /// Its state.
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    pub health: Option<Health>,
}

/// `GET /stacks` → every stack version with its services; a stack that fails to load is listed
/// with its error rather than failing the whole list.
pub async fn stacks(State(s): State<AppState>) -> ApiResult<Json<Vec<StackView>>> {
    let mut out = Vec::new();
    for r in s.mgr.list_stacks().await? {
        let (services, error) = match s.mgr.stacks().stack(&r.name, Some(&r.version)).await {
            Ok(stack) => (
                stack
                    .services
                    .values()
                    .map(|d| StackServiceView {
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
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        out.push(StackView {
            name: r.name,
            version: r.version,
            services,
            error,
        });
    }
    Ok(Json(out))
}

/// Views of `services` of `cluster`, each with its units.
async fn views(
    mgr: &Manager,
    cluster: &Cluster,
    services: Vec<ServiceInstance>,
) -> ApiResult<Vec<ServiceView>> {
    let store = mgr.store();
    let hosts: HashMap<HostId, String> = store
        .list_hosts(cluster.id)
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    let mut units: HashMap<ServiceId, Vec<ServiceUnitView>> = HashMap::new();
    for u in store.list_units(cluster.id).await? {
        units.entry(u.service).or_default().push(ServiceUnitView {
            id: u.id,
            component: u.component,
            host: hosts.get(&u.host).cloned().unwrap_or_default(),
            state: u.state,
            health: u.health,
        });
    }
    Ok(services
        .into_iter()
        .map(|s| ServiceView {
            units: units.remove(&s.id).unwrap_or_default(),
            id: s.id,
            name: s.name,
            stack: s.stack,
            stack_version: s.stack_version,
            service: s.service,
            created_at: s.created_at,
        })
        .collect())
}

/// `GET /clusters/{cluster}/services`.
pub async fn list(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let c = s.mgr.cluster(&cluster).await?;
    let services = s.mgr.store().list_services(c.id).await?;
    Ok(Json(views(&s.mgr, &c, services).await?))
}

/// `GET /clusters/{cluster}/services/{service}`.
pub async fn get(
    State(s): State<AppState>,
    Path((cluster, service)): Path<(String, String)>,
) -> ApiResult<Json<ServiceView>> {
    let c = s.mgr.cluster(&cluster).await?;
    let inst = s
        .mgr
        .store()
        .service_by_name(c.id, &service)
        .await?
        .ok_or_else(|| {
            bigmgr_core::Error::not_found("service", format!("{service} (in cluster {cluster})"))
        })?;
    Ok(Json(views(&s.mgr, &c, vec![inst]).await?.remove(0)))
}

/// `POST /clusters/{cluster}/services` (body: `AddService`) → 201 with the service and its
/// units.
pub async fn add(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Json(body): Json<AddService>,
) -> ApiResult<Response> {
    let c = s.mgr.cluster(&cluster).await?;
    let (inst, _) = s.mgr.add_service(&cluster, body).await?;
    let location = format!("{PREFIX}/clusters/{cluster}/services/{}", inst.name);
    Ok(created(
        location,
        views(&s.mgr, &c, vec![inst]).await?.remove(0),
    ))
}
