//! `/clusters/{cluster}/hosts`: hosts with their state, facts, metrics and units.

use super::auth::Caller;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery, in_range};
use super::path::{ClusterPath, HostPath};
use super::{AppState, PREFIX, created, located};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::request::{AddHost, BootstrapHosts, UpdateHost};
use bigmgr_core::view::JobView;
use bigmgr_core::view::{HostSeriesView, HostTaskView, HostView};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

/// The longest window of a series: as far back as the store keeps samples.
const MAX_WINDOW_S: u32 = bigmgr_core::view::MAX_SERIES_WINDOW_S;
const _: () = assert!(
    MAX_WINDOW_S == 3600,
    "the documented maximum of `window` below is 3600"
);

/// The query of the metric series: how far back, and how many points at most per host.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Seconds back from now, 60 to 3600 (what the store keeps); default 900.
    #[param(minimum = 60, maximum = 3600)]
    pub window: Option<u32>,
    /// Points per host at most, 1 to 500 (samples are averaged per slice of the window);
    /// default 30.
    #[param(minimum = 1, maximum = 500)]
    pub points: Option<u32>,
}

impl SeriesQuery {
    fn window(&self) -> Result<Duration, ApiError> {
        let s = in_range("window", self.window, 60..=MAX_WINDOW_S, 900)?;
        Ok(Duration::from_secs(u64::from(s)))
    }

    fn points(&self) -> Result<usize, ApiError> {
        Ok(in_range("points", self.points, 1..=500, 30)? as usize)
    }
}

/// The query of a host's tasks.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// How many, newest first: 1 to 200; default 20.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

read_routes! {
    /// `GET /clusters/{cluster}/hosts` → the cluster's hosts, oldest first, a page at a time.
    list("/clusters/{cluster}/hosts", "hosts", ClusterPath, PageQuery)
        -> [Page<HostView>]: "A page of hosts",
        404: "No such cluster",
        |s, p, q| q.page_by_id(s.mgr.host_views(&p.cluster).await?, |h| h.id.0)?;

    /// `GET /clusters/{cluster}/hosts/{host}`.
    get("/clusters/{cluster}/hosts/{host}", "hosts", HostPath)
        -> [HostView]: "The host",
        404: "No such cluster or host",
        |s, p| s.mgr.host_view(&p.cluster, &p.host).await?;

    /// `GET /clusters/{cluster}/metrics?window=&points=` → every host's recent CPU and memory
    /// use (heartbeat averages), by host id: one call for a whole hosts table.
    metrics("/clusters/{cluster}/metrics", "hosts", ClusterPath, SeriesQuery)
        -> [Vec<HostSeriesView>]: "One series per host",
        404: "No such cluster",
        |s, p, q| s.mgr.host_series(&p.cluster, q.window()?, q.points()?).await?;

    /// `GET /clusters/{cluster}/hosts/{host}/metrics?window=&points=` → one host's recent CPU
    /// and memory use.
    host_metrics("/clusters/{cluster}/hosts/{host}/metrics", "hosts", HostPath, SeriesQuery)
        -> [HostSeriesView]: "The host's series",
        404: "No such cluster or host",
        |s, p, q| s.mgr.one_host_series(&p.cluster, &p.host, q.window()?, q.points()?).await?;

    /// `GET /clusters/{cluster}/hosts/{host}/tasks?limit=` → the latest tasks on the host,
    /// newest first, with their job, command, service and component.
    host_tasks("/clusters/{cluster}/hosts/{host}/tasks", "hosts", HostPath, TasksQuery)
        -> [Vec<HostTaskView>]: "The tasks, newest first",
        404: "No such cluster or host",
        |s, p, q| s.mgr.host_task_views(&p.cluster, &p.host, in_range("limit", q.limit, 1..=200, 20)?).await?;
}

/// `PATCH /clusters/{cluster}/hosts/{host}` `{"address"}` → the host with its new address
/// (admin). Relations of its units tell their other sides, and started units whose files change
/// are reconfigured by automatic jobs.
#[utoipa::path(patch, path = "/clusters/{cluster}/hosts/{host}", tag = "hosts",
    params(HostPath),
    request_body = UpdateHost,
    responses(
        (status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such cluster or host"),
        (status = 422, description = "The address is not valid"),
    ))]
pub async fn update(
    c: Caller,
    Path(p): Path<HostPath>,
    Json(body): Json<UpdateHost>,
) -> ApiResult<Json<HostView>> {
    let acting = c.acting();
    acting
        .set_host_address(&p.cluster, &p.host, &body.address)
        .await?;
    Ok(Json(c.mgr.host_view(&p.cluster, &p.host).await?))
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/hosts/{host}` → 204. Refused (409) while a unit of a service
    /// instance is placed on it. Its agent is refused from then on; its name can be used again.
    remove("/clusters/{cluster}/hosts/{host}", "hosts", HostPath):
        204: "Removed",
        404: "No such cluster or host",
        409: "Units of service instances are placed on the host",
        |a, p| a.remove_host(&p.cluster, &p.host);
}

/// `POST /clusters/{cluster}/hosts` → 201 with the host. An agent started later with the same
/// `--name` and a join token of the cluster claims it.
#[utoipa::path(post, path = "/clusters/{cluster}/hosts", tag = "hosts",
    params(ClusterPath),
    request_body = AddHost,
    responses(
        (status = 201, description = "The new host", body = HostView,
            headers(("Location" = String, description = "The host's URL"))),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A host of that name exists"),
        (status = 422, description = "The name or address is not valid"),
    ))]
pub async fn add(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<AddHost>,
) -> ApiResult<Response> {
    let acting = c.acting();
    let h = acting
        .add_host(&p.cluster, &body.name, &body.address)
        .await?;
    let view = c.mgr.host_view(&p.cluster, &h.name).await?;
    Ok(created(p.url(&format!("/hosts/{}", h.name)), view))
}

/// `POST /clusters/{cluster}/hosts/bootstrap` → 202 with the `bootstrap` job: for each machine
/// the server logs in over SSH (checking its host key), checks the OS and architecture, copies
/// its own `bigmgr-agent`, writes the agent's config with a fresh join token and this
/// server's URL, starts it (systemd, or a detached process) and waits for it to join; one
/// task per host, each failing alone. The key or password is held in memory for that job
/// only, never stored or returned.
#[utoipa::path(post, path = "/clusters/{cluster}/hosts/bootstrap", tag = "hosts",
    params(ClusterPath),
    request_body = BootstrapHosts,
    responses(
        (status = 202, description = "The queued bootstrap job", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A host is in another cluster, at another address, or being bootstrapped already"),
        (status = 422, description = "A field is not valid (the problem names it)"),
    ))]
pub async fn bootstrap(
    c: Caller,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Path(p): Path<ClusterPath>,
    Json(body): Json<BootstrapHosts>,
) -> ApiResult<Response> {
    let scheme = if c.mgr.ca_fingerprint().is_some() {
        "https"
    } else {
        "http"
    };
    let server = super::authority(&headers, &uri).map(|a| format!("{scheme}://{a}"));
    let job = c
        .acting()
        .bootstrap_hosts(&p.cluster, &body, server.as_deref())
        .await?;
    Ok(located(
        StatusCode::ACCEPTED,
        format!("{PREFIX}/jobs/{}", job.id),
        JobView::of(job, &p.cluster),
    ))
}
