//! The advisor's findings about a cluster: `GET /clusters/{cluster}/advice`.

use super::AppState;
use super::error::{ApiResult, Json, Path, Query};
use super::path::ClusterPath;
use axum::extract::State;
use bigmgr_core::advisor::Finding;
use bigmgr_core::manager::AdviceScope;
use bigmgr_core::model::JobId;
use serde::Deserialize;
use utoipa::IntoParams;

/// `?host=&service=&job=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdviceQuery {
    /// Only findings about this host.
    pub host: Option<String>,
    /// Only findings about this service instance.
    pub service: Option<String>,
    /// Only findings about this job ("explain this failure").
    pub job: Option<i64>,
}

read_routes! {
    /// `GET /clusters/{cluster}/advice` → what the advisor finds (failed tasks diagnosed from
    /// their logs, lost hosts, quorums at risk, unhealthy and stale units, relations without a
    /// started provider, full disks and saturated CPUs), most severe first, each with its
    /// evidence and suggested requests to run after confirming.
    advice("/clusters/{cluster}/advice", "advice", ClusterPath, AdviceQuery)
        -> [Vec<Finding>]: "The findings, most severe first",
        404: "No such cluster or job",
        |s, p, q| s.mgr.advice(&p.cluster, &AdviceScope {
            host: q.host,
            service: q.service,
            job: q.job.map(JobId),
        }).await?;
}
