//! Alert routes: a cluster's alerts as they stand, and their history.

use super::AppState;
use super::error::{ApiResult, Json, Path, Query};
use super::page::in_range;
use super::path::ClusterPath;
use axum::extract::State;
use bigmgr_core::model::AlertChangeId;
use bigmgr_core::view::{AlertChangeView, AlertView};
use serde::Deserialize;
use utoipa::IntoParams;

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
