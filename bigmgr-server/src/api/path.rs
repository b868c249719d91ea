//! The path parameters of the routes, one type per kind of path: the routes that share a path
//! share its type, so its parameters are declared and described once (the OpenAPI document takes
//! the descriptions from these types), and a type builds its resource's URL for the `Location`
//! of what a route creates.

use super::PREFIX;
use serde::Deserialize;
use utoipa::IntoParams;

/// `/clusters/{cluster}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClusterPath {
    /// The cluster's name
    pub cluster: String,
}

impl ClusterPath {
    /// The cluster's URL, or the URL of `rest` under it (`rest` starts with `/`).
    pub fn url(&self, rest: &str) -> String {
        format!("{PREFIX}/clusters/{}{rest}", self.cluster)
    }
}

/// `/clusters/{cluster}/hosts/{host}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HostPath {
    /// The cluster's name
    pub cluster: String,
    /// The host's name
    pub host: String,
}

/// `/clusters/{cluster}/pipelines/{pipeline}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PipelinePath {
    /// The cluster's name
    pub cluster: String,
    /// The pipeline's name
    pub pipeline: String,
}

/// `/clusters/{cluster}/services/{service}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServicePath {
    /// The cluster's name
    pub cluster: String,
    /// The service instance's name
    pub service: String,
}

impl ServicePath {
    /// The URL of config version `version` of the service instance.
    pub fn config_url(&self, version: u32) -> String {
        format!(
            "{PREFIX}/clusters/{}/services/{}/configs/{version}",
            self.cluster, self.service
        )
    }
}

/// `/clusters/{cluster}/services/{service}/configs/{version}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// The cluster's name
    pub cluster: String,
    /// The service instance's name
    pub service: String,
    /// The version number
    #[param(minimum = 1)]
    pub version: u32,
}

/// `/clusters/{cluster}/snapshots/{name}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SnapshotPath {
    /// The cluster's name
    pub cluster: String,
    /// The snapshot's name
    pub name: String,
}

/// `/clusters/{cluster}/alert-targets/{name}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AlertTargetPath {
    /// The cluster's name
    pub cluster: String,
    /// The target's name
    pub name: String,
}

/// `/clusters/{cluster}/maintenance/{id}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MaintenancePath {
    /// The cluster's name
    pub cluster: String,
    /// The window's id
    pub id: i64,
}

/// `/clusters/{cluster}/units/{unit}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UnitPath {
    /// The cluster's name
    pub cluster: String,
    /// The unit's id
    pub unit: i64,
}

/// `/clusters/{cluster}/relations/{id}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RelationPath {
    /// The cluster's name
    pub cluster: String,
    /// The relation's id
    pub id: i64,
}

/// `/users/{user}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's name
    pub user: String,
}

/// `/tokens/{id}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id
    pub id: i64,
}

/// `/jobs/{job}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's id
    pub job: i64,
}

/// `/jobs/{job}/tasks/{task}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TaskPath {
    /// The job's id
    pub job: i64,
    /// The task's id
    pub task: i64,
}
