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
use bigmgr_core::request::{CreatePipeline, ScalePipeline};
use bigmgr_core::view::{PipelineLogLine, PipelineStatus, PipelineView, PushedBatch};

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

/// The pipeline control routes, one per action of core's
/// [`Acting`](bigmgr_core::manager::Acting): `POST /clusters/{cluster}/pipelines/{pipeline}/
/// <action>` answers the pipeline as it is after the action, 409 when its state does not allow
/// it.
macro_rules! control_routes {
    ($($(#[$doc:meta])* $action:ident, $method:ident, $path:tt, $done:tt;)*) => {$(
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "pipelines",
            params(PipelinePath),
            responses(
                (status = 200, description = $done, body = PipelineView),
                (status = 404, description = "No such cluster or pipeline"),
                (status = 409, description = "The pipeline's state does not allow it"),
            ))]
        pub async fn $action(c: Caller, Path(p): Path<PipelinePath>) -> ApiResult<Json<PipelineView>> {
            let pipeline = c.acting().$method(&p.cluster, &p.pipeline).await?;
            Ok(Json(pipeline.into()))
        }
    )*};
}

control_routes! {
    /// `POST …/start`: a pipeline that is not running (CREATED, STOPPED, FAILED or FINISHED)
    /// runs; what was processed before stays processed.
    start, start_pipeline, "/clusters/{cluster}/pipelines/{pipeline}/start", "RUNNING: the pipeline as it is now";
    /// `POST …/pause`: no node takes a new batch; batches being processed finish.
    pause, pause_pipeline, "/clusters/{cluster}/pipelines/{pipeline}/pause", "PAUSED: the pipeline as it is now";
    /// `POST …/resume`: a paused pipeline goes on.
    resume, resume_pipeline, "/clusters/{cluster}/pipelines/{pipeline}/resume", "RUNNING again: the pipeline as it is now";
}

/// How `POST …/stop` stops.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StopQuery {
    /// `true`: stop now — batches being processed go back to their channels and their results
    /// are not taken. Default: drain — the sources take nothing more, what they took is
    /// processed, then the pipeline is STOPPED.
    #[serde(default)]
    pub abort: bool,
}

/// `POST …/stop[?abort=true]`: drains (DRAINING, then STOPPED) or aborts (STOPPED).
#[utoipa::path(post, path = "/clusters/{cluster}/pipelines/{pipeline}/stop", tag = "pipelines",
    params(PipelinePath, StopQuery),
    responses(
        (status = 200, description = "DRAINING or STOPPED: the pipeline as it is now", body = PipelineView),
        (status = 404, description = "No such cluster or pipeline"),
        (status = 409, description = "The pipeline is not running"),
    ))]
pub async fn stop(
    c: Caller,
    Path(p): Path<PipelinePath>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Json<PipelineView>> {
    let pipeline = c
        .acting()
        .stop_pipeline(&p.cluster, &p.pipeline, !q.abort)
        .await?;
    Ok(Json(pipeline.into()))
}

/// `POST …/scale {"unit", "replicas"}`: a non-blocking unit runs that many replicas from now
/// on (running or not); nothing is lost or processed twice.
#[utoipa::path(post, path = "/clusters/{cluster}/pipelines/{pipeline}/scale", tag = "pipelines",
    params(PipelinePath),
    request_body = ScalePipeline,
    responses(
        (status = 200, description = "The pipeline with its units' replicas", body = PipelineView),
        (status = 404, description = "No such cluster or pipeline"),
        (status = 422, description = "No such unit, a blocking one, or replicas out of 1 to 64"),
    ))]
pub async fn scale(
    c: Caller,
    Path(p): Path<PipelinePath>,
    Json(body): Json<ScalePipeline>,
) -> ApiResult<Json<PipelineView>> {
    let pipeline = c
        .acting()
        .scale_pipeline(&p.cluster, &p.pipeline, &body.unit, body.replicas)
        .await?;
    Ok(Json(pipeline.into()))
}

read_routes! {
    /// `GET /clusters/{cluster}/pipelines/{pipeline}/status` → its graph with each node's
    /// batches waiting, leased and processed (and in the last minute), from the metastore.
    status("/clusters/{cluster}/pipelines/{pipeline}/status", "pipelines", PipelinePath)
        -> [PipelineStatus]: "The pipeline's graph and each node's batches",
        404: "No such cluster or pipeline",
        |s, p| s.mgr.pipeline_status(&p.cluster, &p.pipeline).await?;

    /// `GET /clusters/{cluster}/pipelines/{pipeline}/logs` → the latest lines of its run on
    /// this server (at most 1000): batches processed, hosts away, how the run ended.
    logs("/clusters/{cluster}/pipelines/{pipeline}/logs", "pipelines", PipelinePath)
        -> [PipelineLogs]: "The run's latest lines, oldest first",
        404: "No such cluster or pipeline",
        |s, p| PipelineLogs { lines: s.mgr.pipeline_logs(&p.cluster, &p.pipeline).await? };
}

/// The lines of a pipeline run's log.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PipelineLogs {
    /// Oldest first.
    pub lines: Vec<PipelineLogLine>,
}

/// `/clusters/{cluster}/pipelines/{pipeline}/sources/{source}`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourcePath {
    /// The cluster's name
    pub cluster: String,
    /// The pipeline's name
    pub pipeline: String,
    /// The name of one of its HTTP sources
    pub source: String,
}

/// The batch id of a push.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// Names the batch, so that a push retried after a lost answer is recorded once: 1 to 128
    /// letters, digits, `.`, `_` or `-`. Without it, the server makes one.
    #[param(max_length = 128)]
    pub batch: Option<String>,
}

/// `POST …/sources/{source}/batches[?batch=ID]` with the batch's bytes as the body (its one
/// file, at most 1 MiB like every body) → 201 with the batch's id, 200 if a batch of that id
/// was pushed before (nothing written again); 503 `busy` while a channel after the source holds
/// its limit (backpressure) or the source's host is away — retry later.
#[utoipa::path(post, path = "/clusters/{cluster}/pipelines/{pipeline}/sources/{source}/batches",
    tag = "pipelines",
    params(SourcePath, PushQuery),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The batch: the bytes of its one file (records, one per line)"),
    responses(
        (status = 201, description = "Recorded", body = PushedBatch),
        (status = 200, description = "A batch of that id was pushed before", body = PushedBatch),
        (status = 404, description = "No such cluster or pipeline"),
        (status = 409, description = "The pipeline is not running (or drains)"),
        (status = 422, description = "No such HTTP source, or a malformed batch id"),
        (status = 503, description = "Busy: a channel after the source is full, or its host is away; retry later"),
    ))]
pub async fn push(
    c: Caller,
    Path(p): Path<SourcePath>,
    Query(q): Query<PushQuery>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<PushedBatch>)> {
    let pushed = c
        .acting()
        .push_batch(
            &p.cluster,
            &p.pipeline,
            &p.source,
            q.batch.as_deref(),
            body.to_vec(),
        )
        .await?;
    let status = if pushed.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(pushed)))
}
