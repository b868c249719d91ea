//! `/clusters/{cluster}/jobs` and `/jobs/{job}`: submit jobs, follow them stage by stage and
//! task by task, control them (cancel, pause, resume, retry) and read task logs.

use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::{AppState, PREFIX};
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bigmgr_core::auth::Actor;
use bigmgr_core::model::{Job, JobId, JobRequest, JobState, TaskId};
use bigmgr_core::request::SubmitJob;
use bigmgr_core::view::{JobDetailView, JobView, LogLineView, TaskLog};
use serde::Deserialize;
use utoipa::IntoParams;

/// The query of `GET /jobs/{job}/tasks/{task}/log`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this attempt's lines.
    #[param(minimum = 0)]
    pub attempt: Option<u32>,
}

/// `POST /clusters/{cluster}/jobs` → 202 with the queued job and its location.
#[utoipa::path(post, path = "/clusters/{cluster}/jobs", tag = "jobs",
    params(("cluster" = String, Path, description = "The cluster's name")),
    request_body = SubmitJob,
    responses(
        (status = 202, description = "The queued job", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 404, description = "No such cluster, or the target names something unknown"),
        (status = 422, description = "The command or target is not valid, or there is nothing to do"),
    ))]
pub async fn submit(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(cluster): Path<String>,
    Json(body): Json<SubmitJob>,
) -> ApiResult<Response> {
    let job = s
        .mgr
        .acting(actor)
        .submit(JobRequest {
            cluster: cluster.clone(),
            target: body.target,
            command: body.command,
            options: body.options,
        })
        .await?;
    let location = format!("{PREFIX}/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(JobView::of(job, &cluster)),
    )
        .into_response())
}

/// The query of `GET /clusters/{cluster}/jobs`: a page, and optionally one state.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The previous page's `next`: the jobs after it (an id).
    #[param(pattern = r"^-?[0-9]{1,18}$")]
    pub after: Option<String>,
    /// Only jobs in this state (`RUNNING`, `FAILED` …).
    pub state: Option<JobState>,
}

/// `GET /clusters/{cluster}/jobs[?state=S]` → the cluster's jobs, oldest first, a page at a
/// time.
#[utoipa::path(get, path = "/clusters/{cluster}/jobs", tag = "jobs",
    params(("cluster" = String, Path, description = "The cluster's name"), JobsQuery),
    responses(
        (status = 200, description = "A page of jobs", body = Page<JobView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Path(cluster): Path<String>,
    Query(q): Query<JobsQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let limit = page.limit()?;
    let after = page.after_id()?;
    // One more than the page, to know whether another follows.
    let jobs = s
        .mgr
        .job_views(
            &cluster,
            q.state.into_iter().collect(),
            after.map(JobId),
            Some(limit as u32 + 1),
        )
        .await?;
    let page = PageQuery {
        limit: Some(limit as u32),
        after: None,
    }
    .page_by_id(jobs, |j| j.id.0)?;
    Ok(Json(page))
}

/// `GET /jobs/{job}` → the job with its stages and tasks.
#[utoipa::path(get, path = "/jobs/{job}", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job with its stages and their tasks", body = JobDetailView),
        (status = 404, description = "No such job"),
    ))]
pub async fn get(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobDetailView>> {
    Ok(Json(s.mgr.job_view(JobId(id)).await?))
}

/// The answer of a control action: the job as it is now.
async fn controlled(s: &AppState, job: bigmgr_core::Result<Job>) -> ApiResult<Json<JobView>> {
    Ok(Json(s.mgr.job_summary(job?.id).await?))
}

/// `POST /jobs/{job}/cancel`: pending tasks are canceled, running scripts stopped.
#[utoipa::path(post, path = "/jobs/{job}/cancel", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Canceled or canceling: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn cancel(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.acting(actor).cancel(JobId(id)).await).await
}

/// `POST /jobs/{job}/pause`: nothing new is dispatched.
#[utoipa::path(post, path = "/jobs/{job}/pause", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Paused: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn pause(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.acting(actor).pause(JobId(id)).await).await
}

/// `POST /jobs/{job}/resume`: a paused job goes on.
#[utoipa::path(post, path = "/jobs/{job}/resume", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Running again: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn resume(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.acting(actor).resume(JobId(id)).await).await
}

/// `POST /jobs/{job}/retry`: a failed or canceled job's failed and canceled tasks run again.
#[utoipa::path(post, path = "/jobs/{job}/retry", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Queued again: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn retry(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.acting(actor).retry(JobId(id)).await).await
}

/// `GET /jobs/{job}/tasks/{task}/log[?attempt=N]` → `{"lines": [...]}`, the whole log.
#[utoipa::path(get, path = "/jobs/{job}/tasks/{task}/log", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id"), ("task" = i64, Path, description = "The task's id"), LogQuery),
    responses(
        (status = 200, description = "The task's log lines, by attempt then line number", body = TaskLog),
        (status = 404, description = "No such job, or no such task in it"),
    ))]
pub async fn task_log(
    State(s): State<AppState>,
    Path((job, task)): Path<(i64, i64)>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<TaskLog>> {
    let lines = s
        .mgr
        .job_task_log(JobId(job), TaskId(task), q.attempt)
        .await?
        .into_iter()
        .map(LogLineView::from)
        .collect();
    Ok(Json(TaskLog { lines }))
}
