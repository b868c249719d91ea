//! A JobStore decorator that fails chosen `apply` calls, to test the engine's recovery. The
//! engine writes through it (`ManagerBuilder::engine_jobs`); everything else goes to the store
//! it decorates.

use async_trait::async_trait;
use bigmgr_core::model::*;
use bigmgr_core::store::{Applied, Batch, JobStore};
use bigmgr_core::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Delegates to `inner`; the `fail_at`-th call of `apply` (1-based) fails without writing.
/// Counts the calls of `apply` and of `job_detail`.
pub struct FlakyJobs {
    pub inner: Arc<dyn JobStore>,
    pub applies: AtomicU32,
    pub fail_at: u32,
    pub details: AtomicU32,
}

#[async_trait]
impl JobStore for FlakyJobs {
    async fn create_job(&self, job: &NewJob) -> Result<JobDetail> {
        self.inner.create_job(job).await
    }
    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        self.inner.get_job(id).await
    }
    async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>> {
        self.details.fetch_add(1, Ordering::SeqCst);
        self.inner.job_detail(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.inner.list_jobs(filter).await
    }
    async fn apply(&self, batch: &Batch) -> Result<Applied> {
        if self.applies.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(Error::Store("injected failure".into()));
        }
        self.inner.apply(batch).await
    }
    async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>> {
        self.inner.task_log(task, attempt).await
    }
    async fn task_log_after(
        &self,
        task: TaskId,
        after: Option<(u32, u64)>,
        limit: u32,
    ) -> Result<Vec<LogLine>> {
        self.inner.task_log_after(task, after, limit).await
    }
    async fn state_counts(&self) -> Result<StateCounts> {
        self.inner.state_counts().await
    }
    async fn host_tasks(&self, host: HostId, limit: u32) -> Result<Vec<HostTask>> {
        self.inner.host_tasks(host, limit).await
    }
}
