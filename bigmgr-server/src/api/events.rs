//! `GET /jobs/{job}/events`: a job's live events ([`bigmgr_core::Manager::job_events`]) as
//! Server-Sent Events, each named by its kind with its payload as JSON data, ending with `end`
//! once the job is final.
//!
//! | event | data |
//! |---|---|
//! | `job` | `{"id", "state"}` |
//! | `task` | `{"id", "state"}` |
//! | `log` | `{"task", "attempt", "seq", "stream", "at", "line"}` |
//! | `end` | `{"id", "state"}`, the last event |
//! | `error` | a problem (`{"type", "title", "status", "detail"}`), then the stream ends |
//!
//! `GET /clusters/{cluster}/events`: a cluster's changes ([`bigmgr_core::Manager::cluster_events`])
//! as `changed` events (`{"topics": ["hosts", "units", …]}`: re-read those lists), until the
//! client goes away; `error` (a problem) if the store fails or the cluster is deleted.

use super::AppState;
use super::error::{ApiError, ApiResult, Path};
use super::path::{ClusterPath, JobPath};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use bigmgr_core::model::JobId;
use std::convert::Infallible;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// The SSE stream of one job.
type EventStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Event, Infallible>> + Send>>;

/// `GET /jobs/{job}/events` → `text/event-stream` of `job`, `task`, `log` and a final `end`.
#[utoipa::path(get, path = "/jobs/{job}/events", tag = "jobs",
    params(JobPath),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Server-Sent Events: `job` (JobEvent), `task` (TaskEvent), `log` (LogEvent) as they happen, \
                then `end` (JobEvent) once the job is final; `error` (Problem) if the store fails"),
        (status = 404, description = "No such job"),
    ))]
pub async fn job_events(
    State(s): State<AppState>,
    Path(p): Path<JobPath>,
) -> ApiResult<Sse<KeepAliveStream<EventStream>>> {
    let rx = s.mgr.job_events(JobId(p.job)).await?;
    Ok(sse(rx, |e| {
        Event::default().event(e.name()).json_data(e.data())
    }))
}

/// `GET /clusters/{cluster}/events` → `text/event-stream` of `changed` events.
#[utoipa::path(get, path = "/clusters/{cluster}/events", tag = "clusters",
    params(ClusterPath),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Server-Sent Events: `changed` (ClusterEvent) naming the lists of the cluster that changed \
                (hosts, services, units, configs, relations, jobs), as they change; `error` (Problem) if the store \
                fails or the cluster is deleted"),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn cluster_events(
    State(s): State<AppState>,
    Path(p): Path<ClusterPath>,
) -> ApiResult<Sse<KeepAliveStream<EventStream>>> {
    let rx = s.mgr.cluster_events(&p.cluster).await?;
    Ok(sse(rx, |e| Event::default().event("changed").json_data(e)))
}

/// The SSE answer of a stream of core events: each made an event by `event`, a failure an
/// `error` event with its problem.
fn sse<T: Send + 'static>(
    rx: mpsc::Receiver<bigmgr_core::Result<T>>,
    event: impl Fn(T) -> Result<Event, axum::Error> + Send + 'static,
) -> Sse<KeepAliveStream<EventStream>> {
    let events = ReceiverStream::new(rx).map(move |e| {
        let event = match e {
            Ok(e) => event(e),
            Err(e) => Event::default()
                .event("error")
                .json_data(ApiError::from(e).problem()),
        };
        Ok(event.unwrap_or_else(|e| Event::default().event("error").data(e.to_string())))
    });
    let stream: EventStream = Box::pin(events);
    Sse::new(stream).keep_alive(KeepAlive::default())
}
