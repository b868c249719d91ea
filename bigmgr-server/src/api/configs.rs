//! Config versions, snapshots, stale units, units and relations of a cluster: thin handlers
//! over core's [`Manager`] (secrets arrive here already redacted).

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::path::{ClusterPath, RelationPath, ServicePath, SnapshotPath, UnitPath, VersionPath};
use super::{AppState, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bigmgr_core::manager::{ConfigChange, Relate};
use bigmgr_core::model::{ConfigVersion, RelationId, UnitId};
use bigmgr_core::request::{AddUnitsBody, RestartStaleBody, RollbackBody, SnapshotBody, SpecBody};
use bigmgr_core::spec::{Exported, Plan};
use bigmgr_core::view::{
    ConfigDiffView, ConfigVersionView, JobView, RelationEventView, RelationView, RenderedFileView,
    SnapshotView, SpecAppliedView, UnitStatusView,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// The query of `GET …/configs/diff`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The earlier version.
    #[param(minimum = 1)]
    pub from: u32,
    /// The later version.
    #[param(minimum = 1)]
    pub to: u32,
}

read_routes! {
    /// `GET …/services/{service}/configs/diff?from=&to=` → what changed, property by property.
    diff("/clusters/{cluster}/services/{service}/configs/diff", "configs", ServicePath, DiffQuery)
        -> [Vec<ConfigDiffView>]: "The differences",
        404: "No such cluster, service instance or version",
        |s, p, q| s.mgr.diff_configs(&p.cluster, &p.service, q.from, q.to).await?
            .into_iter()
            .map(Into::into)
            .collect();

    /// `GET …/services/{service}/configs` → every config version, oldest first.
    versions("/clusters/{cluster}/services/{service}/configs", "configs", ServicePath)
        -> [Vec<ConfigVersionView>]: "The versions, oldest first",
        404: "No such cluster or service instance",
        |s, p| s.mgr.config_versions(&p.cluster, &p.service)
            .await?
            .into_iter()
            .map(|v| ConfigVersionView::of(&p.service, v))
            .collect();

    /// `GET …/services/{service}/configs/{version}`.
    version("/clusters/{cluster}/services/{service}/configs/{version}", "configs", VersionPath)
        -> [ConfigVersionView]: "The version",
        404: "No such cluster, service instance or version",
        |s, p| {
            let v = s.mgr.config_version(&p.cluster, &p.service, p.version).await?;
            ConfigVersionView::of(&p.service, v)
        };

    /// `GET /clusters/{cluster}/spec` → the cluster written as a cluster spec: applying it to
    /// an empty server rebuilds the same cluster. Secret values are written as environment
    /// references, listed in `references`.
    export_spec("/clusters/{cluster}/spec", "specs", ClusterPath)
        -> [Exported]: "The cluster as a spec",
        404: "No such cluster",
        |s, p| s.mgr.export_spec(&p.cluster).await?;

    /// `GET /clusters/{cluster}/units` → every unit with whether it is stale.
    units("/clusters/{cluster}/units", "configs", ClusterPath)
        -> [Vec<UnitStatusView>]: "The units",
        404: "No such cluster",
        |s, p| s.mgr.unit_views(&p.cluster).await?;

    /// `GET /clusters/{cluster}/units/{unit}/files` → the unit's config files as its
    /// `configure` would write them now, secret values masked.
    unit_files("/clusters/{cluster}/units/{unit}/files", "configs", UnitPath)
        -> [Vec<RenderedFileView>]: "The files",
        404: "No such cluster or unit",
        |s, p| s.mgr.unit_files(&p.cluster, UnitId(p.unit)).await?;

    /// `GET /clusters/{cluster}/snapshots`.
    snapshots("/clusters/{cluster}/snapshots", "configs", ClusterPath)
        -> [Vec<SnapshotView>]: "The snapshots, oldest first",
        404: "No such cluster",
        |s, p| s.mgr.snapshots(&p.cluster).await?.into_iter().map(Into::into).collect();

    /// `GET /clusters/{cluster}/snapshots/{name}`.
    snapshot("/clusters/{cluster}/snapshots/{name}", "configs", SnapshotPath)
        -> [SnapshotView]: "The snapshot",
        404: "No such cluster or snapshot",
        |s, p| s.mgr.snapshot(&p.cluster, &p.name).await?.into();

    /// `GET /clusters/{cluster}/relations`.
    relations("/clusters/{cluster}/relations", "relations", ClusterPath)
        -> [Vec<RelationView>]: "The relations",
        404: "No such cluster",
        |s, p| s.mgr.relation_views(&p.cluster).await?;

    /// `GET /clusters/{cluster}/relations/{id}/events` → join / change / broken, oldest first.
    relation_events("/clusters/{cluster}/relations/{id}/events", "relations", RelationPath)
        -> [Vec<RelationEventView>]: "The events",
        404: "No such cluster or relation",
        |s, p| s.mgr.relation_event_views(&p.cluster, RelationId(p.id)).await?;
}

/// `PATCH …/services/{service}/configs` (a merge patch) → 201 with the new version.
#[utoipa::path(patch, path = "/clusters/{cluster}/services/{service}/configs", tag = "configs",
    params(ServicePath),
    request_body = ConfigChange,
    responses(
        (status = 201, description = "The new version; the service's units are stale until reconfigured", body = ConfigVersionView),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "An unknown property or host, a value of the wrong type, a template that can't render, or no change"),
    ))]
