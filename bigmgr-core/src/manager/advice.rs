//! What the advisor reads of a cluster, gathered from the store and the stacks (its firing
//! alerts included), and its findings as frontends ask for them (`GET /clusters/{c}/advice`).

use super::Manager;
use crate::Result;
use crate::advisor::{ClusterFacts, FailedTask, Finding, advise};
use crate::model::*;
use crate::render::Topology;
use std::sync::Arc;

/// How many of a cluster's latest finished jobs the advisor reads for failed tasks.
const RECENT_JOBS: u32 = 10;
/// How many of a failed task's last log lines it reads.
const LOG_TAIL: usize = 40;
/// How far back host metrics are averaged (ms).
const METRICS_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Which findings to return: about one host, one service, one job, or all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdviceScope {
    /// Only findings about this host.
    pub host: Option<String>,
    /// Only findings about this service instance.
    pub service: Option<String>,
    /// Only findings about this job (its failed tasks are read even if it is older than the
    /// latest ten).
    pub job: Option<JobId>,
}

impl Manager {
    /// The advisor's findings about a cluster (or part of it), most severe first.
    pub async fn advice(&self, cluster: &str, scope: &AdviceScope) -> Result<Vec<Finding>> {
        let c = self.cluster(cluster).await?;
        if let Some(job) = scope.job {
            let found = self.inner.store.job_detail(job).await?;
            if found.is_none_or(|d| d.job.cluster != c.id) {
                return Err(crate::Error::not_found(
                    "job",
                    format!("{job} (in cluster {cluster})"),
                ));
            }
        }
        let facts = self.facts(&c, scope.job).await?;
        let mut findings = advise(&facts);
        findings.retain(|f| {
            scope
                .host
                .as_ref()
                .is_none_or(|h| f.host.as_ref() == Some(h))
                && scope
                    .service
                    .as_ref()
                    .is_none_or(|s| f.service.as_ref() == Some(s))
                && scope.job.is_none_or(|j| f.job == Some(j.0))
        });
        Ok(findings)
    }

    /// What the advisor reads of cluster `c`; `job` is read for failed tasks too.
    async fn facts(&self, c: &Cluster, job: Option<JobId>) -> Result<ClusterFacts> {
        let store = self.inner.store.as_ref();
        let topo = Topology::load(store, self.inner.stacks.as_ref(), c).await?;
        let mut services = Vec::new();
        for s in store.list_services(c.id).await? {
            let stack = self
                .inner
                .stacks
                .stack(&s.stack, Some(&s.stack_version))
                .await?;
            let def = Arc::clone(stack.service(&s.service)?);
            services.push((s, def));
        }
        let units = store.list_units(c.id).await?;
        let stale = units
            .iter()
            .filter_map(|u| topo.staleness(u).reason().map(|r| (u.id, r)))
            .collect();
        let mut jobs: Vec<JobId> = store
            .list_jobs(&JobFilter {
                cluster: Some(c.id),
                states: vec![JobState::Failed],
                limit: Some(RECENT_JOBS),
                newest_first: true,
                ..JobFilter::default()
            })
            .await?
            .into_iter()
            .map(|j| j.id)
            .collect();
        if let Some(j) = job
            && !jobs.contains(&j)
        {
            jobs.push(j);
        }
        let mut failed = Vec::new();
        for id in jobs {
            let Some(detail) = store.job_detail(id).await? else {
                continue;
            };
            for t in detail
                .tasks
                .iter()
                .filter(|t| matches!(t.state, TaskState::Failed | TaskState::TimedOut))
            {
                let Some(stage) = detail.stages.iter().find(|s| s.id == t.stage) else {
                    continue;
                };
                let lines = store.task_log(t.id, Some(t.attempt)).await?;
                let skip = lines.len().saturating_sub(LOG_TAIL);
                failed.push(FailedTask {
                    job: detail.job.clone(),
                    task: t.clone(),
                    service: stage.service,
                    component: stage.component.clone(),
                    command: stage.command.clone(),
                    log: lines.into_iter().skip(skip).map(|l| l.line).collect(),
                });
            }
        }
        Ok(ClusterFacts {
            cluster: c.name.clone(),
            hosts: store.list_hosts(c.id).await?,
            services,
            units,
            stale,
            relations: store.list_relations(c.id).await?,
            samples: store
                .host_metrics(c.id, None, now_ms() - METRICS_WINDOW_MS)
                .await?,
            failed,
            alerts: store
                .alerts(&AlertFilter {
                    cluster: Some(c.id),
                    firing: true,
                    ..AlertFilter::default()
                })
                .await?,
        })
    }
}
