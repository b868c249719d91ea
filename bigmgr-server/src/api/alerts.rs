//! Alert routes: a cluster's alerts as they stand, their history, where they are sent,
//! maintenance windows that silence them, and services' self-healing policies.

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::in_range;
use super::path::{AlertTargetPath, ClusterPath, MaintenancePath, ServicePath};
use super::{AppState, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::manager::{AlertDefinitionView, ChangeAlert};
use bigmgr_core::model::{AlertChangeId, MaintenanceId, TargetKind};
use bigmgr_core::request::{SetHealing, StartMaintenance};
use bigmgr_core::view::{
    AlertChangeView, AlertTargetView, AlertView, DeliveryView, HealingView, MaintenanceView,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A notification target: `POST /clusters/{cluster}/alert-targets`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTargetBody {
    /// Its name, unique in the cluster.
    pub name: String,
    /// `webhook` (the default) or `alertmanager`.
    #[serde(default)]
    pub kind: TargetKind,
    /// A webhook's URL to POST notifications to (http:// or https://; the body is a
    /// `NotificationView`), or an Alertmanager's base URL (`http://host:9093`; its
    /// `/api/v2/alerts` gets the changes as alerts).
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

/// `?firing=&host=&service=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts that are not OK; default false.
    pub firing: Option<bool>,
    /// Only those about this host (its own and its units').
    pub host: Option<String>,
    /// Only those about this service instance (its own and its units').
    pub service: Option<String>,
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
    /// only those not OK; `?host=`, `?service=`: only those about it and its units).
    list("/clusters/{cluster}/alerts", "alerts", ClusterPath, AlertsQuery)
        -> [Vec<AlertView>]: "The alerts, by id",
        404: "No such cluster, host or service",
        |s, p, q| s.mgr.alerts_about(
            &p.cluster,
            q.host.as_deref(),
            q.service.as_deref(),
            q.firing.unwrap_or(false),
        ).await?;

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
        .add_alert_target(&p.cluster, &body.name, body.kind, &body.url)
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

read_routes! {
    /// `GET /clusters/{cluster}/maintenance` → the maintenance windows in progress.
    maintenance("/clusters/{cluster}/maintenance", "alerts", ClusterPath)
        -> [Vec<MaintenanceView>]: "The windows in progress, by id",
        404: "No such cluster",
        |s, p| s.mgr.maintenance(&p.cluster).await?;

    /// `GET /clusters/{cluster}/services/{service}/healing` → the service's self-healing
    /// policy and how it fares.
    healing("/clusters/{cluster}/services/{service}/healing", "alerts", ServicePath)
        -> [HealingView]: "The policy",
        404: "No such cluster or service",
        |s, p| s.mgr.healing(&p.cluster, &p.service).await?;
}

/// `POST /clusters/{cluster}/maintenance` → 201: a host's or a service's alerts (and its
/// units') notify no one until the window ends, and self-healing leaves its units alone; the
/// alerts are still evaluated and shown, marked `silenced`.
#[utoipa::path(post, path = "/clusters/{cluster}/maintenance", tag = "alerts",
    params(ClusterPath),
    request_body = StartMaintenance,
    responses(
        (status = 201, description = "The window", body = MaintenanceView),
        (status = 404, description = "No such cluster, host or service"),
        (status = 422, description = "Not one of host and service, not one of for and until, \
            a bad duration or reason"),
    ))]
pub async fn start_maintenance(
    c: Caller,
    Path(p): Path<ClusterPath>,
    Json(body): Json<StartMaintenance>,
) -> ApiResult<Response> {
    let w = c.acting().start_maintenance(&p.cluster, body).await?;
    let location = p.url(&format!("/maintenance/{}", w.id));
    Ok(created(location, w))
}

remove_routes! {
    /// `DELETE /clusters/{cluster}/maintenance/{id}` → 204: the window ends now.
    end_maintenance("/clusters/{cluster}/maintenance/{id}", "alerts", MaintenancePath):
        204: "Ended",
        404: "No such cluster or window in progress",
        |a, p| a.end_maintenance(&p.cluster, MaintenanceId(p.id));
}

/// `PUT /clusters/{cluster}/services/{service}/healing` → the policy: with `restart`, a unit
/// of the service whose desired state is STARTED and whose status fails for `grace` is
/// restarted by a job of the system's (its reason says why), waiting twice as long before
/// each next attempt, at most `max_per_hour` times an hour; then the `self_heal_gave_up` alert
/// fires.
#[utoipa::path(put, path = "/clusters/{cluster}/services/{service}/healing", tag = "alerts",
    params(ServicePath),
    request_body = SetHealing,
    responses(
        (status = 200, description = "The policy", body = HealingView),
        (status = 404, description = "No such cluster or service"),
        (status = 422, description = "A bad grace time or limit"),
    ))]
pub async fn set_healing(
    c: Caller,
    Path(p): Path<ServicePath>,
    Json(body): Json<SetHealing>,
) -> ApiResult<Json<HealingView>> {
    let h = c.acting().set_healing(&p.cluster, &p.service, body).await?;
    Ok(Json(h))
}

read_routes! {
    /// `GET /clusters/{cluster}/alert-definitions` → every alert definition of the cluster
    /// (the built-in ones, then those its services' stacks declare), with its changes.
    definitions("/clusters/{cluster}/alert-definitions", "alerts", ClusterPath)
        -> [Vec<AlertDefinitionView>]: "The definitions",
        404: "No such cluster",
        |s, p| s.mgr.alert_definitions(&p.cluster).await?;
}

/// `PUT /clusters/{cluster}/alert-definitions/{name}` → the definition as changed: its `for`
/// time, thresholds, or whether it is evaluated, for this cluster (a new version of its
/// change, audited; what is left out keeps its value).
#[utoipa::path(put, path = "/clusters/{cluster}/alert-definitions/{name}", tag = "alerts",
    params(AlertTargetPath),
    request_body = ChangeAlert,
    responses(
        (status = 200, description = "The definition", body = AlertDefinitionView),
        (status = 404, description = "No such cluster or definition"),
        (status = 422, description = "A bad duration or threshold"),
    ))]
pub async fn change_definition(
    c: Caller,
    Path(p): Path<AlertTargetPath>,
    Json(body): Json<ChangeAlert>,
) -> ApiResult<Json<AlertDefinitionView>> {
    let d = c.acting().change_alert(&p.cluster, &p.name, body).await?;
    Ok(Json(d))
}
