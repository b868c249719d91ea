//! The client backend: the REST API of a running `bigmgr serve` (reqwest).
//!
//! TEMPORARY STUB (wt-py): only so the Python classes compile; the real client is written in
//! another branch and replaces this file whole. Every call answers an error.

use crate::backend::{Backend, JobAction};
use crate::data::*;
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::JobRequest;
use std::time::Duration;

/// A client of a `bigmgr serve`.
#[derive(Debug)]
pub struct Rest {
    url: String,
}

impl Rest {
    /// A client of the server at `url` (stub: remembers the URL only).
    pub fn new(url: &str, _token: Option<String>, _timeout: Duration) -> Result<Rest> {
        Ok(Rest {
            url: url.to_string(),
        })
    }

    fn stub<T>(&self) -> Result<T> {
        Err(Error::Other(format!(
            "the REST client is not built in this branch (server {})",
            self.url
        )))
    }
}

#[async_trait]
impl Backend for Rest {
    async fn clusters(&self) -> Result<Vec<ClusterInfo>> {
        self.stub()
    }
    async fn create_cluster(&self, _: &str) -> Result<ClusterInfo> {
        self.stub()
    }
    async fn cluster(&self, _: &str) -> Result<ClusterInfo> {
        self.stub()
    }
    async fn delete_cluster(&self, _: &str) -> Result<()> {
        self.stub()
    }
    async fn create_join_token(&self, _: &str) -> Result<String> {
        self.stub()
    }
    async fn hosts(&self, _: &str) -> Result<Vec<HostInfo>> {
        self.stub()
    }
    async fn add_host(&self, _: &str, _: &str, _: &str) -> Result<HostInfo> {
        self.stub()
    }
    async fn stacks(&self) -> Result<Vec<StackInfo>> {
        self.stub()
    }
    async fn services(&self, _: &str) -> Result<Vec<ServiceInfo>> {
        self.stub()
    }
    async fn service(&self, _: &str, _: &str) -> Result<ServiceInfo> {
        self.stub()
    }
    async fn add_service(&self, _: &str, _: AddService) -> Result<ServiceInfo> {
        self.stub()
    }
    async fn remove_service(&self, _: &str, _: &str) -> Result<()> {
        self.stub()
    }
    async fn update_configs(&self, _: &str, _: &str, _: ConfigChange) -> Result<ConfigVersionInfo> {
        self.stub()
    }
    async fn config_versions(&self, _: &str, _: &str) -> Result<Vec<ConfigVersionInfo>> {
        self.stub()
    }
    async fn rollback_configs(
        &self,
        _: &str,
        _: &str,
        _: u32,
        _: Option<String>,
    ) -> Result<ConfigVersionInfo> {
        self.stub()
    }
    async fn restart_stale(&self, _: &str, _: Option<&str>) -> Result<Vec<JobInfo>> {
        self.stub()
    }
    async fn relate(&self, _: &str, _: Relate) -> Result<RelationInfo> {
        self.stub()
    }
    async fn relations(&self, _: &str) -> Result<Vec<RelationInfo>> {
        self.stub()
    }
    async fn unrelate(&self, _: &str, _: i64) -> Result<()> {
        self.stub()
    }
    async fn submit(&self, _: JobRequest) -> Result<JobInfo> {
        self.stub()
    }
    async fn job(&self, _: i64) -> Result<JobInfo> {
        self.stub()
    }
    async fn jobs(&self, _: &str) -> Result<Vec<JobInfo>> {
        self.stub()
    }
    async fn control(&self, _: i64, _: JobAction) -> Result<JobInfo> {
        self.stub()
    }
    async fn task_log(&self, _: i64, _: i64) -> Result<Vec<LogLineInfo>> {
        self.stub()
    }
}
