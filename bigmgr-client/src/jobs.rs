//! `/clusters/{cluster}/jobs` and `/jobs/{job}`: submitting, reading and controlling jobs, and
//! task logs.

use crate::http::in_cluster;
use crate::{Client, Result};
use bigmgr_core::model::{JobId, JobOptions, JobState, Target, TaskId};
use bigmgr_core::request::SubmitJob;
use bigmgr_core::view::{JobDetailView, JobView, LogLineView, TaskLog};

/// An operator's action on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// Cancel it.
    Cancel,
    /// Pause dispatching.
    Pause,
    /// Resume after a pause.
    Resume,
    /// Run its failed and cancelled tasks again.
    Retry,
}

impl JobAction {
    /// The route's last segment (`cancel` …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Cancel => "cancel",
            JobAction::Pause => "pause",
            JobAction::Resume => "resume",
            JobAction::Retry => "retry",
        }
    }
}

impl Client {
    /// Submits a job → the queued job.
    pub async fn submit(
        &self,
        cluster: &str,
        command: &str,
        target: Target,
        options: JobOptions,
    ) -> Result<JobView> {
        self.post(
            &in_cluster(cluster, "jobs"),
            &SubmitJob {
                command: command.to_string(),
                target,
                options,
            },
        )
        .await
    }

    /// A cluster's jobs, ascending by id, only those in `state` if given.
    pub async fn jobs(&self, cluster: &str, state: Option<JobState>) -> Result<Vec<JobView>> {
        let mut path = in_cluster(cluster, "jobs");
        if let Some(s) = state {
            path.push_str(&format!("?state={s}"));
        }
        self.list(&path).await
    }

    /// One job with its stages and tasks.
    pub async fn job(&self, id: JobId) -> Result<JobDetailView> {
        self.get(&format!("/jobs/{id}")).await
    }

    /// Cancels, pauses, resumes or retries a job → the job as it is now.
    pub async fn control(&self, id: JobId, action: JobAction) -> Result<JobView> {
        self.post(
            &format!("/jobs/{id}/{}", action.as_str()),
            &serde_json::json!({}),
        )
        .await
    }

    /// A task's log lines (of `attempt`, or every attempt), in order.
    pub async fn task_log(
        &self,
        job: JobId,
        task: TaskId,
        attempt: Option<u32>,
    ) -> Result<Vec<LogLineView>> {
        let mut path = format!("/jobs/{job}/tasks/{task}/log");
        if let Some(a) = attempt {
            path.push_str(&format!("?attempt={a}"));
        }
        let log: TaskLog = self.get(&path).await?;
        Ok(log.lines)
    }
}
