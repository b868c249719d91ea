//! `/stacks` and `/clusters/{cluster}/services`: what can be deployed, and the service
//! instances of a cluster with their units.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::path::{ClusterPath, ServicePath};
use super::{AppState, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bigmgr_core::manager::AddService;
use bigmgr_core::view::{ServiceCheckView, ServiceView, StackView};
use serde::Deserialize;
use utoipa::IntoParams;

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
    let stacks = s.mgr.stack_views().await?;
    Ok(Json(q.page_by_key(stacks, |v| {
        format!("{}/{}", v.name, v.version)
    })?))
}

read_routes! {
    /// `GET /clusters/{cluster}/services` → the cluster's service instances, oldest first, a page
    /// at a time.
    list("/clusters/{cluster}/services", "services", ClusterPath, PageQuery)
        -> [Page<ServiceView>]: "A page of service instances",
        404: "No such cluster",
        |s, p, q| q.page_by_id(s.mgr.service_views(&p.cluster).await?, |v| v.id.0)?;

    /// `GET /clusters/{cluster}/services/{service}`.
    get("/clusters/{cluster}/services/{service}", "services", ServicePath)
        -> [ServiceView]: "The service instance",
        404: "No such cluster or service instance",
        |s, p| s.mgr.service_view(&p.cluster, &p.service).await?;
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/services/{service}` → 204. Refused (409) while a unit of it is
    /// STARTED or a job that touches it is unfinished. Its name can be used again.
    remove("/clusters/{cluster}/services/{service}", "services", ServicePath):
        204: "Removed",
        404: "No such cluster or service instance",
        409: "A unit of it is STARTED, or a job that touches it is unfinished",
        |a, p| a.remove_service(&p.cluster, &p.service);
}

/// The query of `POST /clusters/{cluster}/services`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AddQuery {
    /// Make every check and write nothing: 200 with the units the service would get.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /clusters/{cluster}/services` (body: `AddService`) → 201 with the service and its
/// units; with `?dry_run=true`, 200 with what it would create and nothing written.
#[utoipa::path(post, path = "/clusters/{cluster}/services", tag = "services",
    params(ClusterPath, AddQuery),
    request_body = AddService,
    responses(
        (status = 201, description = "The new service instance with its units", body = ServiceView,
            headers(("Location" = String, description = "The service instance's URL"))),
        (status = 200, description = "A dry run: every check passed; what would be created", body = ServiceCheckView),
        (status = 404, description = "No such cluster, stack, service definition or host"),
        (status = 409, description = "A service instance of that name exists"),
        (status = 422, description = "The placement breaks a rule (cardinality, unknown component, client/server), or a config value does not fit"),
    ))]
pub async fn add(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Query(q): Query<AddQuery>,
    Json(body): Json<AddService>,
) -> ApiResult<Response> {
    if q.dry_run {
        let check = c.acting().check_service(&p.cluster, body).await?;
        return Ok(Json(check).into_response());
    }
    let (inst, _) = c.acting().add_service(&p.cluster, body).await?;
    let view = c.mgr.service_view(&p.cluster, &inst.name).await?;
    Ok(created(p.url(&format!("/services/{}", inst.name)), view))
}
