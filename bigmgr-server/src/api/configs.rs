//! Config versions, snapshots, stale units, units and relations of a cluster: thin handlers
//! over core's [`Manager`] (secrets arrive here already redacted).

use super::error::{ApiResult, Json, Path, Query};
use super::jobs::{JobView, view as job_view};
use super::schema;
use super::{AppState, PREFIX, created};
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bigmgr_core::auth::Actor;
use bigmgr_core::manager::{ConfigChange, ConfigDiff, Relate, UnitStatus};
use bigmgr_core::model::{
    ConfigVersion, JobOptions, Relation, RelationEvent, RelationId, Snapshot, UnitId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

type Layer = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// One config version of a service instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    #[schema(value_type = Object)]
    pub configs: Layer,
    /// The host layer: host → config type → property → value.
    #[schema(value_type = Object)]
    pub host_overrides: BTreeMap<String, Layer>,
}

impl ConfigVersionView {
    /// The view of `v`, a version of service instance `service`.
    fn of(service: &str, v: ConfigVersion) -> ConfigVersionView {
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

/// The body of `PATCH …/configs`: a JSON merge patch over the current version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConfigChange)]
pub struct ConfigChangeSchema {
    /// Service layer: config type → property → value, or null to remove it (back to the
    /// default).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub configs: Layer,
    /// Host layer: host name → config type → property → value or null.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub hosts: BTreeMap<String, Layer>,
    /// Why (kept with the version).
    #[serde(default)]
    pub message: String,
}

/// One property that differs between two versions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigDiffView {
    /// The config type.
    pub config_type: String,
    /// The host, for a host override; null for the service layer.
    pub host: Option<String>,
    /// The property.
    pub property: String,
    /// Its value in `from` (null: not set).
    #[schema(value_type = Option<serde_json::Value>)]
    pub from: Option<serde_json::Value>,
    /// Its value in `to`.
    #[schema(value_type = Option<serde_json::Value>)]
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

/// The query of `GET …/configs/diff`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The earlier version.
    #[param(minimum = 1)]
    pub from: u32,
    /// The later version.
    #[param(minimum = 1)]
    pub to: u32,
}

/// The body of `POST …/configs/rollback`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to go back to.
    #[schema(minimum = 1)]
    pub to: u32,
    /// Why; default "rollback to version N".
    #[serde(default)]
    pub message: Option<String>,
}

/// The body of `POST /clusters/{cluster}/restart-stale`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartStaleBody {
    /// Only this service instance's units; all services if left out.
    #[serde(default)]
    pub service: Option<String>,
    /// How the jobs run; default one unit at a time (rolling).
    #[serde(default)]
    #[schema(value_type = Option<schema::JobOptionsSchema>)]
    pub options: Option<JobOptions>,
}

/// A unit with its staleness.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitStatusView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: UnitId,
    /// Its service instance.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its host.
    pub host: String,
    /// Its state.
    #[schema(value_type = schema::UnitStateSchema)]
    pub state: bigmgr_core::model::UnitState,
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

/// The body of `POST …/services/{service}/units`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUnitsBody {
    /// The component to place.
    pub component: String,
    /// The hosts to place it on, by name.
    pub hosts: Vec<String>,
}

/// The body of `POST /clusters/{cluster}/snapshots`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotBody {
    /// Its name, unique in the cluster.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    pub name: String,
    /// Why.
    #[serde(default)]
    pub message: String,
}

/// A named set of config versions.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// The body of `POST /clusters/{cluster}/relations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Relate)]
pub struct RelateSchema {
    /// The requiring side: `service` or `service:endpoint`.
    pub requirer: String,
    /// The providing side: `service` or `service:endpoint`.
    pub provider: String,
    /// Reconfigure stale units automatically when the other side's units change (default
    /// true).
    #[serde(default = "yes")]
    pub auto_reconfigure: bool,
}

fn yes() -> bool {
    true
}

/// A relation between two service instances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelationView {
    /// Its id.
    #[schema(value_type = i64)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    #[schema(value_type = Option<i64>)]
    pub job: Option<bigmgr_core::model::JobId>,
}

async fn service_names(
    s: &AppState,
    cluster: &str,
) -> ApiResult<std::collections::HashMap<bigmgr_core::model::ServiceId, String>> {
    let c = s.mgr.cluster(cluster).await?;
    // Removed services keep their id in relations' history; their name then reads `#id`.
    Ok(s.mgr
        .store()
        .list_services(c.id)
        .await?
        .into_iter()
        .map(|x| (x.id, x.name))
        .collect())
}

