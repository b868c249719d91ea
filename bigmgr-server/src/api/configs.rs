//! Config versions, snapshots, stale units, units and relations of a cluster: thin handlers
//! over core's [`Manager`] (secrets arrive here already redacted).

use super::error::{ApiResult, Json, Path, Query};
use super::{AppState, PREFIX, created};
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bigmgr_core::auth::Actor;
use bigmgr_core::manager::{ConfigChange, Relate};
use bigmgr_core::model::{RelationId, UnitId};
use bigmgr_core::request::{AddUnitsBody, RestartStaleBody, RollbackBody, SnapshotBody};
use bigmgr_core::view::{
    ConfigDiffView, ConfigVersionView, JobView, RelationEventView, RelationView, SnapshotView,
    UnitStatusView,
};
use serde::Deserialize;
use utoipa::IntoParams;

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
    request_body = ConfigChange,
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
    Json(change): Json<ConfigChange>,
) -> ApiResult<Response> {
    let v = s
        .mgr
        .acting(actor)
        .update_configs(&cluster, &service, change)
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
        .acting(actor)
        .rollback_configs(&cluster, &service, body.to, body.message)
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
    Ok(Json(s.mgr.unit_views(&cluster).await?))
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
    Extension(actor): Extension<Actor>,
    Path(cluster): Path<String>,
    Json(body): Json<RestartStaleBody>,
) -> ApiResult<Response> {
    let jobs = s
        .mgr
        .acting(actor)
        .restart_stale(&cluster, body.service.as_deref(), body.options)
        .await?;
    let views: Vec<JobView> = jobs.into_iter().map(|j| JobView::of(j, &cluster)).collect();
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
    Extension(actor): Extension<Actor>,
    Path((cluster, service)): Path<(String, String)>,
    Json(body): Json<AddUnitsBody>,
) -> ApiResult<Response> {
    let placed = s
        .mgr
        .acting(actor)
        .add_units(&cluster, &service, &body)
        .await?;
    let views = s.mgr.unit_views_of(&cluster, &placed).await?;
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
    Extension(actor): Extension<Actor>,
    Path((cluster, unit)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    s.mgr
        .acting(actor)
        .remove_unit(&cluster, UnitId(unit))
        .await?;
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
        .acting(actor)
        .create_snapshot(&cluster, &body.name, &body.message)
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
    let v = s
        .mgr
        .acting(actor)
        .restore_snapshot(&cluster, &name)
        .await?;
    let views = s.mgr.config_version_views(&cluster, v).await?;
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
    Ok(Json(s.mgr.relation_views(&cluster).await?))
}

/// `POST /clusters/{cluster}/relations` → 201: relates two service instances.
#[utoipa::path(post, path = "/clusters/{cluster}/relations", tag = "relations",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = Relate,
    responses(
        (status = 201, description = "The relation; related units re-render", body = RelationView),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "Already related"),
        (status = 422, description = "No endpoints with a shared interface, or an unknown endpoint"),
    ))]
pub async fn relate(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(cluster): Path<String>,
    Json(body): Json<Relate>,
) -> ApiResult<Response> {
    let rel = s.mgr.acting(actor).relate(&cluster, body).await?;
    let location = format!("{PREFIX}/clusters/{cluster}/relations/{}", rel.id);
    Ok(created(location, s.mgr.relation_view(&cluster, rel).await?))
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
    Extension(actor): Extension<Actor>,
    Path((cluster, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    s.mgr
        .acting(actor)
        .unrelate(&cluster, RelationId(id))
        .await?;
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
    Ok(Json(
        s.mgr.relation_event_views(&cluster, RelationId(id)).await?,
    ))
}
