//! `/clusters`: create, list, get and delete clusters, and create join tokens for agents.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::path::ClusterPath;
use super::{AppState, created};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bigmgr_core::request::CreateCluster;
use bigmgr_core::view::{ClusterView, JoinToken};

/// `POST /clusters` → 201 with the cluster.
#[utoipa::path(post, path = "/clusters", tag = "clusters",
    request_body = CreateCluster,
    responses(
        (status = 201, description = "The new cluster", body = ClusterView,
            headers(("Location" = String, description = "The cluster's URL"))),
        (status = 409, description = "A cluster of that name exists"),
        (status = 422, description = "The name is not valid"),
    ))]
pub async fn create(c: Caller, Json(body): Json<CreateCluster>) -> ApiResult<Response> {
    let cluster = c.acting().create_cluster(&body.name).await?;
    let path = ClusterPath {
        cluster: cluster.name.clone(),
    };
    Ok(created(path.url(""), ClusterView::from(cluster)))
}

/// `GET /clusters` → the clusters, oldest first, a page at a time.
#[utoipa::path(get, path = "/clusters", tag = "clusters",
    params(PageQuery),
    responses((status = 200, description = "A page of clusters", body = Page<ClusterView>)))]
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ClusterView>>> {
    let mut clusters = s.mgr.clusters().await?;
    clusters.sort_by_key(|c| c.id);
    Ok(Json(
        q.page_by_id(clusters, |c| c.id.0)?.map(ClusterView::from),
    ))
}

read_routes! {
    /// `GET /clusters/{cluster}`.
    get("/clusters/{cluster}", "clusters", ClusterPath)
        -> [ClusterView]: "The cluster",
        404: "No such cluster",
        |s, p| s.mgr.cluster(&p.cluster).await?;
}

remove_routes! {
    /// `DELETE /clusters/{cluster}` → 204; a cluster with hosts, services or jobs is a 409.
    delete("/clusters/{cluster}", "clusters", ClusterPath):
        204: "Deleted",
        404: "No such cluster",
        409: "The cluster still has hosts, services or jobs",
        |a, p| a.delete_cluster(&p.cluster);
}

/// `POST /clusters/{cluster}/join-tokens` → 201 `{"token"}`. The body, if any, is ignored.
#[utoipa::path(post, path = "/clusters/{cluster}/join-tokens", tag = "clusters",
    params(ClusterPath),
    responses(
        (status = 201, description = "A new join token for agents of the cluster", body = JoinToken,
            headers(("Location" = String, description = "The cluster's URL"))),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn create_join_token(
    c: Caller,
    headers: HeaderMap,
    uri: Uri,
    Path(p): Path<ClusterPath>,
) -> ApiResult<Response> {
    let token = c.acting().create_join_token(&p.cluster).await?;
    let ca_fingerprint = c.mgr.ca_fingerprint().map(str::to_string);
    let host = super::authority(&headers, &uri);
    let command =
        host.map(|host| bigmgr_core::join::agent_command(&host, &token, ca_fingerprint.as_deref()));
    Ok(created(
        p.url(""),
        JoinToken {
            token,
            ca_fingerprint,
            command,
        },
    ))
}
