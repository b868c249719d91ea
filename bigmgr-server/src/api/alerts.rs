//! Alert routes: a cluster's alerts as they stand, and their history.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::in_range;
use super::path::{AlertTargetPath, ClusterPath};
use super::{AppState, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::model::AlertChangeId;
use bigmgr_core::view::{AlertChangeView, AlertTargetView, AlertView, DeliveryView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A webhook target: `POST /clusters/{cluster}/alert-targets`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTargetBody {
    /// Its name, unique in the cluster.
    pub name: String,
    /// The URL to POST notifications to (http:// or https://); the body is a
    /// `NotificationView`.
    pub url: String,
}

/// `?limit=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// How many, newest first: 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `?firing=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts that are not OK; default false.
    pub firing: Option<bool>,
}

/// `?after=&limit=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only changes after this one (the last id of the previous page).
    pub after: Option<i64>,
    /// How many at most: 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

read_routes! {
    /// `GET /clusters/{cluster}/alerts` → every alert of the cluster as it stands (`?firing=true`:
    /// only those not OK).
    list("/clusters/{cluster}/alerts", "alerts", ClusterPath, AlertsQuery)
        -> [Vec<AlertView>]: "The alerts, by id",
        404: "No such cluster",
        |s, p, q| s.mgr.alerts(&p.cluster, q.firing.unwrap_or(false)).await?;

    /// `GET /clusters/{cluster}/alerts/history` → every change of the cluster's alerts, oldest
    /// first, a page at a time (`?after=<id>&limit=`).
    history("/clusters/{cluster}/alerts/history", "alerts", ClusterPath, HistoryQuery)
        -> [Vec<AlertChangeView>]: "The changes, oldest first",
        404: "No such cluster",
        |s, p, q| s.mgr.alert_history(
            &p.cluster,
            q.after.map(AlertChangeId),
            Some(in_range("limit", q.limit, 1..=1000, 100)?),
        ).await?;
}

read_routes! {
    /// `GET /clusters/{cluster}/alert-targets` → the webhooks the cluster's alerts go to.
    targets("/clusters/{cluster}/alert-targets", "alerts", ClusterPath)
        -> [Vec<AlertTargetView>]: "The targets, by age",
        404: "No such cluster",
        |s, p| s.mgr.alert_targets(&p.cluster).await?;

    /// `GET /clusters/{cluster}/alerts/deliveries` → every attempt to deliver a notification,
    /// newest first (`?limit=`).
    deliveries("/clusters/{cluster}/alerts/deliveries", "alerts", ClusterPath, LogQuery)
        -> [Vec<DeliveryView>]: "The attempts, newest first",
        404: "No such cluster",
        |s, p, q| s.mgr.deliveries(&p.cluster, in_range("limit", q.limit, 1..=1000, 100)?).await?;
}

/// `POST /clusters/{cluster}/alert-targets` → 201: from now on every round of checks that
/// changes one of the cluster's alerts POSTs a `NotificationView` to the URL (retried with
/// backoff until it answers 2xx; `GET …/alerts/deliveries` logs every attempt).
#[utoipa::path(post, path = "/clusters/{cluster}/alert-targets", tag = "alerts",
    params(ClusterPath),
    request_body = AlertTargetBody,
    responses(
        (status = 201, description = "The target", body = AlertTargetView),
        (status = 404, description = "No such cluster"),
        (status = 409, description = "A target of that name exists"),
        (status = 422, description = "A bad name or URL"),
    ))]
pub async fn add_target(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<AlertTargetBody>,
) -> ApiResult<Response> {
    let t = c
        .acting()
        .add_alert_target(&p.cluster, &body.name, &body.url)
        .await?;
    // A target's name is a checked name: it needs no escaping in a path.
    let location = p.url(&format!("/alert-targets/{}", t.name));
    Ok(created(location, t))
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/alert-targets/{name}` → 204 (what waits to be sent to it
    /// goes too).
    remove_target("/clusters/{cluster}/alert-targets/{name}", "alerts", AlertTargetPath):
        204: "Removed",
        404: "No such cluster or target",
        |a, p| a.remove_alert_target(&p.cluster, &p.name);
}
