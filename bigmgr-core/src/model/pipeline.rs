//! Pipelines as stored: a checked definition (docs/pipelines.md) and its state.

use super::{ClusterId, PipelineId, PipelineState};
use serde::{Deserialize, Serialize};

/// A pipeline of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Its id.
    pub id: PipelineId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name, unique among the cluster's pipelines.
    pub name: String,
    /// Who created it.
    pub author: String,
    /// When (ms since epoch).
    pub created_at: i64,
    /// Its definition, as written (TOML).
    pub definition: String,
    /// Where it is in its life.
    pub state: PipelineState,
}

/// What a new pipeline holds (its definition checked first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipeline {
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name.
    pub name: String,
    /// Who creates it.
    pub author: String,
    /// Its definition (TOML).
    pub definition: String,
}