pub async fn update(
    c: Caller,
    Path(p): Path<ServicePath>,
    Json(change): Json<ConfigChange>,
) -> ApiResult<Response> {
    let v = c
        .acting()
        .update_configs(&p.cluster, &p.service, change)
        .await?;
    Ok(new_version(&p, v))
}

/// 201 with a new config version of the service instance `p`, at its URL.
fn new_version(p: &ServicePath, v: ConfigVersion) -> Response {
    created(
        p.config_url(v.version),
        ConfigVersionView::of(&p.service, v),
    )
}

/// `POST …/services/{service}/configs/rollback` → 201 with a new version equal to the old.
#[utoipa::path(post, path = "/clusters/{cluster}/services/{service}/configs/rollback", tag = "configs",
    params(ServicePath),
    request_body = RollbackBody,
    responses(
        (status = 201, description = "The new version, equal to the old one", body = ConfigVersionView),
        (status = 404, description = "No such cluster, service instance or version"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "The old values no longer fit the stack"),
    ))]
pub async fn rollback(
    c: Caller,
    Path(p): Path<ServicePath>,
    Json(body): Json<RollbackBody>,
) -> ApiResult<Response> {
    let v = c
        .acting()
        .rollback_configs(&p.cluster, &p.service, body.to, body.message)
        .await?;
    Ok(new_version(&p, v))
}

/// `POST /clusters/{cluster}/restart-stale` → 202 with the jobs (none if nothing is stale).
#[utoipa::path(post, path = "/clusters/{cluster}/restart-stale", tag = "configs",
    params(ClusterPath),
    request_body = RestartStaleBody,
    responses(
        (status = 202, description = "The jobs that apply the changes", body = Vec<JobView>),
        (status = 404, description = "No such cluster or service instance"),
        (status = 422, description = "Bad job options"),
    ))]
pub async fn restart_stale(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<RestartStaleBody>,
) -> ApiResult<Response> {
    let jobs = c.acting().restart_stale(&p.cluster, &body).await?;
    let views: Vec<JobView> = jobs
        .into_iter()
        .map(|j| JobView::of(j, &p.cluster))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(views)).into_response())
}

/// `POST …/services/{service}/units` → 201 with the new units (deploy them with a job).
#[utoipa::path(post, path = "/clusters/{cluster}/services/{service}/units", tag = "services",
    params(ServicePath),
    request_body = AddUnitsBody,
    responses(
        (status = 201, description = "The new units", body = Vec<UnitStatusView>),
        (status = 404, description = "No such cluster, service instance, component or host"),
        (status = 409, description = "The component already has a unit on that host"),
        (status = 422, description = "Cardinality, or the new units' configs don't render"),
    ))]
