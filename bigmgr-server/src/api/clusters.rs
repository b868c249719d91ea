//! `/clusters`: create, list, get and delete clusters, and create join tokens for agents.

use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::{AppState, PREFIX, created};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::auth::Actor;
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
pub async fn create(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<CreateCluster>,
) -> ApiResult<Response> {
    let cluster = s.mgr.acting(actor).create_cluster(&body.name).await?;
    Ok(created(
        format!("{PREFIX}/clusters/{}", cluster.name),
        ClusterView::from(cluster),
    ))
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

/// `GET /clusters/{cluster}`.
#[utoipa::path(get, path = "/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn get(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterView>> {
    Ok(Json(s.mgr.cluster(&name).await?))
}

/// `DELETE /clusters/{cluster}` → 204; a cluster with hosts, services or jobs is a 409.
#[utoipa::path(delete, path = "/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "The cluster still has hosts, services or jobs"),
    ))]
pub async fn delete(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.mgr.acting(actor).delete_cluster(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /clusters/{cluster}/join-tokens` → 201 `{"token"}`. The body, if any, is ignored.
#[utoipa::path(post, path = "/clusters/{cluster}/join-tokens", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's name")),
    responses(
        (status = 201, description = "A new join token for agents of the cluster", body = JoinToken,
            headers(("Location" = String, description = "The cluster's URL"))),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn create_join_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let token = s.mgr.acting(actor).create_join_token(&name).await?;
    Ok(created(
        format!("{PREFIX}/clusters/{name}"),
        JoinToken { token },
    ))
}