fn relation_view(
    r: Relation,
    names: &std::collections::HashMap<bigmgr_core::model::ServiceId, String>,
) -> RelationView {
    let name = |id| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    RelationView {
        id: r.id,
        requirer: name(r.requirer),
        requirer_endpoint: r.requirer_endpoint,
        provider: name(r.provider),
        provider_endpoint: r.provider_endpoint,
        interface: r.interface,
        auto_reconfigure: r.auto_reconfigure,
        created_at: r.created_at,
    }
}

fn event_view(
    e: RelationEvent,
    names: &std::collections::HashMap<bigmgr_core::model::ServiceId, String>,
) -> RelationEventView {
    RelationEventView {
        at: e.at,
        kind: e.kind.as_str().to_string(),
        service: names
            .get(&e.service)
            .cloned()
            .unwrap_or_else(|| format!("#{}", e.service)),
        detail: e.detail,
        job: e.job,
    }
}

/// `GET …/services/{service}/configs` → every config version, oldest first.
#[utoipa::path(get, path = "/clusters/{cluster}/services/{service}/configs", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    responses(
        (status = 200, description = "The versions, oldest first", body = Vec<ConfigVersionView>),
        (status = 404, description = "No such cluster or service instance"),
    ))]
pub async fn versions(
    State(s): State<AppState>,
    Path((cluster, service)): Path<(String, String)>,
) -> ApiResult<Json<Vec<ConfigVersionView>>> {
    let v = s.mgr.config_versions(&cluster, &service).await?;
    Ok(Json(
        v.into_iter()
            .map(|v| ConfigVersionView::of(&service, v))
            .collect(),
    ))
}

/// `PATCH …/services/{service}/configs` (a merge patch) → 201 with the new version.
#[utoipa::path(patch, path = "/clusters/{cluster}/services/{service}/configs", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    request_body = ConfigChangeSchema,
    responses(
        (status = 201, description = "The new version; the service's units are stale until reconfigured", body = ConfigVersionView),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "An unknown property or host, a value of the wrong type, a template that can't render, or no change"),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((cluster, service)): Path<(String, String)>,
    Json(body): Json<ConfigChangeSchema>,
) -> ApiResult<Response> {
    let change = ConfigChange {
        configs: body.configs,
        hosts: body.hosts,
        message: body.message,
    };
    let v = s
        .mgr
        .update_configs(&cluster, &service, change, &actor.name)
        .await?;
    let location = format!(
        "{PREFIX}/clusters/{cluster}/services/{service}/configs/{}",
        v.version
    );
    Ok(created(location, ConfigVersionView::of(&service, v)))
}

/// `GET …/services/{service}/configs/{version}`.
#[utoipa::path(get, path = "/clusters/{cluster}/services/{service}/configs/{version}", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
        ("version" = u32, Path, description = "The version number", minimum = 1),
    ),
    responses(
        (status = 200, description = "The version", body = ConfigVersionView),
        (status = 404, description = "No such cluster, service instance or version"),
    ))]
pub async fn version(
    State(s): State<AppState>,
    Path((cluster, service, version)): Path<(String, String, u32)>,
) -> ApiResult<Json<ConfigVersionView>> {
    let v = s.mgr.config_version(&cluster, &service, version).await?;
    Ok(Json(ConfigVersionView::of(&service, v)))
}

/// `GET …/services/{service}/configs/diff?from=&to=` → what changed, property by property.
#[utoipa::path(get, path = "/clusters/{cluster}/services/{service}/configs/diff", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
        DiffQuery,
    ),
    responses(
        (status = 200, description = "The differences", body = Vec<ConfigDiffView>),
        (status = 404, description = "No such cluster, service instance or version"),
    ))]
pub async fn diff(
    State(s): State<AppState>,
    Path((cluster, service)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Vec<ConfigDiffView>>> {
    let d = s.mgr.diff_configs(&cluster, &service, q.from, q.to).await?;
    Ok(Json(d.into_iter().map(Into::into).collect()))
}

/// `POST …/services/{service}/configs/rollback` → 201 with a new version equal to the old.
#[utoipa::path(post, path = "/clusters/{cluster}/services/{service}/configs/rollback", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    request_body = RollbackBody,
    responses(
        (status = 201, description = "The new version, equal to the old one", body = ConfigVersionView),
        (status = 404, description = "No such cluster, service instance or version"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "The old values no longer fit the stack"),
    ))]