pub async fn add_units(
    c: Caller,
    Path(p): Path<ServicePath>,
    Json(body): Json<AddUnitsBody>,
) -> ApiResult<Response> {
    let placed = c.acting().add_units(&p.cluster, &p.service, &body).await?;
    let views = c.mgr.unit_views_of(&p.cluster, &placed).await?;
    let cluster = ClusterPath { cluster: p.cluster };
    Ok(created(cluster.url("/units"), views))
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/units/{unit}` → 204 (stop it first).
    remove_unit("/clusters/{cluster}/units/{unit}", "services", UnitPath):
        204: "Removed; related services re-render without it",
        404: "No such cluster or unit",
        409: "It is STARTED, in an unfinished job, or the last its component needs",
        |a, p| a.remove_unit(&p.cluster, UnitId(p.unit));

    /// `DELETE /clusters/{cluster}/relations/{id}` → 204: both sides get `broken`.
    unrelate("/clusters/{cluster}/relations/{id}", "relations", RelationPath):
        204: "Removed",
        404: "No such cluster or relation",
        |a, p| a.unrelate(&p.cluster, RelationId(p.id));
}

/// `POST /clusters/{cluster}/snapshots` → 201: names every service's current version.
#[utoipa::path(post, path = "/clusters/{cluster}/snapshots", tag = "configs",
    params(ClusterPath),
    request_body = SnapshotBody,
    responses(
        (status = 201, description = "The snapshot", body = SnapshotView),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A snapshot of that name exists"),
        (status = 422, description = "A bad name"),
    ))]
pub async fn create_snapshot(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<SnapshotBody>,
) -> ApiResult<Response> {
    let snap = c
        .acting()
        .create_snapshot(&p.cluster, &body.name, &body.message)
        .await?;
    let location = p.url(&format!("/snapshots/{}", snap.name));
    Ok(created(location, SnapshotView::from(snap)))
}

/// `POST /clusters/{cluster}/snapshots/{name}/restore` → 201 with the new versions of the
/// services that had changed since.
#[utoipa::path(post, path = "/clusters/{cluster}/snapshots/{name}/restore", tag = "configs",
    params(SnapshotPath),
    responses(
        (status = 201, description = "The new versions (one per service that changed)", body = Vec<ConfigVersionView>),
        (status = 404, description = "No such cluster or snapshot"),
        (status = 409, description = "Another change was made at the same time; try again"),
        (status = 422, description = "Old values no longer fit the stack"),
    ))]
pub async fn restore_snapshot(c: Caller, Path(p): Path<SnapshotPath>) -> ApiResult<Response> {
    let v = c.acting().restore_snapshot(&p.cluster, &p.name).await?;
    let views = c.mgr.config_version_views(&p.cluster, v).await?;
    Ok((StatusCode::CREATED, Json(views)).into_response())
}

/// `POST /clusters/{cluster}/relations` → 201: relates two service instances.
#[utoipa::path(post, path = "/clusters/{cluster}/relations", tag = "relations",
    params(ClusterPath),
    request_body = Relate,
    responses(
        (status = 201, description = "The relation; related units re-render", body = RelationView),
        (status = 404, description = "No such cluster or service instance"),
        (status = 409, description = "Already related"),
        (status = 422, description = "No endpoints with a shared interface, or an unknown endpoint"),
    ))]
pub async fn relate(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<Relate>,
) -> ApiResult<Response> {
    let rel = c.acting().relate(&p.cluster, body).await?;
    let location = p.url(&format!("/relations/{}", rel.id));
    Ok(created(
        location,
        c.mgr.relation_view(&p.cluster, rel).await?,
    ))
}

/// `POST /clusters/{cluster}/plan` → 200 with what applying the spec would change (the cluster
/// need not exist yet); changes nothing.
#[utoipa::path(post, path = "/clusters/{cluster}/plan", tag = "specs",
    params(ClusterPath),
    request_body = SpecBody,
    responses(
        (status = 200, description = "What an apply would change", body = Plan),
        (status = 422, description = "The spec has problems: each with its line"),
    ))]
pub async fn plan_spec(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<SpecBody>,
) -> ApiResult<Json<Plan>> {
    Ok(Json(c.acting().plan_spec(&p.cluster, &body).await?))
}

/// `POST /clusters/{cluster}/apply` → 202 with the plan carried out and the jobs submitted.
#[utoipa::path(post, path = "/clusters/{cluster}/apply", tag = "specs",
    params(ClusterPath),
    request_body = SpecBody,
    responses(
        (status = 202, description = "What was changed and the jobs that deploy it", body = SpecAppliedView),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "The cluster has a service the spec names with another stack or definition"),
        (status = 422, description = "The spec has problems: each with its line"),
    ))]
pub async fn apply_spec(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<SpecBody>,
) -> ApiResult<Response> {
    let applied = c.acting().apply_spec(&p.cluster, &body).await?;
    let view = SpecAppliedView::of(applied.plan, applied.jobs, &p.cluster);
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}
