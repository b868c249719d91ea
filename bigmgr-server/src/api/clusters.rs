//! `/clusters`: create, list, get and delete clusters, and create join tokens for agents.

use super::error::{ApiResult, Json, Path};
use super::{AppState, PREFIX, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::model::Cluster;
use serde::{Deserialize, Serialize};

/// The body of `POST /clusters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// The new cluster's name.
    pub name: String,
}

/// The answer of `POST /clusters/{cluster}/join-tokens`.
#[derive(Debug, Clone, Serialize)]
pub struct JoinToken {
    /// The token (`bmj_…`), shown only now: pass it to `bigmgr-agent --join-token`.
    pub token: String,
}

/// `POST /clusters` → 201 with the cluster.
pub async fn create(
    State(s): State<AppState>,
    Json(body): Json<CreateCluster>,
) -> ApiResult<Response> {
    let cluster = s.mgr.create_cluster(&body.name).await?;
    Ok(created(
        format!("{PREFIX}/clusters/{}", cluster.name),
        cluster,
    ))
}

/// `GET /clusters` → every cluster.
pub async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Cluster>>> {
    Ok(Json(s.mgr.clusters().await?))
}

/// `GET /clusters/{cluster}`.
pub async fn get(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Cluster>> {
    Ok(Json(s.mgr.cluster(&name).await?))
}

/// `DELETE /clusters/{cluster}` → 204; a cluster with hosts, services or jobs is a 409.
pub async fn delete(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    s.mgr.delete_cluster(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /clusters/{cluster}/join-tokens` → 201 `{"token"}`.
pub async fn create_join_token(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let token = s.mgr.create_join_token(&name).await?;
    Ok(created(
        format!("{PREFIX}/clusters/{name}"),
        JoinToken { token },
    ))
}
