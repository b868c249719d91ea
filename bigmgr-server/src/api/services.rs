//! `/stacks` and `/clusters/{cluster}/services`: what can be deployed, and the service
//! instances of a cluster with their units.

use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::schema;
use super::{AppState, PREFIX, created};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::Manager;
use bigmgr_core::auth::Actor;
use bigmgr_core::manager::AddService;
use bigmgr_core::model::{Cluster, Health, ServiceId, ServiceInstance, UnitId, UnitState};
use bigmgr_core::stack::Category;
use serde::Serialize;
use utoipa::ToSchema;

/// A stack version as `GET /stacks` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// A config type of a service definition: one rendered file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StackConfigView {
    /// Its name (`zoo.cfg`).
    pub name: String,
    /// Where it is written, relative to the unit directory.
    pub path: String,
    /// Its properties.
    pub properties: Vec<StackPropertyView>,
}

/// One config property's schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StackPropertyView {
    /// Its name, as templates see it.
    pub name: String,
    /// `string`, `int`, `float`, `bool` or `port`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its default (never shown for secret properties).
    #[schema(value_type = Option<serde_json::Value>)]
    pub default: Option<serde_json::Value>,
    /// What it means.
    pub description: String,
    /// A value is needed.
    pub required: bool,
    /// Its value is a secret: never shown.
    pub secret: bool,
}

impl From<&bigmgr_core::stack::ConfigType> for StackConfigView {
    fn from(c: &bigmgr_core::stack::ConfigType) -> StackConfigView {
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StackComponentView {
    /// Its name, as a placement names it.
    pub name: String,
    /// `server` or `client`.
    #[schema(value_type = schema::CategorySchema)]
    pub category: Category,
    /// How many units it needs (`1`, `3`, `1+`, `0+`, `1-2`).
    pub cardinality: String,
    /// The commands it supports.
    pub commands: Vec<String>,
}

/// A service instance with its units.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceView {
    /// Its id.
    #[schema(value_type = i64)]
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
    #[schema(value_type = Object)]
    pub configs: bigmgr_core::model::ServiceConfigs,
    /// Its host overrides (secrets read `********`).
    #[schema(value_type = Object)]
    pub host_overrides: bigmgr_core::model::HostOverrides,
    /// Its units.
    pub units: Vec<ServiceUnitView>,
}

/// A unit as seen from its service.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceUnitView {
    /// Its id (a job's `{"units": [...]}` target names these).
    #[schema(value_type = i64)]
    pub id: UnitId,
    /// Its component.
    pub component: String,
    /// Its host's name.
    pub host: String,
    /// Its state.
    #[schema(value_type = schema::UnitStateSchema)]
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    #[schema(value_type = Option<schema::HealthSchema>)]
    pub health: Option<Health>,
    /// The config version its last successful configure applied.
    pub applied_version: Option<u32>,
    /// Its files differ from what it should have: a restart is required.
    pub stale: bool,
    /// Why, when stale.
    pub stale_reason: Option<String>,
}

/// `GET /stacks` → every stack version with its services, by name then version, a page at a
/// time (the cursor is `name/version`); a stack that fails to load is listed with its error
/// rather than failing the whole list.
#[utoipa::path(get, path = "/stacks", tag = "stacks",
    params(super::page::KeyPageQuery),
    responses((status = 200, description = "A page of stack versions", body = Page<StackView>)))]
pub async fn stacks(
    State(s): State<AppState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<StackView>>> {
    let mut refs = s.mgr.list_stacks().await?;
    refs.sort_by_key(|r| format!("{}/{}", r.name, r.version));
    let page = q.page_by_key(refs, |r| format!("{}/{}", r.name, r.version))?;
    let mut out = Vec::new();
    for r in page.items {
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
                        configs: d.configs.iter().map(StackConfigView::from).collect(),
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
    Ok(Json(Page {
        items: out,
        next: page.next,
    }))
}

/// Views of `services` of `cluster`, each with its units.
async fn views(
    mgr: &Manager,
    cluster: &Cluster,
    services: Vec<ServiceInstance>,
) -> ApiResult<Vec<ServiceView>> {
    let statuses = mgr.service_statuses(&cluster.name, services).await?;
    let out = statuses
        .into_iter()
        .map(|st| {
            let s = st.instance;
            ServiceView {
                units: st
                    .units
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
        })
        .collect();
    Ok(out)
}

/// `GET /clusters/{cluster}/services` → the cluster's service instances, oldest first, a page
/// at a time.
#[utoipa::path(get, path = "/clusters/{cluster}/services", tag = "services",
    params(("cluster" = String, Path, description = "The cluster's name"), PageQuery),
    responses(
        (status = 200, description = "A page of service instances", body = Page<ServiceView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ServiceView>>> {
    let c = s.mgr.cluster(&cluster).await?;
    let mut services = s.mgr.store().list_services(c.id).await?;
    services.sort_by_key(|s| s.id);
    let page = q.page_by_id(services, |s| s.id.0)?;
    let items = views(&s.mgr, &c, page.items).await?;
    Ok(Json(Page {
        items,
        next: page.next,
    }))
}

/// `GET /clusters/{cluster}/services/{service}`.
#[utoipa::path(get, path = "/clusters/{cluster}/services/{service}", tag = "services",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    responses(
        (status = 200, description = "The service instance", body = ServiceView),
        (status = 404, description = "No such cluster or service instance"),
    ))]
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

/// `DELETE /clusters/{cluster}/services/{service}` → 204. Refused (409) while a unit of it is
/// STARTED or a job that touches it is unfinished. Its name can be used again.
#[utoipa::path(delete, path = "/clusters/{cluster}/services/{service}", tag = "services",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "A unit of it is STARTED, or a job that touches it is unfinished"),
    ))]
pub async fn remove(
    State(s): State<AppState>,
    Path((cluster, service)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.mgr.remove_service(&cluster, &service).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /clusters/{cluster}/services` (body: `AddService`) → 201 with the service and its
/// units.
#[utoipa::path(post, path = "/clusters/{cluster}/services", tag = "services",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = schema::AddServiceSchema,
    responses(
        (status = 201, description = "The new service instance with its units", body = ServiceView,
            headers(("Location" = String, description = "The service instance's URL"))),
        (status = 404, description = "No such cluster, stack, service definition or host"),
        (status = 409, description = "A service instance of that name exists"),
        (status = 422, description = "The placement breaks a rule (cardinality, unknown component, client/server)"),
    ))]
pub async fn add(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(cluster): Path<String>,
    Json(body): Json<AddService>,
) -> ApiResult<Response> {
    let c = s.mgr.cluster(&cluster).await?;
    let (inst, _) = s.mgr.add_service_by(&cluster, body, &actor.name).await?;
    let location = format!("{PREFIX}/clusters/{cluster}/services/{}", inst.name);
    Ok(created(
        location,
        views(&s.mgr, &c, vec![inst]).await?.remove(0),
    ))
}
