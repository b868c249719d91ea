//! `/clusters/{cluster}/jobs` and `/jobs/{job}`: submit jobs, follow them stage by stage and
//! task by task, control them (cancel, pause, resume, retry) and read task logs.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::path::{ClusterPath, JobPath, TaskPath};
use super::{AppState, PREFIX, located};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::model::{JobFilter, JobId, JobRequest, JobState, TaskId};
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
    params(ClusterPath),
    request_body = SubmitJob,
    responses(
        (status = 202, description = "The queued job", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 404, description = "No such cluster, or the target names something unknown"),
        (status = 422, description = "The command or target is not valid, or there is nothing to do"),
    ))]
pub async fn submit(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<SubmitJob>,
) -> ApiResult<Response> {
    let job = c
        .acting()
        .submit(JobRequest {
            cluster: p.cluster.clone(),
            target: body.target,
            command: body.command,
            options: body.options,
        })
        .await?;
    let location = format!("{PREFIX}/jobs/{}", job.id);
    Ok(located(
        StatusCode::ACCEPTED,
        location,
        JobView::of(job, &p.cluster),
    ))
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
    /// `oldest` first (the default) or `newest` first; `after` follows the order.
    pub order: Option<JobOrder>,
}

/// The order of a job list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobOrder {
    /// Ascending ids: the order they were submitted in.
    Oldest,
    /// Descending ids: the latest first, as a console lists them.
    Newest,
}

/// `GET /clusters/{cluster}/jobs[?state=S][&order=newest]` → the cluster's jobs, oldest first
/// (or newest first), a page at a time.
#[utoipa::path(get, path = "/clusters/{cluster}/jobs", tag = "jobs",
    params(ClusterPath, JobsQuery),
    responses(
        (status = 200, description = "A page of jobs", body = Page<JobView>),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Path(p): Path<ClusterPath>,
    Query(q): Query<JobsQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let limit = page.limit()?;
    let after = page.after_id()?;
    // One more than the page, to know whether another follows.
    let filter = JobFilter {
        states: q.state.into_iter().collect(),
        after: after.map(JobId),
        limit: Some(limit as u32 + 1),
        newest_first: q.order == Some(JobOrder::Newest),
        ..JobFilter::default()
    };
    let jobs = s.mgr.job_views(&p.cluster, filter).await?;
    let page = PageQuery {
        limit: Some(limit as u32),
        after: None,
    }
    .page_by_id(jobs, |j| j.id.0)?;
    Ok(Json(page))
}

read_routes! {
    /// `GET /jobs/{job}` → the job with its stages and tasks.
    get("/jobs/{job}", "jobs", JobPath)
        -> [JobDetailView]: "The job with its stages and their tasks",
        404: "No such job",
        |s, p| s.mgr.job_view(JobId(p.job)).await?;
}

/// The job control routes, one per action of core's [`Acting`](bigmgr_core::manager::Acting):
/// `POST /jobs/{job}/<action>` answers the job as it is after the action, 409 when its state
/// does not allow it.
macro_rules! control_routes {
    ($($(#[$doc:meta])* $action:ident, $path:tt, $done:tt;)*) => {$(
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "jobs",
            params(JobPath),
            responses(
                (status = 200, description = $done, body = JobView),
                (status = 404, description = "No such job"),
                (status = 409, description = "The job's state does not allow it"),
            ))]
        pub async fn $action(c: Caller, Path(p): Path<JobPath>) -> ApiResult<Json<JobView>> {
            let job = c.acting().$action(JobId(p.job)).await?;
            Ok(Json(c.mgr.job_summary(job.id).await?))
        }
    )*};
}

control_routes! {
    /// `POST /jobs/{job}/cancel`: pending tasks are canceled, running scripts stopped.
    cancel, "/jobs/{job}/cancel", "Canceled or canceling: the job as it is now";
    /// `POST /jobs/{job}/pause`: nothing new is dispatched.
    pause, "/jobs/{job}/pause", "Paused: the job as it is now";
    /// `POST /jobs/{job}/resume`: a paused job goes on.
    resume, "/jobs/{job}/resume", "Running again: the job as it is now";
    /// `POST /jobs/{job}/retry`: a failed or canceled job's failed and canceled tasks run again.
    retry, "/jobs/{job}/retry", "Queued again: the job as it is now";
}

/// `GET /jobs/{job}/tasks/{task}/log[?attempt=N]` → `{"lines": [...]}`, the whole log.
#[utoipa::path(get, path = "/jobs/{job}/tasks/{task}/log", tag = "jobs",
    params(TaskPath, LogQuery),
    responses(
        (status = 200, description = "The task's log lines, by attempt then line number", body = TaskLog),
        (status = 404, description = "No such job, or no such task in it"),
    ))]
pub async fn task_log(
    State(s): State<AppState>,
    Path(p): Path<TaskPath>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<TaskLog>> {
    let lines = s
        .mgr
        .job_task_log(JobId(p.job), TaskId(p.task), q.attempt)
        .await?
        .into_iter()
        .map(LogLineView::from)
        .collect();
    Ok(Json(TaskLog { lines }))
}
