//! `/clusters/{cluster}/hosts`: hosts with their state, facts, metrics and units.

use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::schema;
use super::{AppState, PREFIX, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::Manager;
use bigmgr_core::model::{
    Cluster, Health, Host, HostFacts, HostId, HostMetrics, HostState, ServiceId, UnitId, UnitState,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// The body of `POST /clusters/{cluster}/hosts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddHost {
    /// The host name, unique on the server; its agent must use the same `--name`: 1-63
    /// letters, digits, `-`, `_` or `.`, starting with a letter or digit.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    pub name: String,
    /// The address its services bind to and other hosts reach it at: an IP address or a DNS
    /// host name (RFC 1123).
    #[schema(pattern = r"^[A-Za-z0-9.:-]{1,253}$")]
    pub address: String,
}

/// The body of `PATCH /clusters/{cluster}/hosts/{host}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHost {
    /// The new address: an IP address or a DNS host name. To accept the address the host's
    /// agent reported, give its `reported_address`.
    #[schema(pattern = r"^[A-Za-z0-9.:-]{1,253}$")]
    pub address: String,
}

/// A host as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: HostId,
    /// Its name.
    pub name: String,
    /// Its cluster's name.
    pub cluster: String,
    /// The address its services bind to and other hosts reach it at.
    pub address: String,
    /// An address its agent reported that differs from `address`: it takes effect only once
    /// an admin accepts it (`PATCH` the host with it).
    pub reported_address: Option<String>,
    /// WAITING (no agent has registered for it yet), ONLINE or LOST.
    #[schema(value_type = schema::HostStateSchema)]
    pub state: HostState,
    /// The last heartbeat (ms since the epoch), if any.
    pub last_heartbeat: Option<i64>,
    /// What its agent reported when it registered.
    #[schema(value_type = Option<schema::HostFactsSchema>)]
    pub facts: Option<HostFacts>,
    /// From its latest heartbeat.
    #[schema(value_type = Option<schema::HostMetricsSchema>)]
    pub metrics: Option<HostMetrics>,
    /// The units placed on it.
    pub units: Vec<HostUnitView>,
}

/// A unit as seen from its host.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostUnitView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: UnitId,
    /// Its service instance's name.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its state.
    #[schema(value_type = schema::UnitStateSchema)]
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    #[schema(value_type = Option<schema::HealthSchema>)]
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
            reported_address: h.reported_address,
            state: h.state,
            last_heartbeat: h.last_heartbeat,
            facts: h.facts,
            metrics: h.metrics,
        })
        .collect())
}

/// `GET /clusters/{cluster}/hosts` → the cluster's hosts, oldest first, a page at a time.
#[utoipa::path(get, path = "/clusters/{cluster}/hosts", tag = "hosts",
    params(("cluster" = String, Path, description = "The cluster's name"), PageQuery),
    responses(
        (status = 200, description = "A page of hosts", body = Page<HostView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<HostView>>> {
    let c = s.mgr.cluster(&cluster).await?;
    let mut hosts = s.mgr.store().list_hosts(c.id).await?;
    hosts.sort_by_key(|h| h.id);
    let page = q.page_by_id(hosts, |h| h.id.0)?;
    let items = views(&s.mgr, &c, page.items).await?;
    Ok(Json(Page {
        items,
        next: page.next,
    }))
}

/// `GET /clusters/{cluster}/hosts/{host}`.
#[utoipa::path(get, path = "/clusters/{cluster}/hosts/{host}", tag = "hosts",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("host" = String, Path, description = "The host's name"),
    ),
    responses(
        (status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such cluster or host"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Path((cluster, host)): Path<(String, String)>,
) -> ApiResult<Json<HostView>> {
    let c = s.mgr.cluster(&cluster).await?;
    let h = s.mgr.host(&cluster, &host).await?;
    let view = views(&s.mgr, &c, vec![h]).await?.remove(0);
    Ok(Json(view))
}

/// `PATCH /clusters/{cluster}/hosts/{host}` `{"address"}` → the host with its new address
/// (admin). Relations of its units tell their other sides, and started units whose files change
/// are reconfigured by automatic jobs.
#[utoipa::path(patch, path = "/clusters/{cluster}/hosts/{host}", tag = "hosts",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("host" = String, Path, description = "The host's name"),
    ),
    request_body = UpdateHost,
    responses(
        (status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such cluster or host"),
        (status = 422, description = "The address is not valid"),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Path((cluster, host)): Path<(String, String)>,
    Json(body): Json<UpdateHost>,
) -> ApiResult<Json<HostView>> {
    let c = s.mgr.cluster(&cluster).await?;
    let h = s
        .mgr
        .set_host_address(&cluster, &host, &body.address)
        .await?;
    let view = views(&s.mgr, &c, vec![h]).await?.remove(0);
    Ok(Json(view))
}

/// `DELETE /clusters/{cluster}/hosts/{host}` → 204. Refused (409) while a unit of a service
/// instance is placed on it. Its agent is refused from then on; its name can be used again.
#[utoipa::path(delete, path = "/clusters/{cluster}/hosts/{host}", tag = "hosts",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("host" = String, Path, description = "The host's name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such cluster or host"),
        (status = 409, description = "Units of service instances are placed on the host"),
    ))]
pub async fn remove(
    State(s): State<AppState>,
    Path((cluster, host)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.mgr.remove_host(&cluster, &host).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /clusters/{cluster}/hosts` → 201 with the host. An agent started later with the same
/// `--name` and a join token of the cluster claims it.
#[utoipa::path(post, path = "/clusters/{cluster}/hosts", tag = "hosts",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = AddHost,
    responses(
        (status = 201, description = "The new host", body = HostView,
            headers(("Location" = String, description = "The host's URL"))),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A host of that name exists"),
        (status = 422, description = "The name or address is not valid"),
    ))]
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