pub async fn rollback(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((cluster, service)): Path<(String, String)>,
    Json(body): Json<RollbackBody>,
) -> ApiResult<Response> {
    let v = s
        .mgr
        .rollback_configs(&cluster, &service, body.to, &actor.name, body.message)
        .await?;
    let location = format!(
        "{PREFIX}/clusters/{cluster}/services/{service}/configs/{}",
        v.version
    );
    Ok(created(location, ConfigVersionView::of(&service, v)))
}

/// `GET /clusters/{cluster}/units` → every unit with whether it is stale.
#[utoipa::path(get, path = "/clusters/{cluster}/units", tag = "configs",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 200, description = "The units", body = Vec<UnitStatusView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn units(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<UnitStatusView>>> {
    let u = s.mgr.unit_statuses(&cluster).await?;
    Ok(Json(u.into_iter().map(Into::into).collect()))
}

/// `POST /clusters/{cluster}/restart-stale` → 202 with the jobs (none if nothing is stale).
#[utoipa::path(post, path = "/clusters/{cluster}/restart-stale", tag = "configs",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = RestartStaleBody,
    responses(
        (status = 202, description = "The jobs that apply the changes", body = Vec<JobView>),
        (status = 404, description = "No such cluster or service instance"),
        (status = 422, description = "Bad job options"),
    ))]
pub async fn restart_stale(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Json(body): Json<RestartStaleBody>,
) -> ApiResult<Response> {
    let jobs = s
        .mgr
        .restart_stale(&cluster, body.service.as_deref(), body.options)
        .await?;
    let views: Vec<JobView> = jobs
        .into_iter()
        .map(|j| job_view(j, cluster.clone()))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(views)).into_response())
}

/// `POST …/services/{service}/units` → 201 with the new units (deploy them with a job).
#[utoipa::path(post, path = "/clusters/{cluster}/services/{service}/units", tag = "services",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("service" = String, Path, description = "The service instance's name"),
    ),
    request_body = AddUnitsBody,
    responses(
        (status = 201, description = "The new units", body = Vec<UnitStatusView>),
        (status = 404, description = "No such cluster, service instance, component or host"),
        (status = 409, description = "The component already has a unit on that host"),
        (status = 422, description = "Cardinality, or the new units' configs don't render"),
    ))]
pub async fn add_units(
    State(s): State<AppState>,
    Path((cluster, service)): Path<(String, String)>,
    Json(body): Json<AddUnitsBody>,
) -> ApiResult<Response> {
    let placed = s
        .mgr
        .add_units(&cluster, &service, &body.component, &body.hosts)
        .await?;
    let ids: Vec<UnitId> = placed.iter().map(|u| u.id).collect();
    let all = s.mgr.unit_statuses(&cluster).await?;
    let views: Vec<UnitStatusView> = all
        .into_iter()
        .filter(|u| ids.contains(&u.unit.id))
        .map(Into::into)
        .collect();
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("{PREFIX}/clusters/{cluster}/units"),
        )],
        Json(views),
    )
        .into_response())
}

/// `DELETE /clusters/{cluster}/units/{unit}` → 204 (stop it first).
#[utoipa::path(delete, path = "/clusters/{cluster}/units/{unit}", tag = "services",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("unit" = i64, Path, description = "The unit's id"),
    ),
    responses(
        (status = 204, description = "Removed; related services re-render without it"),
        (status = 404, description = "No such cluster or unit"),
        (status = 409, description = "It is STARTED, in an unfinished job, or the last its component needs"),
    ))]
