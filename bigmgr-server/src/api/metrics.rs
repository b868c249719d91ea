//! `GET /metrics`: bigmgr's own metrics for Prometheus, behind a token like every other read
//! (any role; give Prometheus a viewer's token as its bearer token).

use super::auth::Caller;
use super::error::ApiResult;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` → every metric in the OpenMetrics text format: REST requests and their
/// latency by route, jobs and tasks by state, task durations by command, dispatch latency,
/// store batch time, hosts by state, connected agents, the oldest heartbeat, whether this
/// server runs the engine, and each host's heartbeat averages.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "The metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No token, or not a valid one"),
    ))]
pub async fn scrape(c: Caller) -> ApiResult<Response> {
    let text = c.mgr.metrics_text().await?;
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response())
}
