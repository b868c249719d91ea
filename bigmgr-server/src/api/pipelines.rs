//! `/clusters/{cluster}/pipelines`: pipelines (docs/pipelines.md) — created from a definition
//! checked whole (a 422 `invalid-pipeline` lists every problem with its line), listed, read
//! and removed.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::path::{ClusterPath, PipelinePath};
use super::{AppState, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::request::CreatePipeline;
use bigmgr_core::view::PipelineView;

read_routes! {
    /// `GET /clusters/{cluster}/pipelines` → the cluster's pipelines, oldest first.
    list("/clusters/{cluster}/pipelines", "pipelines", ClusterPath, PageQuery)
        -> [Page<PipelineView>]: "A page of pipelines",
        404: "No such cluster",
        |s, p, q| q.page_by_id(
            s.mgr.pipelines(&p.cluster).await?.into_iter().map(PipelineView::from).collect(),
            |v| v.id.0,
        )?;

    /// `GET /clusters/{cluster}/pipelines/{pipeline}`.
    get("/clusters/{cluster}/pipelines/{pipeline}", "pipelines", PipelinePath)
        -> [PipelineView]: "The pipeline",
        404: "No such cluster or pipeline",
        |s, p| s.mgr.pipeline(&p.cluster, &p.pipeline).await?.into();
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/pipelines/{pipeline}` → 204; a running one is a 409.
    remove("/clusters/{cluster}/pipelines/{pipeline}", "pipelines", PipelinePath):
        204: "Removed",
        404: "No such cluster or pipeline",
        409: "The pipeline runs: stop it first",
        |a, p| a.remove_pipeline(&p.cluster, &p.pipeline);
}

/// `POST /clusters/{cluster}/pipelines {"definition"}` → 201 with the pipeline, CREATED.
#[utoipa::path(post, path = "/clusters/{cluster}/pipelines", tag = "pipelines",
    params(ClusterPath),
    request_body = CreatePipeline,
    responses(
        (status = 201, description = "The new pipeline", body = PipelineView,
            headers(("Location" = String, description = "The pipeline's URL"))),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A pipeline of that name exists"),
        (status = 422, description = "The definition does not check: every problem, with its line"),
    ))]
pub async fn create(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<CreatePipeline>,
) -> ApiResult<Response> {
    let pipeline = c
        .acting()
        .create_pipeline(&p.cluster, &body.definition)
        .await?;
    let url = p.url(&format!("/pipelines/{}", pipeline.name));
    Ok(created(url, PipelineView::from(pipeline)))
}