pub async fn remove_unit(
    State(s): State<AppState>,
    Path((cluster, unit)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    s.mgr.remove_unit(&cluster, UnitId(unit)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /clusters/{cluster}/snapshots`.
#[utoipa::path(get, path = "/clusters/{cluster}/snapshots", tag = "configs",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 200, description = "The snapshots, oldest first", body = Vec<SnapshotView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn snapshots(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<SnapshotView>>> {
    let v = s.mgr.snapshots(&cluster).await?;
    Ok(Json(v.into_iter().map(Into::into).collect()))
}

/// `POST /clusters/{cluster}/snapshots` → 201: names every service's current version.
#[utoipa::path(post, path = "/clusters/{cluster}/snapshots", tag = "configs",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = SnapshotBody,
    responses(
        (status = 201, description = "The snapshot", body = SnapshotView),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A snapshot of that name exists"),
        (status = 422, description = "A bad name"),
    ))]
pub async fn create_snapshot(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(cluster): Path<String>,
    Json(body): Json<SnapshotBody>,
) -> ApiResult<Response> {
    let snap = s
        .mgr
        .create_snapshot(&cluster, &body.name, &body.message, &actor.name)
        .await?;
    let location = format!("{PREFIX}/clusters/{cluster}/snapshots/{}", snap.name);
    Ok(created(location, SnapshotView::from(snap)))
}

/// `GET /clusters/{cluster}/snapshots/{name}`.
#[utoipa::path(get, path = "/clusters/{cluster}/snapshots/{name}", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("name" = String, Path, description = "The snapshot's name"),
    ),
    responses(
        (status = 200, description = "The snapshot", body = SnapshotView),
        (status = 404, description = "No such cluster or snapshot"),
    ))]
pub async fn snapshot(
    State(s): State<AppState>,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<SnapshotView>> {
    Ok(Json(s.mgr.snapshot(&cluster, &name).await?.into()))
}

/// `POST /clusters/{cluster}/snapshots/{name}/restore` → 201 with the new versions of the
/// services that had changed since.
#[utoipa::path(post, path = "/clusters/{cluster}/snapshots/{name}/restore", tag = "configs",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("name" = String, Path, description = "The snapshot's name"),
    ),
    responses(
        (status = 201, description = "The new versions (one per service that changed)", body = Vec<ConfigVersionView>),
        (status = 404, description = "No such cluster or snapshot"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "Old values no longer fit the stack"),
    ))]
pub async fn restore_snapshot(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let v = s.mgr.restore_snapshot(&cluster, &name, &actor.name).await?;
    let names = service_names(&s, &cluster).await?;
    let views: Vec<ConfigVersionView> = v
        .into_iter()
        .map(|v| {
            let name = names.get(&v.service).cloned().unwrap_or_default();
            ConfigVersionView::of(&name, v)
        })
        .collect();
    Ok((StatusCode::CREATED, Json(views)).into_response())
}

/// `GET /clusters/{cluster}/relations`.
#[utoipa::path(get, path = "/clusters/{cluster}/relations", tag = "relations",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 200, description = "The relations", body = Vec<RelationView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn relations(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<RelationView>>> {
    let names = service_names(&s, &cluster).await?;
    let r = s.mgr.relations(&cluster).await?;
    Ok(Json(
        r.into_iter().map(|r| relation_view(r, &names)).collect(),
    ))
}

/// `POST /clusters/{cluster}/relations` → 201: relates two service instances.
#[utoipa::path(post, path = "/clusters/{cluster}/relations", tag = "relations",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = RelateSchema,
    responses(
        (status = 201, description = "The relation; related units re-render", body = RelationView),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "Already related"),
        (status = 422, description = "No endpoints with a shared interface, or an unknown endpoint"),
    ))]
pub async fn relate(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Json(body): Json<RelateSchema>,
) -> ApiResult<Response> {
    let rel = s
        .mgr
        .relate(
            &cluster,
            Relate {
                requirer: body.requirer,
                provider: body.provider,
                auto_reconfigure: body.auto_reconfigure,
            },
        )
        .await?;
    let names = service_names(&s, &cluster).await?;
    let location = format!("{PREFIX}/clusters/{cluster}/relations/{}", rel.id);
    Ok(created(location, relation_view(rel, &names)))
}

/// `DELETE /clusters/{cluster}/relations/{id}` → 204: both sides get `broken`.
#[utoipa::path(delete, path = "/clusters/{cluster}/relations/{id}", tag = "relations",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("id" = i64, Path, description = "The relation's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such cluster or relation"),
    ))]
pub async fn unrelate(
    State(s): State<AppState>,
    Path((cluster, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    s.mgr.unrelate(&cluster, RelationId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /clusters/{cluster}/relations/{id}/events` → join / change / broken, oldest first.
#[utoipa::path(get, path = "/clusters/{cluster}/relations/{id}/events", tag = "relations",
    params(
        ("cluster" = String, Path, description = "The cluster's name"),
        ("id" = i64, Path, description = "The relation's id"),
    ),
    responses(
        (status = 200, description = "The events", body = Vec<RelationEventView>),
        (status = 404, description = "No such cluster or relation"),
    ))]
pub async fn relation_events(
    State(s): State<AppState>,
    Path((cluster, id)): Path<(String, i64)>,
) -> ApiResult<Json<Vec<RelationEventView>>> {
    let names = service_names(&s, &cluster).await?;
    let e = s.mgr.relation_events(&cluster, RelationId(id)).await?;
    Ok(Json(e.into_iter().map(|e| event_view(e, &names)).collect()))
}
