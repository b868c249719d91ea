//! `/clusters/{cluster}/jobs` and `/jobs/{job}`: submit jobs, follow them stage by stage and
//! task by task, control them (cancel, pause, resume, retry) and read task logs.

use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::schema;
use super::{AppState, PREFIX};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bigmgr_core::Manager;
use bigmgr_core::model::{
    ClusterId, HostId, Job, JobFilter, JobId, JobOptions, JobRequest, JobState, LogStream, StageId,
    StageState, Target, TaskId, TaskState,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /clusters/{cluster}/jobs`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// `install`, `configure`, `start`, `stop`, `restart`, `status`, `check`, `remove`,
    /// `deploy`, or a custom command of the stack.
    pub command: String,
    /// `"cluster"`, `{"service": "zk"}`, `{"component": {"service", "component"}}`,
    /// `{"hosts": [..]}` or `{"units": [..]}`.
    #[schema(value_type = schema::TargetSchema)]
    pub target: Target,
    /// Parallelism, batches, failure tolerance, pipelining.
    #[serde(default)]
    #[schema(value_type = schema::JobOptionsSchema)]
    pub options: JobOptions,
}

/// A job without its stages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: JobId,
    /// Its cluster's name.
    pub cluster: String,
    /// The command.
    pub command: String,
    /// The target.
    #[schema(value_type = schema::TargetSchema)]
    pub target: Target,
    /// How it runs.
    #[schema(value_type = schema::JobOptionsSchema)]
    pub options: JobOptions,
    /// Its state.
    #[schema(value_type = schema::JobStateSchema)]
    pub state: JobState,
    /// When it was submitted (ms since the epoch).
    pub created_at: i64,
    /// When it first ran.
    pub started_at: Option<i64>,
    /// When it reached a final state.
    pub finished_at: Option<i64>,
}

/// A job with its stages and their tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDetailView {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Its stages in a topological order.
    pub stages: Vec<StageView>,
}

/// A stage with its tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: StageId,
    /// `START hello/hello_server`.
    pub name: String,
    /// The component.
    pub component: String,
    /// The command its tasks run.
    pub command: String,
    /// Its state.
    #[schema(value_type = schema::StageStateSchema)]
    pub state: StageState,
    /// The stages it waits for.
    #[schema(value_type = Vec<i64>)]
    pub after: Vec<StageId>,
    /// Its tasks, one per unit.
    pub tasks: Vec<TaskView>,
}

/// A task of a stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    /// Its id (for its log: `/jobs/{job}/tasks/{task}/log`).
    #[schema(value_type = i64)]
    pub id: TaskId,
    /// Its host's name.
    pub host: String,
    /// Its state.
    #[schema(value_type = schema::TaskStateSchema)]
    pub state: TaskState,
    /// The current attempt, from 1.
    pub attempt: u32,
    /// The script's exit code, once finished.
    pub exit_code: Option<i32>,
    /// Why it ended as it did, where there is more to say than the state.
    pub message: Option<String>,
    /// When the current attempt started.
    pub started_at: Option<i64>,
    /// When the current attempt finished.
    pub finished_at: Option<i64>,
}

/// The answer of `GET /jobs/{job}/tasks/{task}/log`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskLog {
    /// The lines, by attempt then line number.
    pub lines: Vec<LogLineView>,
}

/// One line a task's script wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogLineView {
    /// The attempt that wrote it.
    pub attempt: u32,
    /// Its number within the attempt's output.
    pub seq: u64,
    /// `stdout` or `stderr`.
    #[schema(value_type = schema::LogStreamSchema)]
    pub stream: LogStream,
    /// When it was read (ms since the epoch).
    pub at: i64,
    /// The text.
    pub line: String,
}

/// The query of `GET /jobs/{job}/tasks/{task}/log`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this attempt's lines.
    #[param(minimum = 0)]
    pub attempt: Option<u32>,
}

async fn cluster_name(mgr: &Manager, id: ClusterId) -> ApiResult<String> {
    Ok(mgr
        .clusters()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.name)
        .unwrap_or_else(|| id.to_string()))
}

pub(super) fn view(job: Job, cluster: String) -> JobView {
    JobView {
        id: job.id,
        cluster,
        command: job.command,
        target: job.target,
        options: job.options,
        state: job.state,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
    }
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
    Path(cluster): Path<String>,
    Json(body): Json<SubmitJob>,
) -> ApiResult<Response> {
    let job = s
        .mgr
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
        Json(view(job, cluster)),
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
    #[param(value_type = Option<schema::JobStateSchema>)]
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
    let c = s.mgr.cluster(&cluster).await?;
    // One more than the page, to know whether another follows.
    let filter = JobFilter {
        cluster: Some(c.id),
        states: q.state.into_iter().collect(),
        after: after.map(JobId),
        limit: Some(limit as u32 + 1),
    };
    let jobs = s.mgr.jobs(&filter).await?;
    let page = PageQuery {
        limit: Some(limit as u32),
        after: None,
    }
    .page_by_id(jobs, |j| j.id.0)?;
    Ok(Json(page.map(|j| view(j, c.name.clone()))))
}

/// `GET /jobs/{job}` → the job with its stages and tasks.
#[utoipa::path(get, path = "/jobs/{job}", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job with its stages and their tasks", body = JobDetailView),
        (status = 404, description = "No such job"),
    ))]
pub async fn get(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobDetailView>> {
    let detail = s.mgr.job(JobId(id)).await?;
    let cluster = cluster_name(&s.mgr, detail.job.cluster).await?;
    let hosts: HashMap<HostId, String> = s
        .mgr
        .store()
        .list_hosts(detail.job.cluster)
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    let mut tasks: HashMap<StageId, Vec<TaskView>> = HashMap::new();
    for t in detail.tasks {
        tasks.entry(t.stage).or_default().push(TaskView {
            id: t.id,
            host: hosts
                .get(&t.host)
                .cloned()
                .unwrap_or_else(|| t.host.to_string()),
            state: t.state,
            attempt: t.attempt,
            exit_code: t.exit_code,
            message: t.message,
            started_at: t.started_at,
            finished_at: t.finished_at,
        });
    }
    let stages = detail
        .stages
        .into_iter()
        .map(|st| StageView {
            tasks: tasks.remove(&st.id).unwrap_or_default(),
            id: st.id,
            name: st.name,
            component: st.component,
            command: st.command,
            state: st.state,
            after: st.after,
        })
        .collect();
    Ok(Json(JobDetailView {
        job: view(detail.job, cluster),
        stages,
    }))
}

/// The answer of a control action: the job as it is now.
async fn controlled(s: &AppState, job: bigmgr_core::Result<Job>) -> ApiResult<Json<JobView>> {
    let job = job?;
    let cluster = cluster_name(&s.mgr, job.cluster).await?;
    Ok(Json(view(job, cluster)))
}

/// `POST /jobs/{job}/cancel`: pending tasks are canceled, running scripts stopped.
#[utoipa::path(post, path = "/jobs/{job}/cancel", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Canceled or canceling: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn cancel(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.cancel(JobId(id)).await).await
}

/// `POST /jobs/{job}/pause`: nothing new is dispatched.
#[utoipa::path(post, path = "/jobs/{job}/pause", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Paused: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn pause(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.pause(JobId(id)).await).await
}

/// `POST /jobs/{job}/resume`: a paused job goes on.
#[utoipa::path(post, path = "/jobs/{job}/resume", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Running again: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn resume(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.resume(JobId(id)).await).await
}

/// `POST /jobs/{job}/retry`: a failed or canceled job's failed and canceled tasks run again.
#[utoipa::path(post, path = "/jobs/{job}/retry", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Queued again: the job as it is now", body = JobView),
        (status = 404, description = "No such job"),
        (status = 409, description = "The job's state does not allow it"),
    ))]
pub async fn retry(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    controlled(&s, s.mgr.retry(JobId(id)).await).await
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
        .map(|l| LogLineView {
            attempt: l.attempt,
            seq: l.seq,
            stream: l.stream,
            at: l.at,
            line: l.line,
        })
        .collect();
    Ok(Json(TaskLog { lines }))
}
